#!/usr/bin/env python3
"""A TCP proxy for tests that cuts connections on purpose.

cutproxy.py LISTEN_PORT_FILE TARGET_PORT CUT_AFTER [MAX_CUTS]

Forwards 127.0.0.1:<ephemeral> to 127.0.0.1:TARGET_PORT.  Once CUT_AFTER
bytes in total have flowed from the server to the client, every open
connection is reset; this happens at most MAX_CUTS times (default 1),
after which the proxy forwards faithfully.  The chosen port is written to
LISTEN_PORT_FILE.
"""
import socket, sys, threading

port_file, target, cut_after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
max_cuts = int(sys.argv[4]) if len(sys.argv) > 4 else 1
lock = threading.Lock()
state = {"down": 0, "cuts": 0, "conns": []}

def pump(src, dst, downstream):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
            if downstream:
                with lock:
                    state["down"] += len(b)
                    if state["cuts"] < max_cuts and state["down"] >= cut_after:
                        state["cuts"] += 1
                        state["down"] = 0
                        # shutdown wakes the other pump threads; close alone
                        # would not while they block in recv.
                        for c in state["conns"]:
                            try:
                                c.shutdown(socket.SHUT_RDWR)
                                c.close()
                            except OSError:
                                pass
                        state["conns"] = []
                        return
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", 0))
ls.listen(64)
with open(port_file + ".tmp", "w") as f:
    f.write(str(ls.getsockname()[1]))
import os
os.rename(port_file + ".tmp", port_file)
while True:
    c, _ = ls.accept()
    try:
        s = socket.create_connection(("127.0.0.1", target))
    except OSError:
        c.close()
        continue
    with lock:
        state["conns"] += [c, s]
    threading.Thread(target=pump, args=(c, s, False), daemon=True).start()
    threading.Thread(target=pump, args=(s, c, True), daemon=True).start()
