#!/bin/bash
# A block-device target (a loop device): O_DIRECT writes, BLKZEROOUT for
# zero ranges over old data, checkpoints in --state-dir.
. "$(dirname "$0")/functions.sh"

[ "$(id -u)" = 0 ] || skip "needs root for a loop device"
losetup -f >/dev/null 2>&1 || skip "no loop devices here"
mk_image "$T/src.img" mixed $((8 * 1048576 + 8192))
mk_image "$T/disk.img" random $((9 * 1048576))
loop=$(losetup -f --show "$T/disk.img")
trap 'losetup -d "$loop"; cleanup' EXIT
start_source SRC "$T/src.img"
replicate --source "$SRC" --target "$loop" --mode full --verify \
  --state-dir "$T/state" || fail "sync to $loop failed"
cmp -n $((8 * 1048576 + 8192)) "$T/src.img" "$loop" || fail "device content differs"
ls "$T/state"/*.rwstate >/dev/null || fail "no checkpoint in the state dir"
# A delta to the device changes nothing more.
replicate --source "$SRC" --target "$loop" --state-dir "$T/state" \
  --stats-json "$T/s.json" || fail "delta to $loop failed"
[ "$(stat_json "$T/s.json" changed_bytes)" = 0 ] || fail "delta found changes"
echo ok
