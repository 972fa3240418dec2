#!/bin/bash
# Targets that hold the running system, or are in use, are refused before
# anything is written.
. "$(dirname "$0")/functions.sh"

[ "$(id -u)" = 0 ] || skip "needs root to open block devices"
root=$(findmnt -n -o SOURCE / || true)
case $root in
  /dev/*) ;;
  *) skip "the root filesystem is not on a block device here ($root)" ;;
esac
mk_image "$T/src.img" random 65536
start_source SRC "$T/src.img"
if replicate --source "$SRC" --target "$root" 2> "$T/err"; then
  fail "the root device $root was accepted as a target"
fi
grep -q "running system's root" "$T/err" || { cat "$T/err"; fail "no clear message"; }

# A loop device with a mounted filesystem on it.
truncate -s 64M "$T/fs.img"
mkfs.ext4 -q "$T/fs.img"
loop=$(losetup -f --show "$T/fs.img")
mkdir "$T/mnt"
if ! mount "$loop" "$T/mnt" 2>/dev/null; then
  losetup -d "$loop"
  echo "mount not possible here; root device check done"
  echo ok
  exit 0
fi
trap 'umount "$T/mnt"; losetup -d "$loop"; cleanup' EXIT
if replicate --source "$SRC" --target "$loop" 2> "$T/err"; then
  fail "a mounted loop device was accepted"
fi
grep -q "mounted at" "$T/err" || { cat "$T/err"; fail "no clear message for a mounted target"; }
# Its backing file is in use too.
if replicate --source "$SRC" --target "$T/fs.img" 2> "$T/err"; then
  fail "the backing file of a loop device was accepted"
fi
grep -q "attached to $loop" "$T/err" || { cat "$T/err"; fail "no message for a loop backing file"; }
echo ok
