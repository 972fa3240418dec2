#!/bin/bash
# Several disks at once, by --target order, by --map, and by --disk.
. "$(dirname "$0")/functions.sh"

mk_image "$T/a.img" random 3145728
mk_image "$T/b.img" mixed 5000000
mk_image "$T/c.img" sparse 9999999
start_source SRC "$T/a.img" "$T/b.img" "$T/c.img"
replicate --source "$SRC" --target "$T/a.out" --target "$T/b.out" \
  --target "$T/c.out" --streams 3 --verify --stats-json "$T/s.json" \
  || fail "sync of three disks failed"
same "$T/a.img" "$T/a.out"
same "$T/b.img" "$T/b.out"
same "$T/c.img" "$T/c.out"
[ "$(stat_json "$T/s.json" disk_bytes)" = $((3145728 + 5000000 + 9999999)) ] \
  || fail "disk_bytes is wrong"

replicate --source "$SRC" --map 2="$T/c2.out" --map 0="$T/a2.out" \
  || fail "--map failed"
same "$T/c.img" "$T/c2.out"
same "$T/a.img" "$T/a2.out"
[ ! -e "$T/b2.out" ] || fail "an unmapped disk was written"

replicate --source "$SRC" --disk 1 --target "$T/b3.out" --streams 1 \
  || fail "--disk failed"
same "$T/b.img" "$T/b3.out"
echo ok
