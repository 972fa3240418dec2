#!/bin/bash
# Through the worker: preflight (a too-small target, an unreachable
# source, a wrong source secret, an unmapped disk), a full sync, a delta
# after changes on both ends, and verify.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/worker-functions.sh"

mk_image "$T/src0.img" mixed $((8 << 20))
mk_image "$T/src1.img" sparse $((16 << 20))
start_source SRC "$T/src0.img" "$T/src1.img"
start_worker
S=(--source "$SRC" --source-secret-file "$T/secret")

# Preflight: an existing target smaller than its source disk, a missing
# one, and disk 1 not mapped at first.
truncate -s 1M "$T/small.img"
ctl preflight "${S[@]}" --map 0="$T/small.img" > "$T/pf" \
  || { cat "$T/pf"; fail "preflight reported errors for a short file"; }
grep -q "^warning  *target-too-small" "$T/pf" || fail "no too-small finding"
grep -q "^warning  *source-disk-unmapped" "$T/pf" || fail "no unmapped finding"
ctl --json preflight "${S[@]}" --map 0="$T/t0.img" --map 1="$T/t1.img" \
  > "$T/pf.json" || fail "preflight failed"
[ "$(jget "$T/pf.json" "j['ok']")" = True ] || fail "preflight not ok"
[ "$(jget "$T/pf.json" "sorted(f['code'] for f in j['findings'])")" \
  = "['target-created', 'target-created']" ] \
  || fail "findings: $(cat "$T/pf.json")"
[ "$(jget "$T/pf.json" "[d['size'] for d in j['source']['disks']]")" \
  = "[$((8 << 20)), $((16 << 20))]" ] || fail "source disks"
[ ! -e "$T/t0.img" ] || fail "preflight created a target"
[ "$(stat -c %s "$T/small.img")" -eq $((1 << 20)) ] || fail "preflight wrote"
# A disk the source does not have.
if ctl preflight "${S[@]}" --map 7="$T/t7.img" > "$T/pf"; then
  fail "preflight passed with a missing source disk"
fi
grep -q "^error  *no-such-source-disk" "$T/pf" \
  || fail "no missing-disk finding"
# An unreachable source.
if ctl preflight --source 127.0.0.1:"$(free_port)" \
     --source-secret-file "$T/secret" --map 0="$T/t0.img" > "$T/pf"; then
  fail "preflight passed with an unreachable source"
fi
grep -q "^error  *source-unreachable" "$T/pf" || fail "no unreachable finding"
# A wrong source secret.
mk_secret "$T/other"
if ctl preflight --source "$SRC" --source-secret-file "$T/other" \
     --map 0="$T/t0.img" > "$T/pf"; then
  fail "preflight passed with a wrong source secret"
fi
grep -q "^error  *source-auth" "$T/pf" || fail "no auth finding"

# Full sync of both disks, waiting, with progress on a non-tty.
ctl sync "${S[@]}" --map 0="$T/t0.img" --map 1="$T/t1.img" --mode full \
  --wait > "$T/sync" || { cat "$T/sync"; fail "full sync failed"; }
grep -q "^job 1 done" "$T/sync" || fail "no done line: $(cat "$T/sync")"
same "$T/src0.img" "$T/t0.img"
same "$T/src1.img" "$T/t1.img"
[ -s "$T/state/last-job.json" ] || fail "no last-job.json"

# Changes on the source and on the target; a delta puts both right.
dd if=/dev/urandom of="$T/src0.img" bs=64K count=2 seek=5 conv=notrunc \
  status=none
dd if=/dev/urandom of="$T/t1.img" bs=4K count=1 seek=100 conv=notrunc \
  status=none
ctl --json sync "${S[@]}" --map 0="$T/t0.img" --map 1="$T/t1.img" \
  --mode delta --wait > "$T/delta.json" || fail "delta failed"
[ "$(jget "$T/delta.json" "j['result']['state']")" = done ] \
  || fail "delta state"
changed=$(jget "$T/delta.json" "j['result']['result']['changed_bytes']")
[ "$changed" -gt 0 ] && [ "$changed" -lt $((1 << 20)) ] \
  || fail "delta changed $changed bytes"
grep -q '"event":"progress"' "$T/delta.json" || fail "no progress events"
grep -q '"event":"finished"' "$T/delta.json" || fail "no finished event"
same "$T/src0.img" "$T/t0.img"
same "$T/src1.img" "$T/t1.img"

# Verify: the same disks pass; a changed target fails.
ctl verify "${S[@]}" --map 0="$T/t0.img" --wait > "$T/verify" \
  || { cat "$T/verify"; fail "verify of identical disks failed"; }
dd if=/dev/urandom of="$T/t0.img" bs=4K count=1 seek=3 conv=notrunc \
  status=none
if ctl verify "${S[@]}" --map 0="$T/t0.img" --wait > "$T/verify"; then
  fail "verify passed on a changed target"
fi
grep -q "failed" "$T/verify" || fail "verify: no failure line"
# A failed job says why, with the first error the worker logged.
if ctl --json sync "${S[@]}" --map 0="$T/nodir/t.img" --wait \
     > "$T/bad.json"; then
  fail "a sync into a missing directory succeeded"
fi
[ "$(jget "$T/bad.json" "j['result']['state']")" = failed ] \
  || fail "state: $(tail -1 "$T/bad.json")"
jget "$T/bad.json" "j['result']['detail']" | grep -q "$T/nodir/t.img" \
  || fail "no detail: $(tail -1 "$T/bad.json")"
grep -q '"event":"failed"' "$T/bad.json" || fail "no failed event"
# The source secret never reached a log.
s=$(cat "$T/secret")
! grep -qF "$s" "$T"/*.log || fail "the source secret appears in a log"
! grep -rqF "$s" "$T/state" || fail "the source secret appears in the state"
echo ok
