#!/bin/bash
# Jobs: the control connection dropped mid-sync and re-attached (the job
# carries on), a second sync refused while one runs, cancel, and shutdown
# (refused while a job runs, forced, and carried out by --shutdown-cmd).
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/worker-functions.sh"

mk_image "$T/src.img" random $((12 << 20))
start_source SRC "$T/src.img"
WORKER_ARGS=(--shutdown-cmd "touch $T/powered-off")
start_worker
S=(--source "$SRC" --source-secret-file "$T/secret")

# A slow sync (1 MiB/s: about 12 s, room for the checks below on a busy
# machine); its waiting client is killed.
start_bg waiter "$RW_BIN/rw-ctl" --worker "$WORKER" \
  --secret-file "$T/wsecret" sync "${S[@]}" --map 0="$T/t.img" \
  --mode full --max-rate 1M --wait
waiter=$LAST_PID
wait_progress 1 10 || fail "the sync did not start"
kill -9 "$waiter"
wait "$waiter" 2> /dev/null || true
ctl --json status > "$T/st.json"
[ "$(jget "$T/st.json" "j['job']['state']")" = running ] \
  || fail "the job stopped with its connection"

# One job at a time.
if ctl sync "${S[@]}" --map 0="$T/other.img" > "$T/out" 2> "$T/err"; then
  fail "a second sync was accepted"
fi
grep -q "busy" "$T/err" || fail "no busy error: $(cat "$T/err")"
[ ! -e "$T/other.img" ] || fail "the refused sync created its target"
# Shutdown is refused while the job runs.
if ctl shutdown > /dev/null 2> "$T/err"; then
  fail "shutdown accepted during a job"
fi
grep -q busy "$T/err" || fail "shutdown: no busy error"

# Re-attach: the events from the start, then the end.
ctl --json attach > "$T/attach.json" || fail "re-attached job failed"
grep -q '"event":"started"' "$T/attach.json" || fail "no started event"
n=$(grep -c '"event":"progress"' "$T/attach.json")
[ "$n" -ge 2 ] || fail "only $n progress events"
[ "$(jget "$T/attach.json" "j['result']['state']")" = done ] || fail "not done"
same "$T/src.img" "$T/t.img"

# Cancel: the job ends as cancelled and rw-ctl --wait fails.
start_bg waiter2 "$RW_BIN/rw-ctl" --worker "$WORKER" \
  --secret-file "$T/wsecret" sync "${S[@]}" --map 0="$T/t2.img" \
  --mode full --max-rate 2M --wait
waiter=$LAST_PID
wait_progress 1 10 || fail "the second sync did not start"
ctl cancel > "$T/cancel" || fail "cancel failed"
rc=0
wait "$waiter" || rc=$?
[ "$rc" -eq 1 ] || fail "rw-ctl --wait exited $rc after cancel"
grep -q "cancelled" "$T/waiter2.log" || fail "waiter: $(cat "$T/waiter2.log")"
wait_job_state cancelled 10 || fail "the job is not cancelled"
if ctl cancel 2> "$T/err"; then fail "cancelled a finished job"; fi
grep -q not-running "$T/err" || fail "cancel twice: $(cat "$T/err")"
ctl logs -n 50 > "$T/logs"
grep -q "job 2 (sync) cancelled" "$T/logs" || fail "no log of the cancel"

# A forced shutdown cancels a running job, then powers off.
ctl sync "${S[@]}" --map 0="$T/t3.img" --mode full --max-rate 1M \
  > /dev/null || fail "third sync refused"
wait_progress 1 10 || fail "the third sync did not start"
ctl shutdown --force > "$T/sd" || fail "forced shutdown failed"
grep -q poweroff "$T/sd" || fail "shutdown reply: $(cat "$T/sd")"
for _ in $(seq 50); do
  kill -0 "$WORKER_PID" 2> /dev/null || break
  sleep 0.1
done
! kill -0 "$WORKER_PID" 2> /dev/null || fail "the worker did not exit"
[ -e "$T/powered-off" ] || fail "the shutdown command did not run"
grep -q '"state": "cancelled"' "$T/state/last-job.json" \
  || fail "last-job.json: $(cat "$T/state/last-job.json")"
echo ok
