#!/bin/bash
# The source dies in the middle of a sync: a clear error and a non-zero
# exit; the rerun resumes from the checkpoint and does not send again what
# was already written and flushed.
. "$(dirname "$0")/functions.sh"

size=$((64 * 1048576))
mk_image "$T/src.img" random $size
start_source SRC "$T/src.img"
# Slow enough (4 MB/s, few requests in flight) that the kill lands in the middle.
start_bg pull "$RW_BIN/rw-replicate" --secret-file "$T/secret" --no-progress \
  --source "$SRC" --target "$T/dst.img" --mode full --max-rate 4M --inflight 2 \
  --streams 1
pull=$LAST_PID
sleep 3.5
kill -9 "$SRC_PID"

rc=0
wait "$pull" || rc=$?
[ "$rc" -ne 0 ] || fail "rw-replicate succeeded although its source died"
grep -q "connection to the source lost" "$T/pull.log" || { cat "$T/pull.log"; fail "no clear error"; }
[ -s "$T/dst.img.rwstate" ] || fail "no checkpoint after the failure"
done_below=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["done_below"])' "$T/dst.img.rwstate")
[ "$done_below" -gt 0 ] || fail "the checkpoint records no progress"

# The source comes back (on another port); the rerun resumes.
start_source SRC2 "$T/src.img"
replicate --source "$SRC2" --target "$T/dst.img" --mode full \
  --stats-json "$T/s.json" || fail "the rerun failed"
same "$T/src.img" "$T/dst.img"
data=$(stat_json "$T/s.json" data_bytes)
[ "$data" -le $((size - done_below)) ] || fail "resent data: $data bytes after $done_below were done"
grep -q "resuming the full sync" "$T/pull.log" "$T"/*.log 2>/dev/null || true
echo "resumed at $done_below, pulled $data of $size bytes"
echo ok
