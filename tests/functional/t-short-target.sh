#!/bin/bash
# A target one byte smaller than its source is refused and left unchanged;
# so are a mapping that names a disk twice and a wrong disk count.
. "$(dirname "$0")/functions.sh"

mk_image "$T/src.img" random 1048576
mk_image "$T/short.img" text 1048575
cp "$T/short.img" "$T/short.orig"
start_source SRC "$T/src.img"
if replicate --source "$SRC" --target "$T/short.img" 2> "$T/err"; then
  fail "a 1-byte-short target was accepted"
fi
grep -q "1 bytes smaller than its source" "$T/err" || { cat "$T/err"; fail "no clear message"; }
same "$T/short.img" "$T/short.orig"
[ ! -e "$T/short.img.rwstate" ] || fail "a checkpoint was written"

# A disk named twice.
if replicate --source "$SRC" --map 0="$T/a.img" --map 0="$T/b.img" 2> "$T/err"; then
  fail "a disk mapped twice was accepted"
fi
grep -q "mapped twice" "$T/err" || fail "no clear message for a double map"
[ ! -e "$T/a.img" ] && [ ! -e "$T/b.img" ] || fail "a target was created"

# Two targets for a one-disk source.
if replicate --source "$SRC" --target "$T/a.img" --target "$T/b.img" 2> "$T/err"; then
  fail "two targets for one disk were accepted"
fi
grep -q "serves 1 disk but 2 targets" "$T/err" || { cat "$T/err"; fail "no clear message for the count"; }
# No such disk.
if replicate --source "$SRC" --map 3="$T/a.img" 2> "$T/err"; then
  fail "a missing disk was accepted"
fi
grep -q "has no disk 3" "$T/err" || fail "no clear message for a missing disk"
[ ! -e "$T/a.img" ] || fail "a target was created"
echo ok
