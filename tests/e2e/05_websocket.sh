#!/usr/bin/env bash
# 05_websocket: an Upgrade becomes a byte tunnel, through two proxies:
# client -> proxy A outbound -> proxy B inbound -> backend /ws (echo).
. "$(dirname "$0")/lib.sh"

ports APP OUT_A ADM_A IN_B OUT_B ADM_B
export OUT_A IN_B

cat >"$ART/mesh.ini" <<EOF
[mesh]
domain = cluster.local

# the ws service's endpoint is its sidecar's inbound listener
[service ws]
port = 80
endpoint = 127.0.0.1:$IN_B
EOF

cat >"$ART/a.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT_A
admin = 127.0.0.1:$ADM_A

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

cat >"$ART/b.ini" <<EOF
[workload]
service = ws
app = 127.0.0.1:$APP

[listen]
inbound = 127.0.0.1:$IN_B
outbound = 127.0.0.1:$OUT_B
admin = 127.0.0.1:$ADM_B

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

start_backend app "$APP"
start_mesh proxy-a proxy -c "$ART/a.ini"
start_mesh proxy-b proxy -c "$ART/b.ini"
if ! wait_ready "$ADM_A" 10 || ! wait_ready "$ADM_B" 10; then
	fail "proxies start" "admin /ready did not answer 200"
	exit 1
fi
expect_eq "plain request through both proxies" app "$(body "http://127.0.0.1:$OUT_A/" -H 'Host: ws')"

py <<'PY'
import os
from rawhttp import *
OUT_A = env_port("OUT_A")

def session(label, port, host):
    s = connect(port, 5)
    r = Reader(s)
    try:
        resp, want = ws_handshake(s, r, host)
        if not expect("%s: 101 Switching Protocols" % label, resp.status == 101, "%r" % resp):
            return
        expect("%s: Sec-WebSocket-Accept is the backend's" % label, resp.get("sec-websocket-accept") == want,
               "got %r want %r" % (resp.get("sec-websocket-accept"), want))
        expect("%s: Upgrade: websocket forwarded back" % label, (resp.get("upgrade") or "").lower() == "websocket",
               "%r" % resp.headers)
        # text, binary (64 KiB + 1: 8-byte length), a fragmented message, a ping
        big = os.urandom(65537)
        s.sendall(ws_frame(1, b"hello mesh"))
        s.sendall(ws_frame(2, big))
        s.sendall(ws_frame(1, b"frag-1 ", fin=False) + ws_frame(0, b"frag-2"))
        s.sendall(ws_frame(9, b"are you there"))
        got = [ws_read(r) for _ in range(5)]
        expect("%s: text frame echoed" % label, got[0] == (True, 1, b"hello mesh"), "%r" % (got[0],))
        expect("%s: 64 KiB binary frame echoed" % label, got[1] == (True, 2, big), "len %d op %d" % (len(got[1][2]), got[1][1]))
        expect("%s: fragments echoed in order" % label,
               got[2] == (False, 1, b"frag-1 ") and got[3] == (True, 0, b"frag-2"), "%r %r" % (got[2], got[3]))
        expect("%s: ping answered with pong" % label, got[4] == (True, 10, b"are you there"), "%r" % (got[4],))
        # 100 small frames in one write, read back in order
        s.sendall(b"".join(ws_frame(1, b"m%03d" % i) for i in range(100)))
        msgs = [ws_read(r)[2] for _ in range(100)]
        expect("%s: 100 frames in one write echoed in order" % label, msgs == [b"m%03d" % i for i in range(100)],
               "%r" % msgs[:5])
        # close handshake: close echoed, then the tunnel closes
        s.sendall(ws_frame(8, b"\x03\xe8bye"))
        fin, op, payload = ws_read(r)
        expect("%s: close frame echoed" % label, op == 8 and payload == b"\x03\xe8bye", "op %d %r" % (op, payload))
        rest, closed = r.until_close()
        expect("%s: tunnel closed after the close frame" % label, closed and rest == b"", "closed=%s rest=%r" % (closed, rest[:50]))
    except Exception as e:
        bad("%s websocket session" % label, repr(e))
    finally:
        s.close()

session("through two proxies", OUT_A, "ws")
session("inbound only", env_port("IN_B"), "ws")

# a frame sent right behind the handshake, before the 101 came back, is tunnelled too
try:
    import base64, hashlib
    s = connect(OUT_A, 5)
    r = Reader(s)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % key).encode() + ws_frame(1, b"eager"))
    resp = read_response(r)
    got = ws_read(r) if resp.status == 101 else None
    expect("a frame pipelined behind the handshake is echoed", resp.status == 101 and got == (True, 1, b"eager"),
           "%r %r" % (resp, got))
    s.close()
except Exception as e:
    bad("frame pipelined behind the handshake", repr(e))

# an upgrade the upstream declines (200, no 101) stays plain HTTP on a usable connection
try:
    s = connect(OUT_A, 5)
    r = Reader(s)
    s.sendall(b"GET / HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    a = read_response(r)
    s.sendall(b"GET / HTTP/1.1\r\nHost: ws\r\n\r\n")
    b = read_response(r)
    expect("declined upgrade: plain response, connection still usable", a.status == 200 and a.body == b"app\n"
           and b.status == 200 and b.body == b"app\n", "%r %r" % (a, b))
    s.close()
except Exception as e:
    bad("declined upgrade", repr(e))

# two sessions at once, interleaved
try:
    a, b = connect(OUT_A, 5), connect(OUT_A, 5)
    ra, rb = Reader(a), Reader(b)
    ws_handshake(a, ra, "ws")
    ws_handshake(b, rb, "ws")
    for i in range(20):
        a.sendall(ws_frame(1, b"a%d" % i))
        b.sendall(ws_frame(1, b"b%d" % i))
    ga = [ws_read(ra)[2] for _ in range(20)]
    gb = [ws_read(rb)[2] for _ in range(20)]
    expect("two concurrent tunnels stay separate", ga == [b"a%d" % i for i in range(20)] and gb == [b"b%d" % i for i in range(20)],
           "%r %r" % (ga[:3], gb[:3]))
    a.close()
    b.close()
except Exception as e:
    bad("two concurrent tunnels", repr(e))
PY

# the tunnels are gone and the proxies still serve plain requests
expect_eq "plain request after the tunnels" app "$(body "http://127.0.0.1:$OUT_A/" -H 'Host: ws')"
exit 0
