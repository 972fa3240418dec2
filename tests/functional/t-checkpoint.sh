#!/bin/bash
# A checkpoint from another source disk is refused; a malformed one is
# reported; auto mode picks full for a new target and delta after; the
# change-rate estimate appears after two deltas.
. "$(dirname "$0")/functions.sh"

mk_image "$T/a.img" random 4194304
mk_image "$T/b.img" random 4194304
start_source SRC "$T/a.img" "$T/b.img"
replicate --source "$SRC" --disk 0 --target "$T/t.img" --stats-json "$T/s.json" || fail "first sync"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disks"][0]; assert d["mode"]=="full", d' "$T/s.json" \
  || fail "auto did not pick full for a new target"
cp "$T/t.img" "$T/t.orig"
if replicate --source "$SRC" --disk 1 --target "$T/t.img" 2> "$T/err"; then
  fail "a checkpoint of another disk was accepted"
fi
grep -q "its checkpoint belongs to source disk" "$T/err" || { cat "$T/err"; fail "no clear message"; }
same "$T/t.img" "$T/t.orig"
# A full sync overrides it, with a warning.
replicate --source "$SRC" --disk 1 --target "$T/t.img" --mode full 2> "$T/err" || fail "full override"
grep -q "names another source disk" "$T/err" || fail "no warning on override"
same "$T/b.img" "$T/t.img"
# Two deltas: the estimate appears.
for i in 1 2; do
  dd if=/dev/urandom of="$T/b.img" bs=65536 count=3 seek=$((i * 5)) conv=notrunc 2>/dev/null
  sleep 1
  replicate --source "$SRC" --disk 1 --target "$T/t.img" --stats-json "$T/s.json" 2> "$T/err" || fail "delta $i"
done
same "$T/b.img" "$T/t.img"
grep -q "change rate" "$T/err" || { cat "$T/err"; fail "no change-rate estimate after two deltas"; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["disks"][0]; assert d["predicted_next_delta_seconds"] >= 0' "$T/s.json" \
  || fail "no prediction in the stats"
# A malformed checkpoint is reported, nothing written.
echo '{"identity": 5}' > "$T/t.img.rwstate"
cp "$T/t.img" "$T/t.orig"
if replicate --source "$SRC" --disk 1 --target "$T/t.img" 2> "$T/err"; then
  fail "a malformed checkpoint was accepted"
fi
grep -q "checkpoint .* is malformed" "$T/err" || { cat "$T/err"; fail "no clear message"; }
same "$T/t.img" "$T/t.orig"
echo ok
