#!/usr/bin/env bash
# 03_keepalive: 1000 keep-alive requests through the outbound listener reuse a
# bounded number of upstream connections (the per-endpoint pool), and the
# proxy's istio_requests_total counts every one of them.
. "$(dirname "$0")/lib.sh"

ports B1 B2 OUT ADM

cat >"$ART/proxy.ini" <<EOF
[workload]
service = client
namespace = default

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s

[log]
access_log = off

[mesh]
domain = cluster.local

[service hello]
port = 80
endpoint = 127.0.0.1:$B1 version=v1
endpoint = 127.0.0.1:$B2 version=v2
EOF

start_backend b1 "$B1"
start_backend b2 "$B2"
start_mesh proxy proxy -c "$ART/proxy.ini"
wait_ready "$ADM" 10 || { fail "proxy starts" "/ready did not answer 200"; exit 1; }

# requests_total: the sum of every istio_requests_total series of this proxy
m0=$(metric_sum "$ADM" '^istio_requests_total')
read -r c1 r1 _ <<<"$(backend_stats "$B1")"
read -r c2 r2 _ <<<"$(backend_stats "$B2")"

# ---- 1000 sequential requests on one client connection (curl reuses it)
out=$(curl -s --max-time 60 -H 'Host: hello' -o /dev/null -w '%{http_code} %{num_connects}\n' \
	"http://127.0.0.1:$OUT/status/200?i=[1-1000]")
n200=$(printf '%s\n' "$out" | grep -c '^200 ')
conns=$(printf '%s\n' "$out" | awk '{ s += $2 } END { print s + 0 }')
expect_eq "1000 sequential keep-alive requests all 200" 1000 "$n200"
expect_eq "the client needed one connection to the proxy" 1 "$conns"

# each /stats call itself is one new backend connection: subtract it
read -r c1b r1b _ <<<"$(backend_stats "$B1")"
read -r c2b r2b _ <<<"$(backend_stats "$B2")"
d1=$((c1b - c1 - 1)); d2=$((c2b - c2 - 1)); q1=$((r1b - r1)); q2=$((r2b - r2))
expect_eq "backends received exactly 1000 requests" 1000 $((q1 + q2))
if [ $((d1 + d2)) -le 4 ] && [ $((d1 + d2)) -ge 1 ]; then
	pass "upstream connections stay bounded: $((d1 + d2)) for 1000 requests (b1=$d1 b2=$d2)"
else
	fail "upstream connections bounded" "$((d1 + d2)) new upstream connections for 1000 requests (b1=$d1 b2=$d2), want <= 4"
fi
m1=$(metric_sum "$ADM" '^istio_requests_total')
expect_eq "istio_requests_total grew by 1000" 1000 $((m1 - m0))

# ---- 4 concurrent clients x 250 requests: at most 4 connections per endpoint
c1=$(backend_stat "$B1" connections); c2=$(backend_stat "$B2" connections)
tmp=$ART/par
for k in 1 2 3 4; do
	bg curl -s --max-time 60 -H 'Host: hello' -o /dev/null -w '%{http_code}\n' \
		"http://127.0.0.1:$OUT/status/200?k=$k&i=[1-250]" >"$tmp.$k"
	pids[k]=$BG_PID
done
for k in 1 2 3 4; do wait "${pids[k]}"; done
n200=$(cat "$tmp".[1-4] | grep -c '^200$')
expect_eq "4 x 250 concurrent keep-alive requests all 200" 1000 "$n200"
d1=$(( $(backend_stat "$B1" connections) - c1 - 1 )); d2=$(( $(backend_stat "$B2" connections) - c2 - 1 ))
if [ "$d1" -le 4 ] && [ "$d2" -le 4 ]; then
	pass "4 concurrent clients: new upstream connections per endpoint <= 4 (b1=$d1 b2=$d2)"
else
	fail "concurrent upstream connections bounded" "b1=$d1 b2=$d2 new connections for 4 concurrent clients, want <= 4 each"
fi
m2=$(metric_sum "$ADM" '^istio_requests_total')
expect_eq "istio_requests_total grew by another 1000" 1000 $((m2 - m1))

# ---- idle upstream connections are kept (open) for reuse: a new client reuses them
c1=$(backend_stat "$B1" connections); c2=$(backend_stat "$B2" connections)
curl -s --max-time 10 -o /dev/null -o /dev/null -H 'Host: hello' "http://127.0.0.1:$OUT/" "http://127.0.0.1:$OUT/"
d=$(( $(backend_stat "$B1" connections) - c1 - 1 + $(backend_stat "$B2" connections) - c2 - 1 ))
expect_eq "a new client connection reuses pooled upstream connections" 0 "$d"

# ---- 200 client connections open at once, 5 requests each: all answered, memory bounded
PROXY=$MESH_PID
export OUT PROXY
py <<'PY'
import threading, http.client, os
from rawhttp import *
OUT = env_port("OUT")
N, K = 200, 5
barrier = threading.Barrier(N + 1, timeout=30)
results, lock = [], threading.Lock()
def worker(i):
    got = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", OUT, timeout=20)
        conn.connect()
        barrier.wait()          # everyone connected
        barrier.wait()          # the main thread has measured
        for k in range(K):
            conn.request("GET", "/?c=%d&k=%d" % (i, k), headers={"Host": "hello"})
            r = conn.getresponse()
            got.append(r.status if r.read() in (b"b1\n", b"b2\n") else -r.status)
        conn.close()
    except Exception as e:
        got.append(repr(e))
    with lock:
        results.append(got)
ts = [threading.Thread(target=worker, args=(i,)) for i in range(N)]
for t in ts: t.start()
try:
    barrier.wait()
    rss = int([l.split()[1] for l in open("/proc/%s/status" % os.environ["PROXY"]) if l.startswith("VmRSS")][0])
    print("note: proxy VmRSS with %d idle client connections: %d kB" % (N, rss))
    barrier.wait()
except threading.BrokenBarrierError:
    bad("200 concurrent connections", "clients could not all connect")
except Exception:
    barrier.abort()
    raise
for t in ts: t.join(60)
okn = sum(1 for g in results for x in g if x == 200)
expect("200 concurrent keep-alive connections x 5 requests all answered (%d)" % okn, okn == N * K,
       "%d of %d; failures %r" % (okn, N * K, [g for g in results if any(x != 200 for x in g)][:3]))
PY
hwm=$(hwm_kb "$PROXY")
if [ "$MESH_STATIC" -eq 1 ]; then
	if [ "$hwm" -lt 16384 ]; then pass "proxy peak RSS with 200 connections: ${hwm} kB (< 16 MB)"
	else fail "proxy peak RSS with 200 connections" "${hwm} kB, want < 16384"; fi
else
	note "proxy peak RSS with 200 connections: ${hwm} kB (sanitizer build, not checked)"
fi
exit 0
