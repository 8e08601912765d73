#!/usr/bin/env bash
# 07_timeouts: slowloris is closed by header_timeout, an idle keep-alive client
# (or a silent new one) by idle_timeout, idle pooled upstream connections by
# upstream_idle_timeout; connect_timeout and stream_idle_timeout answer 502/504;
# a client that vanishes mid-upload or mid-download frees everything, also when
# the upstream already answered and the proxy had stopped reading the client.
. "$(dirname "$0")/lib.sh"

ports B1 OUT1 ADM1 OUT2 ADM2 HOLE
export B1 OUT1 OUT2 HOLE

# proxy 1: short header timeout, long idle timeout
# proxy 2: long header timeout, short idle timeouts
cat >"$ART/mesh.ini" <<EOF
[service hello]
port = 80
endpoint = 127.0.0.1:$B1

# a listener whose accept queue is full: connects hang (SYNs dropped)
[service blackhole]
port = 80
endpoint = 127.0.0.1:$HOLE
EOF
cat >"$ART/p1.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT1
admin = 127.0.0.1:$ADM1

[proxy]
header_timeout = 1s
idle_timeout = 30s
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF
cat >"$ART/p2.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT2
admin = 127.0.0.1:$ADM2

[proxy]
header_timeout = 30s
idle_timeout = 1s
upstream_idle_timeout = 1s
connect_timeout = 1s
stream_idle_timeout = 2s
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

start_backend hello "$B1"
start_mesh p1 proxy -c "$ART/p1.ini"
P1=$MESH_PID
start_mesh p2 proxy -c "$ART/p2.ini"
P2=$MESH_PID
export P1
if ! wait_ready "$ADM1" 10 || ! wait_ready "$ADM2" 10; then
	fail "proxies start" "admin /ready did not answer 200"
	exit 1
fi

py <<'PY'
import socket, time
from rawhttp import *
B1, OUT1, OUT2 = env_port("B1"), env_port("OUT1"), env_port("OUT2")

def closed_after(s, secs):
    """Seconds until the peer closes s (None if it does not within secs), and the bytes read."""
    t0 = time.time()
    got = b""
    s.settimeout(0.2)
    while time.time() - t0 < secs:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return time.time() - t0, got
        if not d:
            return time.time() - t0, got
        got += d
    return None, got

# slowloris: a head trickling in one byte every 200 ms never completes
before = stats(B1)["requests"]
s = connect(OUT1)
t0 = time.time()
head = b"GET / HTTP/1.1\r\nHost: hello\r\nX-Slow: " + b"a" * 100
closed_at = None
for i in range(len(head)):
    try:
        s.sendall(head[i:i + 1])
    except (BrokenPipeError, ConnectionResetError):
        closed_at = time.time() - t0
        break
    s.settimeout(0.2)
    try:
        if s.recv(4096) == b"" and closed_at is None:
            closed_at = time.time() - t0
            break
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed_at = time.time() - t0
        break
    if time.time() - t0 > 6:
        break
s.close()
seen = stats(B1)["requests"] - before
expect("slowloris closed by header_timeout=1s (after %s s)" % (closed_at and "%.2f" % closed_at),
       closed_at is not None and 0.8 <= closed_at <= 3.0 and seen == 0,
       "closed after %r s (want about 1), backend saw %d" % (closed_at, seen))

# a connection that never sends a byte: header_timeout runs from the head's
# first byte (docs/proxy.md), so this is idle_timeout's job (1s on proxy 2)
s = connect(OUT2)
t, got = closed_after(s, 6)
s.close()
expect("silent new connection closed by idle_timeout=1s (after %s s)" % (t and "%.2f" % t), t is not None and 0.7 <= t <= 3.0,
       "closed after %r s" % t)

# a complete head that arrives slowly but within the timeout is served
s = connect(OUT1)
r = Reader(s)
for part in (b"GET / HTTP/1.1\r\n", b"Host: hello\r\n", b"\r\n"):
    s.sendall(part)
    time.sleep(0.25)
resp = read_response(r)
expect("a slow but timely head is served", resp.status == 200, "%r" % resp)
s.close()

