#!/bin/bash
# The control channel: hello, status, inventory, logs; authentication
# (a wrong secret gets nothing, the worker keeps serving); requests before
# hello, malformed JSON, bad arguments and oversize messages get error
# replies and the connection keeps working.
. "$(dirname "$0")/functions.sh"
. "$(dirname "$0")/worker-functions.sh"

start_worker

ctl hello > "$T/hello" || fail "hello failed"
grep -q "rw-worker .* (control protocol 1)" "$T/hello" \
  || fail "hello: $(cat "$T/hello")"
ctl --json hello > "$T/hello.json"
[ "$(jget "$T/hello.json" "j['product']")" = rw-worker ] || fail "hello json"
[ "$(jget "$T/hello.json" "'sync' in j['requests']")" = True ] \
  || fail "requests"
ctl --json status > "$T/st.json"
[ "$(jget "$T/st.json" "j['state']")" = idle ] || fail "not idle"
[ "$(jget "$T/st.json" "j['job']")" = None ] || fail "a job before any"
ctl --json inventory > "$T/inv.json" || fail "inventory failed"
jget "$T/inv.json" "[d['path'] for d in j['disks']]" > /dev/null \
  || fail "inventory: no disk paths"
ctl logs -n 5 > "$T/logs" || fail "logs failed"
grep -q "control channel on 127.0.0.1" "$T/logs" \
  || { cat "$T/logs"; fail "logs: the startup line is missing"; }

# A wrong secret: no handshake, no request, a clear message.
mk_secret "$T/other"
if "$RW_BIN/rw-ctl" --worker "$WORKER" --secret-file "$T/other" status \
     > "$T/out" 2> "$T/err"; then
  fail "a wrong secret was accepted"
fi
[ ! -s "$T/out" ] || fail "output with a wrong secret: $(cat "$T/out")"
grep -q "does not hold the same secret" "$T/err" || fail "no clear message"
# Plain text (no TLS) is refused too.
printf '{"id":1,"request":"hello"}\n' | timeout 5 \
  python3 -c 'import socket,sys
h,p=sys.argv[1].split(":"); s=socket.create_connection((h,int(p)))
s.sendall(sys.stdin.buffer.read()); s.settimeout(1)
try: d=s.recv(100)
except Exception: d=b""
sys.stdout.write(repr(d))' "$WORKER" > "$T/plain" || true
! grep -q '"ok"' "$T/plain" || fail "plain text got a reply"
ctl status > /dev/null || fail "the worker stopped serving after bad clients"

# Bad requests on one connection: each gets an error, then it still works.
cat > "$T/req" <<'REQ'
{"id":1,"request":"status"}
{"id":2,"request":"hello"}
{"id":3,"request":"hello"}
this is not json
{"id":4,"request":"status"
[1,2,3]
{"request":"status"}
{"id":-1,"request":"status"}
{"id":5,"request":"frobnicate"}
{"id":6,"request":"status","args":{"x":1}}
{"id":7,"request":"sync","args":{"source":"127.0.0.1:1"}}
{"id":8,"request":"sync","args":{"source":"h:1","source_secret":"0123456789abcdef","map":[{"disk":0,"target":"/a"},{"disk":0,"target":"/b"}]}}
{"id":9,"request":"logs","args":{"n":0}}
{"id":10,"request":"status","id":11}
{"id":12,"request":"status"}
REQ
ctl raw < "$T/req" > "$T/replies" || fail "raw failed"
check_reply ()
{
  sed -n "$1p" "$T/replies" | grep -q "$2" \
    || fail "reply $1: expected $2, got: $(sed -n "$1p" "$T/replies")"
}
check_reply 1 '"id":1,"ok":false,"error":{"code":"need-hello"'
check_reply 2 '"id":2,"ok":true'
check_reply 3 '"id":3,"ok":false.*only once'
check_reply 4 '"id":null,"ok":false,"error":{"code":"bad-json"'
check_reply 5 '"code":"bad-json"'
check_reply 6 '"code":"bad-request"'
check_reply 7 '"id":null.*"code":"bad-request".*id'
check_reply 8 '"id":null.*"code":"bad-request"'
check_reply 9 '"id":5,.*"code":"unknown-request"'
check_reply 10 '"id":6,.*unknown argument'
check_reply 11 '"id":7,.*missing argument'
check_reply 12 '"id":8,.*mapped twice'
check_reply 13 '"id":9,.*n: expected an integer'
check_reply 14 '"code":"bad-json"'
check_reply 15 '"id":12,"ok":true'
[ "$(wc -l < "$T/replies")" -eq 15 ] || fail "extra replies"

# An oversize message (over 1 MiB without a newline): an error reply, the
# rest of it is skipped, and the next request on the same connection
# works.
python3 -c '
import sys
sys.stdout.write("{\"id\":1,\"request\":\"hello\"}\n")
sys.stdout.write("{\"id\":2,\"request\":\"hello\",\"args\":"
                 "{\"client\":\"" + "x" * 3000000 + "\"}}\n")
sys.stdout.write("{\"id\":3,\"request\":\"status\"}\n")' > "$T/big"
ctl raw < "$T/big" > "$T/replies" || fail "raw (oversize) failed"
check_reply 1 '"id":1,"ok":true'
check_reply 2 '"ok":false,"error":{"code":"too-large"'
check_reply 3 '"id":3,"ok":true'

kill -0 "$WORKER_PID" || fail "rw-worker died"
grep -q "message over 1048576 bytes refused" "$T/worker.log" \
  || fail "the oversize message was not logged"

# rw.secret (a literal secret on the kernel command line) overrides the
# secret file.
kill "$WORKER_PID"
wait "$WORKER_PID" 2> /dev/null || true
printf 'lab-secret-0123456789\n' > "$T/lab"
WORKER_CMDLINE="rw.secret=lab-secret-0123456789"
start_worker
if ctl status > /dev/null 2>&1; then
  fail "the secret file still works with rw.secret set"
fi
"$RW_BIN/rw-ctl" --worker "$WORKER" --secret-file "$T/lab" status \
  > /dev/null || fail "rw.secret does not work"
! grep -q lab-secret "$T/worker.log" || fail "rw.secret was logged"
echo ok
