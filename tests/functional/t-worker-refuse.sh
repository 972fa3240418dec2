#!/bin/bash
# The worker refuses to write the disk it booted from (or any disk in
# use): sync, verify and prepare naming it are refused before any job
# starts, and preflight reports it.  Targets are files in the other
# tests, so here we name the host's own boot disk, as rw-worker sees it.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/worker-functions.sh"

mk_image "$T/src.img" random 1048576
start_source SRC "$T/src.img"
WORKER_CMDLINE="rw.prepare_cmd=/bin/true"
start_worker
ctl --json hello > "$T/hello.json"
boot=$(jget "$T/hello.json" "j.get('boot_disk') or ''")
[ -n "$boot" ] || skip "rw-worker found no boot disk on this host"
dev=/dev/$boot
[ -b "$dev" ] || skip "$dev is not a block device here"
S=(--source "$SRC" --source-secret-file "$T/secret")

for req in sync verify; do
  if ctl "$req" "${S[@]}" --map 0="$dev" > "$T/out" 2> "$T/err"; then
    fail "$req of the boot disk $dev was accepted"
  fi
  grep -q "in-use: $dev" "$T/err" || fail "$req: $(cat "$T/err")"
done
if ctl prepare "$dev" > "$T/out" 2> "$T/err"; then
  fail "prepare of the boot disk $dev was accepted"
fi
grep -q "in-use: $dev" "$T/err" || fail "prepare: $(cat "$T/err")"
ctl --json status > "$T/st.json"
[ "$(jget "$T/st.json" "j['job']")" = None ] || fail "a job was started"
if ctl preflight "${S[@]}" --map 0="$dev" > "$T/pf"; then
  fail "preflight passed for the boot disk"
fi
grep -q "^error  *target-in-use" "$T/pf" || fail "preflight: $(cat "$T/pf")"
grep -q "refused target $dev" "$T/worker.log" || fail "refusal not logged"
echo ok