# idle keep-alive client: closed by idle_timeout=1s on proxy 2 (header timeout 30s there)
s = connect(OUT2)
r = Reader(s)
s.sendall(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
resp = read_response(r)
t, got = closed_after(s, 6)
s.close()
expect("idle keep-alive client closed by idle_timeout=1s (after %s s)" % (t and "%.2f" % t),
       resp.status == 200 and t is not None and 0.7 <= t <= 3.0 and got == b"", "closed after %r s, got %r" % (t, got[:100]))

# a client that keeps sending requests within the idle timeout is not closed
s = connect(OUT2)
r = Reader(s)
okay = True
for i in range(4):
    s.sendall(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
    if read_response(r).status != 200:
        okay = False
    time.sleep(0.6)
s.close()
expect("an active keep-alive client outlives idle_timeout", okay, "a request failed")
PY

# ---- idle pooled upstream connections are closed after upstream_idle_timeout (1s, proxy 2):
# after a request through proxy 2 its pooled connection must go away within a few seconds
curl -s -o /dev/null --max-time 5 -H 'Host: hello' "http://127.0.0.1:$OUT2/"
read -r _ _ open1 <<<"$(backend_stats "$B1")"
ok=0
for i in $(seq 1 40); do
	sleep 0.1
	read -r _ _ open2 <<<"$(backend_stats "$B1")"
	[ "$open2" -lt "$open1" ] && { ok=1; break; }
done
if [ "$ok" -eq 1 ]; then
	pass "pooled upstream connection closed by upstream_idle_timeout (backend open: $open1 -> $open2 in $((i * 100)) ms)"
else
	fail "upstream_idle_timeout" "backend open connections stay $open1 -> $open2 for 4 s after a request"
fi

# ---- connect_timeout (1s, proxy 2): an endpoint that never completes the handshake -> 502
PYTHONPATH=$E2E bg timeout 60 python3 -c '
import os, socket, time
port = int(os.environ["HOLE"])
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind(("127.0.0.1", port))
l.listen(0)
fill = []
for i in range(4):   # one fills the accept queue, the rest hang in SYN_SENT
    c = socket.socket()
    c.setblocking(False)
    c.connect_ex(("127.0.0.1", port))
    fill.append(c)
open(os.environ["ART"] + "/hole.ready", "w").close()
time.sleep(60)
'
for i in $(seq 1 50); do [ -e "$ART/hole.ready" ] && break; sleep 0.1; done
sleep 0.2
t0=$(date +%s%N)
hdr=$(curl -s --max-time 15 -o /dev/null -D - -H 'Host: blackhole' "http://127.0.0.1:$OUT2/" | tr -d '\r')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
c=$(printf '%s' "$hdr" | head -1 | cut -d' ' -f2)
if [ "$c" = 502 ] && [ "$ms" -ge 800 ] && [ "$ms" -le 3500 ] && printf '%s' "$hdr" | grep -qi '^x-mesh-error:'; then
	pass "connect_timeout=1s: 502 with x-mesh-error after ${ms} ms"
else
	fail "connect_timeout" "status '$c' after ${ms} ms (want 502 after about 1000): $(printf '%s' "$hdr" | tr '\n' ' ')"
fi

# ---- stream_idle_timeout (2s, proxy 2): an upstream silent for 4 s -> 504
t0=$(date +%s%N)
c=$(code "http://127.0.0.1:$OUT2/delay?ms=4000" -H 'Host: hello')
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$c" = 504 ] && [ "$ms" -ge 1800 ] && [ "$ms" -le 3800 ]; then pass "stream_idle_timeout=2s: 504 after ${ms} ms"
else fail "stream_idle_timeout" "status $c after ${ms} ms (want 504 after about 2000)"; fi

# ---- clients vanishing mid-upload / mid-download free everything (proxy 1)
sleep 0.2
fd0=$(fd_count "$P1")
read -r _ _ bopen0 <<<"$(backend_stats "$B1")"
py <<'PY'
import socket, struct, time, os
from rawhttp import *
OUT1, B1 = env_port("OUT1"), env_port("B1")

def vanish(s):
    # RST instead of FIN: the harshest way to disappear
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()

for k in range(3):
    s = connect(OUT1)
    s.sendall(b"PUT /sink HTTP/1.1\r\nHost: hello\r\nContent-Length: %d\r\n\r\n" % (100 << 20))
    for _ in range(8):
        s.sendall(b"\0" * (1 << 20))
    vanish(s)
    s = connect(OUT1)
    s.sendall(b"POST /sink HTTP/1.1\r\nHost: hello\r\nTransfer-Encoding: chunked\r\n\r\n" + b"100000\r\n" + b"\0" * 1000)
    s.close()  # plain FIN mid-chunk
    s = connect(OUT1)
    s.sendall(b"GET /bytes?n=%d HTTP/1.1\r\nHost: hello\r\n\r\n" % (1 << 30))
    got = 0
    for _ in range(1000):
        got += len(s.recv(65536))
        if got > (4 << 20):
            break
    vanish(s)
    s = connect(OUT1)
    s.sendall(b"GET /delay?ms=300 HTTP/1.1\r\nHost: hello\r\n\r\n")
    vanish(s)
ok("12 clients vanished mid-request (upload RST, chunked FIN, download RST, waiting RST)")
resp = get(OUT1, "/", host="hello")
expect("proxy keeps serving after clients vanish", resp is not None and resp.status == 200, "%r" % resp)
PY
ok=0
for i in $(seq 1 40); do
	sleep 0.1
	fd1=$(fd_count "$P1")
	read -r _ _ bopen1 <<<"$(backend_stats "$B1")"
	# slack of 2: the pool may legitimately keep a connection or two more than before
	if [ "$fd1" -le $((fd0 + 2)) ] && [ "$bopen1" -le $((bopen0 + 2)) ]; then ok=1; break; fi
done
if [ "$ok" -eq 1 ]; then
	pass "everything freed after vanished clients: proxy fds $fd0 -> $fd1, backend open $bopen0 -> $bopen1"
else
	fail "vanished clients free everything" "after 4 s proxy fds $fd0 -> $fd1, backend open connections $bopen0 -> $bopen1"
fi
active=
for i in $(seq 1 30); do
	active=$(metric_sum "$ADM1" '^mesh_downstream_cx_active')
	[ "$active" = 0 ] && break
	sleep 0.1
done
expect_eq "mesh_downstream_cx_active back to 0 after the vanished clients" 0 "$active"
# the upstream answers (413) before reading the body, then the client resets:
# the proxy is not reading the client then (its input is full), but must still
# notice and free the stream, both connections and their buffers
py <<'PY'
import socket, struct, time
from rawhttp import *
OUT1 = env_port("OUT1")
s = connect(OUT1, 10)
r = Reader(s)
s.sendall(b"PUT /reject HTTP/1.1\r\nHost: hello\r\nContent-Length: %d\r\n\r\n" % (32 << 20))
# push body bytes until the socket buffers are full (no thread left blocked in send)
s.setblocking(False)
sent = 0
for _ in range(2000):
    try:
        sent += s.send(b"\0" * 65536)
    except (BlockingIOError, InterruptedError):
        break
    except OSError:
        break
s.settimeout(10)
try:
    a = read_response(r)
    expect("early 413 received mid-upload", a.status == 413, "%r" % a)
except Exception as e:
    bad("early 413 received mid-upload", repr(e))
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
active=
for i in $(seq 1 40); do
	active=$(metric_sum "$ADM1" '^mesh_downstream_cx_active')
	[ "$active" = 0 ] && break
	sleep 0.1
done
if [ "$active" = 0 ]; then pass "client reset after an early response: its connection is freed ($((i * 100)) ms)"
else fail "client reset after an early response is noticed" "mesh_downstream_cx_active still $active 4 s after the client reset; $(curl -s "http://127.0.0.1:$ADM1/metrics" | grep -E '^mesh_(upstream_cx_active|buffers_in_use)' | tr '\n' ' ')"; fi
rss=$(rss_kb "$P1")
note "proxy 1 VmRSS after the vanishing clients: ${rss} kB"
exit 0
