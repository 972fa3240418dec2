#!/bin/bash
# Full sync of every kind of image: random, all-zero, mixed, sparse, text,
# and sizes that are not a multiple of any chunk or sector size.
. "$(dirname "$0")/functions.sh"

i=0
for spec in random:8388608 zero:16777216 mixed:5242880 sparse:33554432 \
            text:3000001 random:12345 mixed:1 random:4097; do
  kind=${spec%%:*} size=${spec##*:}
  mk_image "$T/src$i.img" "$kind" "$size"
  i=$((i + 1))
done
srcs=""
for j in $(seq 0 $((i - 1))); do srcs="$srcs $T/src$j.img"; done
# shellcheck disable=SC2086
start_source SRC $srcs
for j in $(seq 0 $((i - 1))); do
  replicate --source "$SRC" --disk "$j" --target "$T/dst$j.img" \
    --stats-json "$T/s$j.json" --mode full --verify \
    || fail "sync of image $j failed"
  same "$T/src$j.img" "$T/dst$j.img"
  [ "$(stat -c %s "$T/dst$j.img")" = "$(stat -c %s "$T/src$j.img")" ] \
    || fail "image $j: target size differs"
done

# The all-zero image: nothing but zeros, so almost nothing on the wire
# and the target stays sparse.
[ "$(stat_json "$T/s1.json" zero_bytes)" = 16777216 ] || fail "zero image not sent as zeros"
[ "$(stat_json "$T/s1.json" wire_bytes)" -lt 100000 ] || fail "zero image: too many bytes on the wire"
[ "$(du -k "$T/dst1.img" | cut -f1)" -lt 1024 ] || fail "zero image target is not sparse"
# Random data does not compress: wire bytes close to the data.
w=$(stat_json "$T/s0.json" wire_bytes)
[ "$w" -ge 8388608 ] && [ "$w" -lt 9000000 ] || fail "random image: wire bytes $w"
# Text compresses with LZ4.
w=$(stat_json "$T/s4.json" wire_bytes)
[ "$w" -lt 1000000 ] || fail "text image: wire bytes $w, LZ4 not used?"
# The sparse image: its holes never cross the wire.
w=$(stat_json "$T/s3.json" wire_bytes)
[ "$w" -lt 500000 ] || fail "sparse image: wire bytes $w"
echo ok
