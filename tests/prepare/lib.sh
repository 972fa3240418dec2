# tests/prepare/lib.sh: shared by the prepare acceptance scripts.
# The caller sets: here (this directory), work (a scratch directory), t0.
# shellcheck shell=bash

# Groups of checks run two at a time (one qemu each, 2 cores); each
# prints PASS/FAIL/SKIP lines, counted at the end.
ok () { echo "PASS: $*"; }
notok () { echo "FAIL: $*"; }
skipped () { echo "SKIP: $*"; }
check () { # check NAME COMMAND...
  local name=$1; shift
  if "$@"; then ok "$name"; else notok "$name"; fi
}
step () { echo "== [$((SECONDS - t0)) s] $*"; }
copy () { cp --sparse=always "$work/guest.raw" "$1"; }
sum () { sha256sum "$1" | cut -d' ' -f1; }
# debugfs_at DISK BYTE-OFFSET REQUEST: a debugfs -w request on the ext
# filesystem at that offset of a disk image (a loop device over it).
debugfs_at () {
  local l r
  l=$(losetup -o "$2" -f --show "$1") || return 1
  debugfs -w -R "$3" "$l" > /dev/null 2>&1; r=$?
  losetup -d "$l"
  return $r
}
jq_ () { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$@"; }
# files DISK DIR PATH...: copy files out of a guest (read-only).
files () {
  local disk=$1 dir=$2; shift 2
  mkdir -p "$dir"
  guestfish --ro -a "$disk" -i copy-out "$@" "$dir" 2>"$dir.err"
}

# The checks after a boot of a prepared guest.
after_boot () { # NAME DISK [ROOT-SPEC-REGEX, default ^UUID=]
  local name=$1 disk=$2 root=${3:-^UUID=} d="$work/$1-files"
  files "$disk" "$d" /root/rw-ip-addr.txt /etc/fstab /var/lib/dpkg/status ||
    { notok "$name: read the guest's files after boot"; cat "$d.err"; return; }
  check "$name: open-vm-tools is not installed (dpkg)" \
    python3 - "$d/status" <<'PY'
import sys
st = open(sys.argv[1]).read().split("\n\n")
for p in st:
    f = dict(l.split(": ", 1) for l in p.splitlines() if ": " in l)
    if f.get("Package") == "open-vm-tools" and "not-installed" not in f.get("Status", "") and "config-files" not in f.get("Status", ""):
        sys.exit(1)
PY
  check "$name: no /dev/sd names in fstab" \
    sh -c "! grep -v '^#' '$d/fstab' | grep -q '/dev/sd'"
  check "$name: root ($root) in fstab" \
    sh -c "grep -v '^#' '$d/fstab' | grep -E '[[:space:]]/[[:space:]]' | grep -qE '$root'"
  echo "   $(grep -v ' lo ' "$d/rw-ip-addr.txt" | grep 'inet ' | head -1)"
  check "$name: 10.0.2.15/24 on the virtio NIC (ens192), seen by the guest" \
    grep -qE '^[0-9]+: ens192 +inet 10\.0\.2\.15/24' "$d/rw-ip-addr.txt"
}
