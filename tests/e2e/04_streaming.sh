#!/usr/bin/env bash
# 04_streaming: bodies are streamed with backpressure. A 1 GiB upload
# (Content-Length, and chunked) and a 1 GiB download pass with exact byte counts
# while the proxy's peak RSS (VmHWM) stays flat; chunked bodies keep their
# trailers; a chunked upload is echoed back intact.
. "$(dirname "$0")/lib.sh"

# ASan's quarantine keeps freed memory around; keep it small so peak RSS still
# says something about the proxy's own buffering.
export ASAN_OPTIONS="quarantine_size_mb=16:detect_leaks=1"
GIB=1073741824
ports B1 OUT ADM
export OUT GIB

cat >"$ART/proxy.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s

[mesh]
domain = cluster.local

[service big]
port = 80
endpoint = 127.0.0.1:$B1
EOF

start_backend big "$B1"
start_mesh proxy proxy -c "$ART/proxy.ini"
wait_ready "$ADM" 10 || { fail "proxy starts" "/ready did not answer 200"; exit 1; }
PROXY=$MESH_PID
# warm up (one request of each kind) before taking the baseline
curl -s -o /dev/null --max-time 5 -H 'Host: big' "http://127.0.0.1:$OUT/bytes?n=100000"
curl -s -o /dev/null --max-time 5 -H 'Host: big' -T /dev/null "http://127.0.0.1:$OUT/sink"
hwm0=$(hwm_kb "$PROXY")
note "proxy VmHWM after warm-up: ${hwm0} kB"

# ---- 1 GiB download, Content-Length
t0=$(date +%s%N)
# a stalled transfer (under 1 MB/s for 5 s) fails fast instead of eating the time budget
SLOW=(--speed-limit 1048576 --speed-time 5)
out=$(curl -s --max-time 50 "${SLOW[@]}" -H 'Host: big' -o /dev/null -w '%{http_code} %{size_download}' \
	"http://127.0.0.1:$OUT/bytes?n=$GIB")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
expect_eq "1 GiB download through the proxy, exact byte count (${ms} ms)" "200 $GIB" "$out"

# ---- 1 GiB upload, Content-Length (python streams zeros; no file)
py <<'PY'
import os, socket, time
from rawhttp import *
OUT, GIB = env_port("OUT"), int(os.environ["GIB"])
s = connect(OUT, 10)  # no progress for 10 s = stalled
try:
    t0 = time.time()
    s.sendall(b"PUT /sink HTTP/1.1\r\nHost: big\r\nContent-Length: %d\r\n\r\n" % GIB)
    block = b"\0" * (1 << 20)
    for _ in range(GIB >> 20):
        s.sendall(block)
    resp = read_response(Reader(s))
    expect("1 GiB upload with Content-Length, exact byte count (%.1f s)" % (time.time() - t0),
           resp.status == 200 and resp.body == b"bytes=%d\n" % GIB, "%r %r" % (resp, resp.body[:100]))
except Exception as e:
    bad("1 GiB upload with Content-Length", repr(e))
finally:
    s.close()
PY

# ---- 1 GiB upload, chunked (curl -T - reads stdin: unknown size -> chunked)
out=$(head -c "$GIB" /dev/zero | curl -s --max-time 50 "${SLOW[@]}" -H 'Host: big' -H 'Expect:' -T - \
	-w ' %{http_code}' "http://127.0.0.1:$OUT/sink")
expect_eq "1 GiB chunked upload, exact byte count" "bytes=$GIB 200" "$(printf '%s' "$out" | tr -d '\n')"

hwm1=$(hwm_kb "$PROXY")
if [ "$MESH_STATIC" -eq 1 ]; then limit=20480; else limit=$((hwm0 + 20480)); fi
if [ -n "$hwm1" ] && [ "$hwm1" -lt "$limit" ]; then
	pass "proxy peak RSS stays flat over 3 GiB of bodies: VmHWM ${hwm1} kB (after warm-up ${hwm0} kB, limit ${limit} kB)"
