# Helpers for the rw-worker tests (t-worker-*.sh), sourced after
# functions.sh.

# start_worker: starts rw-worker on a free port of 127.0.0.1 with the
# secret $T/wsecret (created if missing) and the state in $T/state; sets
# WORKER (127.0.0.1:PORT) and WORKER_PID.  Extra options: the array
# WORKER_ARGS; extra kernel command line: $WORKER_CMDLINE.
start_worker ()
{
  [ -f "$T/wsecret" ] || mk_secret "$T/wsecret"
  rm -f "$T/worker.port"
  start_bg worker "$RW_BIN/rw-worker" --control 127.0.0.1:0 \
    --secret-file "$T/wsecret" --state-dir "$T/state" --config '' \
    --portfile "$T/worker.port" --pidfile "$T/worker.pid" \
    --cmdline "rw.syslog=0 ${WORKER_CMDLINE:-}" "${WORKER_ARGS[@]}"
  wait_for_file "$T/worker.port" 10 \
    || { cat "$T/worker.log" >&2; fail "rw-worker did not start"; }
  WORKER=127.0.0.1:$(cat "$T/worker.port")
  WORKER_PID=$LAST_PID
}
WORKER_ARGS=()

# ctl ARGS...: rw-ctl against the test worker.
ctl ()
{
  "$RW_BIN/rw-ctl" --worker "$WORKER" --secret-file "$T/wsecret" "$@"
}

# jget JSON-FILE PYTHON-EXPR: evaluates EXPR with j = the last JSON line.
jget ()
{
  python3 -c '
import json, sys
j = json.loads([l for l in open(sys.argv[1]) if l.strip()][-1])
print(eval(sys.argv[2]))' "$1" "$2"
}

# wait_job_state STATE SECONDS: until the worker's current job is STATE.
wait_job_state ()
{
  local i=0
  while :; do
    ctl --json status > "$T/st.json" || fail "status failed"
    [ "$(jget "$T/st.json" "(j['job'] or {}).get('state')")" = "$1" ] \
      && return 0
    i=$((i + 1))
    [ "$i" -le $(($2 * 10)) ] || return 1
    sleep 0.1
  done
}

# wait_progress MIN SECONDS: until the running job has covered MIN bytes.
wait_progress ()
{
  local i=0
  while :; do
    ctl --json status > "$T/st.json" || fail "status failed"
    [ "$(jget "$T/st.json" \
         "((j['job'] or {}).get('progress') or {}).get('done', 0)")" \
         -ge "$1" ] && return 0
    i=$((i + 1))
    [ "$i" -le $(($2 * 10)) ] || return 1
    sleep 0.1
  done
}
