#!/bin/bash
# Garbage on rw-source's port: the connection is closed, the server keeps
# serving others.
. "$(dirname "$0")/functions.sh"

mk_image "$T/src.img" mixed 2097152
start_source SRC "$T/src.img"
port=${SRC##*:}
python3 - "$port" <<'PY'
import os, socket, sys, time
port = int(sys.argv[1])
payloads = [os.urandom(4096), b"GET / HTTP/1.0\r\n\r\n", b"\x16\x03\x01\x00\x05hello",
            b"\x16\x03\x03" + b"\xff" * 3000, b""]
for p in payloads:
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        if p:
            s.sendall(p)
        s.shutdown(socket.SHUT_WR)
    except OSError:
        pass        # the server may already have closed it: fine
    # The server must close the connection, not hang on it.
    s.settimeout(20)
    try:
        while s.recv(4096):
            pass
    except ConnectionResetError:
        pass
    s.close()
# A client that connects and says nothing: the handshake times out, and
# meanwhile others are served (checked by the caller).
s = socket.create_connection(("127.0.0.1", port))
open(os.environ.get("T", "/tmp") + "/idle", "w").write("x")
time.sleep(0.1)
PY
replicate --source "$SRC" --target "$T/dst.img" --mode full || fail "the server stopped serving"
same "$T/src.img" "$T/dst.img"
kill -0 "$SRC_PID" || fail "rw-source died"
grep -qi "handshake" "$T/source0.log" || fail "rw-source did not log the bad handshakes"
echo ok
