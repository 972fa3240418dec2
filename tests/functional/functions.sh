# Shared helpers for the functional tests (sourced by each t-*.sh).
#
# Every test gets its own directory $T (removed at exit) and an EXIT trap
# that kills every process it started.  Ports are chosen by the programs
# themselves (--listen 127.0.0.1:0 --portfile), so parallel runs and other
# programs on this shared machine never collide.

set -eu

: "${RW_BIN:?RW_BIN must point at the build directory}"
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/rw-test.XXXXXX")
_rw_pids=""

cleanup ()
{
  local p
  for p in $_rw_pids; do
    kill "$p" 2>/dev/null || true
  done
  for p in $_rw_pids; do
    # Give each a moment, then make sure.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$p" 2>/dev/null || true
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail ()
{
  echo "FAIL: $*" >&2
  exit 1
}

skip ()
{
  echo "SKIP: $*" >&2
  exit 77
}

rw_tmpdir ()
{
  echo "$T"
}

# wait_for_file FILE SECONDS
wait_for_file ()
{
  local i=0
  while [ ! -s "$1" ]; do
    i=$((i + 1))
    [ "$i" -le $(($2 * 10)) ] || return 1
    sleep 0.1
  done
}

# mk_secret FILE: a fresh random secret.
mk_secret ()
{
  head -c 32 /dev/urandom | base64 > "$1"
  chmod 600 "$1"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port ()
{
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_bg NAME CMD...: runs CMD in the background, logging to $T/NAME.log,
# and registers it for cleanup.  Sets $LAST_PID.
start_bg ()
{
  local name=$1
  shift
  "$@" > "$T/$name.log" 2>&1 &
  LAST_PID=$!
  _rw_pids="$_rw_pids $LAST_PID"
}

# start_source VAR DISK... : starts rw-source on a free port with the
# secret $T/secret (created if missing); VAR gets "127.0.0.1:PORT" and
# ${VAR}_PID its pid.  Extra rw-source options go in $SOURCE_OPTS.
start_source ()
{
  local var=$1 n=0 args="" d
  shift
  [ -f "$T/secret" ] || mk_secret "$T/secret"
  while [ -e "$T/source$n.port" ]; do n=$((n + 1)); done
  for d in "$@"; do args="$args --disk $d"; done
  # shellcheck disable=SC2086
  start_bg "source$n" "$RW_BIN/rw-source" --listen 127.0.0.1:0 \
    --compress "${SOURCE_COMPRESS:-always}" \
    --secret-file "$T/secret" --portfile "$T/source$n.port" \
    --pidfile "$T/source$n.pid" $args ${SOURCE_OPTS:-}
  wait_for_file "$T/source$n.port" 10 \
    || { cat "$T/source$n.log" >&2; fail "rw-source did not start"; }
  eval "$var=127.0.0.1:$(cat "$T/source$n.port")"
  eval "${var}_PID=$LAST_PID"
}

# replicate ARGS...: rw-replicate with the test secret and no progress bar.
replicate ()
{
  "$RW_BIN/rw-replicate" --secret-file "$T/secret" --no-progress "$@"
}

# mk_image FILE KIND SIZE: random, zero, mixed (alternating 64 KiB random
# and zero), sparse (a hole-y file with a few data islands), text.
mk_image ()
{
  local f=$1 kind=$2 size=$3
  python3 - "$f" "$kind" "$size" <<'PY'
import os, sys
f, kind, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
rnd = lambda n: os.urandom(n)
with open(f, "wb") as o:
    if kind == "random":
        left = size
        while left:
            n = min(left, 1 << 20); o.write(rnd(n)); left -= n
    elif kind == "zero":
        o.truncate(size)
        o.seek(0); o.write(b"\0" * min(size, 1 << 20))
    elif kind == "mixed":
        pos = 0; k = 0
        while pos < size:
            n = min(size - pos, 65536)
            o.write(rnd(n) if k % 2 == 0 else b"\0" * n)
            pos += n; k += 1
    elif kind == "sparse":
        o.truncate(size)
        step = max(size // 7, 1)
        for i in range(0, size, step):
            o.seek(i); o.write(rnd(min(5000, size - i)))
    elif kind == "text":
        line = b"the quick brown fox jumps over the lazy dog 0123456789\n"
        left = size
        while left:
            n = min(left, len(line)); o.write(line[:n]); left -= n
    else:
        sys.exit("unknown kind " + kind)
PY
}

same ()
{
  cmp -s "$1" "$2" || fail "$1 and $2 differ"
}

# stat_json FILE KEY: an integer field of a --stats-json file.
stat_json ()
{
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}
