#!/bin/bash
# A wrong or missing secret gets nothing, and the target is untouched.
# The secret never shows in logs or on command lines.
. "$(dirname "$0")/functions.sh"

mk_image "$T/src.img" random 1048576
mk_image "$T/tgt.img" text 1048576
cp "$T/tgt.img" "$T/tgt.orig"
start_source SRC "$T/src.img"
mk_secret "$T/other"
if "$RW_BIN/rw-replicate" --source "$SRC" --secret-file "$T/other" \
     --no-progress --target "$T/tgt.img" --mode full 2> "$T/err"; then
  fail "a wrong secret was accepted"
fi
grep -q "does not hold the same secret" "$T/err" || { cat "$T/err"; fail "no clear message"; }
same "$T/tgt.img" "$T/tgt.orig"
if "$RW_BIN/rw-replicate" --source "$SRC" --secret-file "$T/other" \
     --no-progress --target "$T/new.img" 2> /dev/null; then
  fail "a wrong secret was accepted (new target)"
fi
[ ! -e "$T/new.img" ] || fail "a target was created without authentication"
# A too-short secret is refused up front.
printf 'short' > "$T/short"
if "$RW_BIN/rw-replicate" --source "$SRC" --secret-file "$T/short" \
     --target "$T/new.img" 2> "$T/err"; then
  fail "a 5-byte secret was accepted"
fi
grep -q "secret is too short" "$T/err" || fail "no message for a short secret"
# A missing secret file.
if "$RW_BIN/rw-replicate" --source "$SRC" --secret-file "$T/nope" \
     --target "$T/new.img" 2> "$T/err"; then
  fail "a missing secret file was accepted"
fi
grep -q "secret file $T/nope" "$T/err" || fail "no message for a missing secret file"
# The right secret still works, and no log holds it.
replicate --source "$SRC" --target "$T/tgt.img" --mode full 2> "$T/ok.log" || fail "right secret refused"
same "$T/src.img" "$T/tgt.img"
s=$(cat "$T/secret")
! grep -qF "$s" "$T"/*.log || fail "the secret appears in a log"
ps -eo args > "$T/ps.txt"
! grep -qF "$s" "$T/ps.txt" || fail "the secret appears on a command line"
# The source kept serving after the failed handshakes.
kill -0 "$SRC_PID" || fail "rw-source died"
echo ok
