#!/bin/bash
# prepare: without the rw-prepare program, a clear "not available" error;
# with one (a stand-in script here), its output lines come back as events
# and its JSON report with the job's result; a failing run fails the job.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/worker-functions.sh"

WORKER_CMDLINE="rw.prepare_cmd=$T/no-such-prepare"
start_worker
truncate -s 1M "$T/disk.img"
if ctl prepare "$T/disk.img" > "$T/out" 2> "$T/err"; then
  fail "prepare without rw-prepare was accepted"
fi
grep -q "unavailable: prepare not available" "$T/err" || fail "$(cat "$T/err")"
ctl --json hello > "$T/hello.json"
[ "$(jget "$T/hello.json" "j['prepare']")" = False ] || fail "hello: prepare"
kill "$WORKER_PID"
wait "$WORKER_PID" 2> /dev/null || true

# A stand-in with rw-prepare's interface: --backend native --report FILE
# DISK...; it fails when FAIL exists.
cat > "$T/fake-prepare" <<SH
#!/bin/sh
[ "\$1" = --backend ] && [ "\$2" = native ] && [ "\$3" = --report ] || exit 2
report=\$4; shift 4
if [ "\$1" = --replay-journal ]; then echo "replay-journal"; shift; fi
while [ "\$1" = --nic ] || [ "\$1" = --extension ]; do
  case "\$2" in
    firstboot:*) echo "ext \${2%%:*} \$(cat "\${2#firstboot:}")" ;;
    *=*) echo "nic \$2" ;;
    *) echo "ext now \$(cat "\$2")" ;;
  esac
  shift 2
done
echo "inspecting \$*"
echo "to stderr" >&2
printf '{"ok": true, "disks": ["%s"], "changes": ["virtio"]}\n' "\$1" \
  > "\$report"
[ ! -e "$T/FAIL" ] || { echo "conversion failed"; exit 3; }
echo "done"
SH
chmod +x "$T/fake-prepare"
WORKER_CMDLINE="rw.prepare_cmd=$T/fake-prepare"
start_worker
ctl --json prepare --wait "$T/disk.img" > "$T/prep.json" \
  || { cat "$T/prep.json"; fail "prepare failed"; }
grep -q "\"line\":\"inspecting $T/disk.img\"" "$T/prep.json" \
  || fail "no output event"
grep -q '"line":"to stderr"' "$T/prep.json" || fail "no stderr event"
[ "$(jget "$T/prep.json" "j['result']['result']['report']['changes']")" \
  = "['virtio']" ] || fail "report: $(tail -1 "$T/prep.json")"
[ "$(jget "$T/prep.json" "j['result']['result']['exit_status']")" = 0 ] \
  || fail "exit status"

# NIC mappings and extensions travel in the request; the worker checks
# them and passes them on (the extensions as files in its state dir).
printf 'echo first\n' > "$T/ext1.sh"
printf 'echo now\n' > "$T/ext2.sh"
ctl prepare --wait --nic 52:54:00:12:34:56=ens192 \
  --extension "firstboot:$T/ext1.sh" --extension "$T/ext2.sh" \
  "$T/disk.img" > "$T/prep2" 2>&1 || fail "prepare with nic: $(cat "$T/prep2")"
grep -q 'nic 52:54:00:12:34:56=ens192' "$T/prep2" || fail "nic: $(cat "$T/prep2")"
grep -q 'ext firstboot echo first' "$T/prep2" || fail "ext: $(cat "$T/prep2")"
grep -q 'ext now echo now' "$T/prep2" || fail "ext now: $(cat "$T/prep2")"
! grep -q 'replay-journal' "$T/prep2" || fail "--replay-journal unasked"
ctl prepare --wait --replay-journal "$T/disk.img" > "$T/prep4" 2>&1 \
  || fail "prepare --replay-journal: $(cat "$T/prep4")"
grep -q '^replay-journal' "$T/prep4" || fail "replay-journal: $(cat "$T/prep4")"
echo '{"id":1,"request":"hello","args":{"client":"t"}}
{"id":2,"request":"prepare","args":{"disks":["'"$T/disk.img"'"],"replay_journal":"yes"}}' \
  | ctl raw > "$T/prep5" 2>&1 || true
grep -q 'replay_journal' "$T/prep5" || fail "a non-boolean replay_journal: $(cat "$T/prep5")"
if ctl prepare --nic 52:54:00:12:34=x "$T/disk.img" > "$T/prep3" 2>&1; then
  fail "a bad --nic was accepted"
fi
grep -q 'nics\[0\]: expected MAC=NAME' "$T/prep3" || fail "$(cat "$T/prep3")"

touch "$T/FAIL"
if ctl prepare --wait "$T/disk.img" > "$T/prep" 2>&1; then
  fail "a failing prepare succeeded"
fi
grep -q "conversion failed" "$T/prep" || fail "output not relayed"
grep -q "exited with status 3" "$T/prep" || fail "$(cat "$T/prep")"
echo ok
