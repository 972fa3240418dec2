#!/bin/bash
# Every long option a program accepts appears in its --help (and nothing
# in --help is unknown to it); bad options and values get a one-line error
# and exit 2 without touching anything.
. "$(dirname "$0")/functions.sh"

for prog in rw-source rw-replicate; do
  src=$TOP/worker/$prog.c
  "$RW_BIN/$prog" --help > "$T/help" || fail "$prog --help failed"
  opts=$(sed -n '/struct option longopts/,/NULL, 0, NULL, 0/p' "$src" \
           | grep -o '{ "[a-z-]*"' | tr -d '{" ')
  [ -n "$opts" ] || fail "$prog: no options found in $src"
  for o in $opts; do
    grep -q -- "--$o\b" "$T/help" || fail "$prog: --$o is not in --help"
  done
  for o in $(grep -o -- '--[a-z][a-z-]*' "$T/help" | sort -u); do
    echo "$opts" | grep -qx -- "${o#--}" || fail "$prog: --help names $o, which it does not accept"
  done
  "$RW_BIN/$prog" --version | grep -q "^$prog " || fail "$prog --version"
done

# bad_usage PROG ARGS...: exit 2 and exactly one line on stderr.
bad_usage ()
{
  local rc=0
  "$RW_BIN/$@" > /dev/null 2> "$T/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "$* exited $rc, 2 expected"
  [ "$(wc -l < "$T/err")" -le 2 ] || { cat "$T/err"; fail "$*: more than a line of error"; }
  grep -q "error" "$T/err" || fail "$*: no error message"
}
mk_secret "$T/s"
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --streams 0
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --streams lots
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --mode sideways
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --max-rate 5Q
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --request-size 1000
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --chunk-size 16M
bad_usage rw-replicate --source x --secret-file "$T/s" --map 0
bad_usage rw-replicate --source x --secret-file "$T/s" --map x=/tmp/y
bad_usage rw-replicate --source x --secret-file "$T/s" --target a --map 0=b
bad_usage rw-replicate --source x --secret-file "$T/s"
bad_usage rw-replicate --secret-file "$T/s" --target "$T/t"
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" --disk 0 --disk 1
bad_usage rw-replicate --source x --secret-file "$T/s" --target "$T/t" stray
bad_usage rw-source --disk /nonexistent
bad_usage rw-source --secret-file "$T/s" --max-clients 0 --disk x
[ ! -e "$T/t" ] || fail "a target was created by a bad command line"
# A source that cannot open its disk says so and exits non-zero.
if "$RW_BIN/rw-source" --listen 127.0.0.1:0 --disk "$T/nope.img" --secret-file "$T/s" 2> "$T/err"; then
  fail "rw-source served a missing disk"
fi
grep -q "open $T/nope.img" "$T/err" || fail "no clear message for a missing disk"
# An address with a bad port.
if "$RW_BIN/rw-replicate" --source 127.0.0.1:99999 --secret-file "$T/s" --target "$T/t" 2> "$T/err"; then
  fail "port 99999 was accepted"
fi
grep -q "port" "$T/err" || fail "no clear message for a bad port"
echo ok
