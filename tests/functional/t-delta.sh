#!/bin/bash
# Delta syncs: scattered changes (1%, 10%, 100%), changes made only on the
# target, data grown into zero space, a zeroed region.  Each time the
# target ends identical, and the wire carries at most the changed bytes
# plus the hash list plus 2%.
. "$(dirname "$0")/functions.sh"

size=$((64 * 1048576))
chunk=65536
python3 - "$T/src.img" $size <<'PY'
import os, sys
f, size = sys.argv[1], int(sys.argv[2])
with open(f, "wb") as o:
    o.write(os.urandom(size // 2))    # data, then zeros
    o.truncate(size)
PY
start_source SRC "$T/src.img"
replicate --source "$SRC" --target "$T/dst.img" --mode full || fail "initial sync"
same "$T/src.img" "$T/dst.img"

# change FILE PERCENT SEED [zero]: rewrite PERCENT% of the 64 KiB pieces.
change ()
{
  python3 - "$@" <<'PY'
import os, random, sys
f, pct, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
zero = len(sys.argv) > 4
size = os.path.getsize(f)
n = size // 65536
r = random.Random(seed)
pieces = r.sample(range(n), max(1, int(n * pct / 100)))
with open(f, "r+b") as o:
    for p in pieces:
        o.seek(p * 65536)
        o.write(b"\0" * 65536 if zero else os.urandom(65536))
print(len(pieces) * 65536)
PY
}

hashlist=$(( (size / chunk) * 16 ))
check_delta ()
{
  local what=$1 changed=$2
  replicate --source "$SRC" --target "$T/dst.img" --stats-json "$T/s.json" \
    || fail "$what: delta failed"
  same "$T/src.img" "$T/dst.img"
  local wire ch mode
  wire=$(stat_json "$T/s.json" wire_bytes)
  ch=$(stat_json "$T/s.json" changed_bytes)
  mode=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["disks"][0]["mode"])' "$T/s.json")
  [ "$mode" = delta ] || fail "$what: ran in mode $mode, not delta"
  [ "$ch" -ge "$changed" ] || fail "$what: changed_bytes $ch < $changed"
  limit=$(( (changed + hashlist) * 102 / 100 + 16384 ))
  echo "$what: changed $changed, reported $ch, wire $wire (limit $limit)"
  [ "$wire" -le "$limit" ] || fail "$what: $wire bytes on the wire, at most $limit allowed"
}

# Changes made on the target only are put back, with no data when the
# source's chunk is zero (the upper half).
python3 - "$T/dst.img" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as o:
    for off in (4096, 10 * 1048576 + 123, 40 * 1048576, 60 * 1048576 + 7):
        o.seek(off); o.write(b"target-side change")
PY
replicate --source "$SRC" --target "$T/dst.img" --stats-json "$T/s.json" || fail "target-side delta"
same "$T/src.img" "$T/dst.img"
[ "$(stat_json "$T/s.json" changed_bytes)" -eq $((4 * chunk)) ] || fail "target-side: changed_bytes"
w=$(stat_json "$T/s.json" wire_bytes)
[ "$w" -le $(( (2 * chunk + hashlist) * 102 / 100 + 16384 )) ] || fail "target-side: $w bytes on the wire"

for pct in 1 10 100; do
  c=$(change "$T/src.img" $pct $pct)
  check_delta "$pct% changed" "$c"
done

# The source grows data into zero space, then zeroes a region.
python3 - "$T/src.img" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as o:
    o.seek(50 * 1048576); o.write(os.urandom(3 * 1048576))
PY
check_delta "grown into zeros" $((3 * 1048576))
c=$(change "$T/src.img" 5 77 zero)
replicate --source "$SRC" --target "$T/dst.img" --stats-json "$T/s.json" || fail "zeroed delta"
same "$T/src.img" "$T/dst.img"
w=$(stat_json "$T/s.json" wire_bytes)
[ "$w" -le $(( hashlist * 102 / 100 + 16384 )) ] || fail "zeroed region: $w bytes on the wire (zeros must not cross it)"

# --dry-run reports and writes nothing.
change "$T/src.img" 1 5 > /dev/null
cp "$T/dst.img" "$T/before.img"
replicate --source "$SRC" --target "$T/dst.img" --mode delta --dry-run \
  --stats-json "$T/s.json" || fail "dry run failed"
same "$T/dst.img" "$T/before.img"
[ "$(stat_json "$T/s.json" changed_bytes)" -gt 0 ] || fail "dry run saw no changes"
# verify mode reports the differing ranges and fails.
if replicate --source "$SRC" --target "$T/dst.img" --mode verify \
     --stats-json "$T/s.json" 2> "$T/err"; then
  fail "verify passed on differing disks"
fi
grep -q "differs @" "$T/err" || fail "verify listed no ranges"
same "$T/dst.img" "$T/before.img"
# A real delta then makes them equal, and verify passes.
replicate --source "$SRC" --target "$T/dst.img" --verify || fail "final delta"
replicate --source "$SRC" --target "$T/dst.img" --mode verify || fail "verify after delta"
same "$T/src.img" "$T/dst.img"
echo ok
