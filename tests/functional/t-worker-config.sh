#!/bin/bash
# rw-worker's configuration: kernel command line (quoting, repeated and
# unknown keys), config file, precedence, --dump-config's formats, and
# docs/worker-config.md matching the key table.
. "$(dirname "$0")/functions.sh"

W=$RW_BIN/rw-worker
cat > "$T/worker.conf" <<'CONF'
# baked into the ISO
hostname=from-file
iface=eth1
state_dir=/srv/from-file
CONF

# The shell format, as the ISO's /init uses it.
"$W" --dump-config --format shell --config "$T/worker.conf" \
  --cmdline 'quiet rw.ip=10.1.2.3/24 rw.gateway=10.1.2.1
    rw.hostname="first" rw.hostname=final rw.dns=1.1.1.1,8.8.8.8
    rw.secret=0123456789abcdef0123 console=ttyS0' > "$T/shell" 2> "$T/err" \
  || { cat "$T/err"; fail "--dump-config failed"; }
(
  set -u
  eval "$(cat "$T/shell")"
  [ "$RW_IP" = 10.1.2.3/24 ] || fail "RW_IP=$RW_IP"
  [ "$RW_GATEWAY" = 10.1.2.1 ] || fail "RW_GATEWAY=$RW_GATEWAY"
  [ "$RW_DNS" = 1.1.1.1,8.8.8.8 ] || fail "RW_DNS=$RW_DNS"
  [ "$RW_HOSTNAME" = final ] || fail "repeated key: RW_HOSTNAME=$RW_HOSTNAME"
  [ "$RW_IFACE" = eth1 ] || fail "config file: RW_IFACE=$RW_IFACE"
  [ "$RW_STATE_DIR" = /srv/from-file ] || fail "RW_STATE_DIR=$RW_STATE_DIR"
  [ "$RW_CONTROL" = :5995 ] || fail "default: RW_CONTROL=$RW_CONTROL"
  [ "$RW_SECRET_FILE" = /etc/rw/secret ] || fail "RW_SECRET_FILE"
  [ "$RW_DEBUG" = 0 ] || fail "RW_DEBUG=$RW_DEBUG"
  [ "$RW_SECRET_SET" = 1 ] || fail "RW_SECRET_SET=$RW_SECRET_SET"
) || exit 1
! grep -q 0123456789abcdef "$T/shell" || fail "the secret was printed"

# A quoted value with a quote inside survives eval.
"$W" --dump-config --format shell --config '' \
  --cmdline 'rw.state_dir="/a b/it'\''s"' > "$T/shell2"
( eval "$(cat "$T/shell2")"; [ "$RW_STATE_DIR" = "/a b/it's" ] ) \
  || fail "quoting: $(cat "$T/shell2")"

# Options > kernel command line > config file.
"$W" --dump-config --config "$T/worker.conf" --state-dir /opt/opt \
  --cmdline 'rw.iface=eth7' > "$T/plain"
grep -qx 'state_dir=/opt/opt' "$T/plain" || fail "option lost"
grep -qx 'iface=eth7' "$T/plain" || fail "cmdline lost to the file"
grep -qx 'hostname=from-file' "$T/plain" || fail "file lost"

# Unknown keys are warnings; bad values are errors.
"$W" --dump-config --config '' --cmdline 'rw.nosuch=1 rw.debug=1' \
  > "$T/out" 2> "$T/err" || fail "an unknown key was fatal"
grep -q "unknown key 'nosuch'" "$T/err" || fail "unknown key not reported"
grep -qx 'debug=1' "$T/out" || fail "debug=1 lost"
if "$W" --dump-config --config '' --cmdline 'rw.ip=300.1.1.1/24' \
     > /dev/null 2> "$T/err"; then
  fail "a bad address was accepted"
fi
grep -q "ip: '300.1.1.1/24'" "$T/err" || fail "no message for a bad value"
echo 'nonsense line' > "$T/bad.conf"
if "$W" --dump-config --config "$T/bad.conf" --cmdline '' > /dev/null \
     2> "$T/err"; then
  fail "a malformed config file was accepted"
fi
grep -q "bad.conf:1: expected KEY=VALUE" "$T/err" || fail "no line number"
if "$W" --dump-config --format yaml --cmdline '' > /dev/null 2>&1; then
  fail "an unknown format was accepted"
fi

# The committed doc is generated from the table.
"$W" --dump-config --format markdown > "$T/md"
cmp -s "$T/md" "$TOP/docs/worker-config.md" || {
  diff -u "$TOP/docs/worker-config.md" "$T/md" | head -20
  fail "docs/worker-config.md is stale: regenerate it with" \
    "rw-worker --dump-config --format markdown"
}
echo ok
