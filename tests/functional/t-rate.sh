#!/bin/bash
# --max-rate holds the wire rate across all streams: 6 MiB of random data
# at 2 MiB/s over 3 streams cannot take less than about 3 s (a lower bound
# only: a busy machine makes it slower, never faster).
. "$(dirname "$0")/functions.sh"

mk_image "$T/src.img" random $((6 * 1048576))
start_source SRC "$T/src.img"
start=$(date +%s.%N)
replicate --source "$SRC" --target "$T/dst.img" --mode full --streams 3 \
  --max-rate 2M --request-size 256k || fail "rate-limited sync failed"
took=$(echo "$(date +%s.%N) - $start" | bc)
same "$T/src.img" "$T/dst.img"
echo "6 MiB at 2 MiB/s took $took s"
[ "$(echo "$took >= 2.5" | bc)" = 1 ] || fail "--max-rate 2M let 6 MiB through in $took s"
echo ok
