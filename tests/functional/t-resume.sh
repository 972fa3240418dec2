#!/bin/bash
# Connections cut by a proxy at several points, in full and delta syncs:
# each rerun (or --retry) completes, the target ends identical, and data
# already written and flushed is not sent again.
. "$(dirname "$0")/functions.sh"

size=$((24 * 1048576))
mk_image "$T/src.img" random $size
start_source SRC "$T/src.img"
sport=${SRC##*:}

# proxy NAME CUT_AFTER [MAX_CUTS]: sets PROXY to its address.
proxy ()
{
  start_bg "proxy-$1" python3 "$TOP/tests/functional/cutproxy.py" \
    "$T/proxy-$1.port" "$sport" "$2" "${3:-1}"
  wait_for_file "$T/proxy-$1.port" 10 || fail "proxy did not start"
  PROXY=127.0.0.1:$(cat "$T/proxy-$1.port")
}

# Full syncs cut at several points; the rerun through the source directly.
for cut in 1000000 6000000 15000000; do
  rm -f "$T/dst.img" "$T/dst.img.rwstate"
  proxy "full$cut" $cut
  if replicate --source "$PROXY" --target "$T/dst.img" --mode full \
       --streams 1 --inflight 2 --max-rate 6M 2> "$T/err"; then
    echo "note: the cut at $cut came too late to interrupt"
  else
    grep -q "connection to the source lost\|closed the connection\|receive from" "$T/err" \
      || { cat "$T/err"; fail "cut at $cut: no clear error"; }
  fi
  replicate --source "$SRC" --target "$T/dst.img" --mode full \
    --stats-json "$T/s.json" 2> "$T/err2" || { cat "$T/err2"; fail "rerun after a cut at $cut"; }
  same "$T/src.img" "$T/dst.img"
  resumed=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0].get("resumed_at", 0))' "$T/s.json")
  data=$(stat_json "$T/s.json" data_bytes)
  [ $((resumed + data)) -eq $size ] || fail "cut at $cut: resumed at $resumed but pulled $data"
  echo "full, cut at $cut: resumed at $resumed, pulled $data"
done

# --retry: the same run survives two cuts by itself.
rm -f "$T/dst.img" "$T/dst.img.rwstate"
proxy retry 5000000 2
replicate --source "$PROXY" --target "$T/dst.img" --mode full --retry 4 \
  --streams 2 --max-rate 8M --stats-json "$T/s.json" 2> "$T/err" \
  || { cat "$T/err"; fail "--retry did not complete"; }
same "$T/src.img" "$T/dst.img"
grep -q "retry 1 of 4" "$T/err" || fail "no retry was reported"

# Delta cut in the middle: the rerun sends only what is still missing.
python3 - "$T/src.img" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:
    for i in range(0, 24, 2):
        f.seek(i * 1048576); f.write(os.urandom(1048576))
PY
proxy delta 4000000
replicate --source "$PROXY" --target "$T/dst.img" --mode delta --streams 1 \
  --inflight 2 --max-rate 4M 2> "$T/err" && echo "note: delta finished before the cut"
replicate --source "$SRC" --target "$T/dst.img" --mode delta \
  --stats-json "$T/s.json" || fail "delta rerun"
same "$T/src.img" "$T/dst.img"
data=$(stat_json "$T/s.json" data_bytes)
[ "$data" -lt $((12 * 1048576)) ] || fail "delta rerun pulled $data bytes: the first run's work was sent again"
echo "delta rerun pulled $data of $((12 * 1048576)) changed bytes"
echo ok