else
	fail "proxy peak RSS bounded" "VmHWM ${hwm1:-?} kB after 3 GiB (after warm-up ${hwm0} kB), limit ${limit} kB"
fi

# ---- chunked download with a trailer, and a chunked upload with a trailer echoed
py <<'PY'
import os, socket
from rawhttp import *
OUT = env_port("OUT")
N = 1000003
want = bytes(ord('a') + i % 26 for i in range(N))
try:
    s = connect(OUT, 10)
    r = Reader(s)
    s.sendall(b"GET /chunked?n=%d&trailer=1 HTTP/1.1\r\nHost: big\r\nTE: trailers\r\n\r\n" % N)
    resp = read_response(r)
    expect("chunked download arrives chunked and whole", resp.status == 200 and resp.chunked and resp.body == want,
           "%r chunked=%s len=%d" % (resp, resp.chunked, len(resp.body)))
    tr = dict(resp.trailers)
    expect("chunked download keeps its trailer", tr.get("x-checksum") == str(sum(want)),
           "trailers %r, want x-checksum: %d" % (resp.trailers, sum(want)))
    # the connection is still good after a trailer section
    s.sendall(b"GET /chunked?n=10 HTTP/1.1\r\nHost: big\r\n\r\n")
    resp = read_response(r)
    expect("connection reusable after a chunked response", resp.status == 200 and resp.body == want[:10], "%r" % resp)

    # chunked upload: odd chunk sizes, an extension, a trailer; echoed back
    chunks = [b"x" * n for n in (1, 7, 4096, 65536, 3, 100000)]
    msg = b"POST /echo HTTP/1.1\r\nHost: big\r\nTransfer-Encoding: chunked\r\n\r\n"
    for i, c in enumerate(chunks):
        msg += (b"%x;ext=%d\r\n" % (len(c), i) if i == 2 else b"%x\r\n" % len(c)) + c + b"\r\n"
    msg += b"0\r\nx-upload-sum: 42\r\n\r\n"
    s.sendall(msg)
    resp = read_response(r)
    body = b"".join(chunks)
    expect("chunked upload echoed intact (%d bytes)" % len(body), resp.status == 200 and resp.body == body,
           "%r got %d bytes" % (resp, len(resp.body)))
    expect("chunked upload trailer reaches the upstream (echoed back)", ("x-upload-sum", "42") in resp.trailers,
           "trailers %r" % resp.trailers)
    s.close()
except Exception as e:
    bad("chunked with trailers", repr(e))

PY

# curl --raw sees the trailer on the wire too
raw=$(curl -s --raw --max-time 10 -H 'Host: big' "http://127.0.0.1:$OUT/chunked?n=1000&trailer=1" | tail -c 64 | tr '\r\n' 'RN')
expect_match "curl --raw shows the trailer after the last chunk" '0RNx-checksum: [0-9]+RNRN$' "$raw"

# ---- 64 MiB with Content-Length echoed while it is sent (backpressure both ways)
py <<'PY'
import threading
from rawhttp import *
OUT = env_port("OUT")
N = 64 << 20
s = connect(OUT, 10)
err = []
def send():
    try:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: big\r\nContent-Length: %d\r\n\r\n" % N)
        block = b"z" * (1 << 16)
        for _ in range(N >> 16):
            s.sendall(block)
    except Exception as e:
        err.append(e)
t = threading.Thread(target=send, daemon=True)
t.start()
try:
    r = Reader(s)
    resp = read_head(r)
    got = 0
    clean = True
    want = int(resp.get("content-length", "-1"))
    while got < want:
        d = r.exact(min(1 << 16, want - got))
        got += len(d)
        if d.strip(b"z"):
            clean = False
    t.join(20)
    expect("64 MiB Content-Length body echoed while being sent (%d bytes)" % got,
           resp.status == 200 and want == N and got == N and clean and not err,
           "status %d content-length %d got %d clean=%s err=%r" % (resp.status, want, got, clean, err))
except Exception as e:
    bad("64 MiB echo", repr(e))
finally:
    s.close()
PY
exit 0
