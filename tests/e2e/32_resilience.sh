#!/usr/bin/env bash
# 32_resilience: retries, the retry budget, replay buffers, connection-pool
# limits and outlier detection (issue #3).
#
# - retries turn a flaky backend's failures into 200s: retry_on 5xx (default),
#   gateway-error, connect-failure, reset, retriable-status-codes; attempts
#   counted at the backend; per_try_timeout; the route's timeout over all
#   tries; backoff between tries
# - the retry budget: with an always-failing backend, retries stay a bounded
#   share under concurrency (bound derived below); retry_budget_percent = 0
# - request bodies up to [proxy] retry_buffer are replayed, larger ones not
# - pool overflow: max_connections + max_pending_requests, and
#   max_concurrent_requests: fast 503s naming the limit, flag UO, counted;
#   queued requests that time out or whose clients leave give their place
#   back; a subset's own limit; a destination's connect_timeout
# - max_requests_per_connection: the backend sees new connections
# - outlier ejection and recovery, max_ejection_percent, consecutive gateway
#   errors, ejections growing with repeats and the growth decaying per healthy
#   interval, min_health_percent (panic), ejections kept across a reload
#
# The backends are flaky (tests/e2e/flaky.c): /ctl/first?k=K&status=S makes the
# first K attempts of every x-request-id fail, so a retry (which replays the
# same id) can be told from a new request.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"

ports F F2 FB DEAD SLOW CONC MR O1 O2 O3 OUT ADM OUT0 ADM0 G1 G2 X1 X2 P1 P2 P3 SA SB Q BH Y1 Y2
export F F2 FB SLOW CONC MR O1 O2 O3 OUT ADM OUT0 G1 G2 X1 X2 P1 P2 P3 SA SB Q BH Y1 Y2

cat >"$ART/mesh.ini" <<EOF
[service flaky]
port = 80
endpoint = 127.0.0.1:$F

[service mixed]                 ; one endpoint refuses connections
port = 80
endpoint = 127.0.0.1:$DEAD
endpoint = 127.0.0.1:$F2

[service failing]               ; the retry budget's always-failing backend
port = 80
endpoint = 127.0.0.1:$FB

[service slow]
port = 80
endpoint = 127.0.0.1:$SLOW

[service conc]
port = 80
endpoint = 127.0.0.1:$CONC

[service mrpc]
port = 80
endpoint = 127.0.0.1:$MR

[service out]
port = 80
endpoint = 127.0.0.1:$O1
endpoint = 127.0.0.1:$O2
endpoint = 127.0.0.1:$O3

[destination mixed]
load_balancer = round_robin

[destination slow]
max_connections = 2
max_pending_requests = 2

[destination conc]
max_concurrent_requests = 3

[destination mrpc]
max_requests_per_connection = 2

[destination out]
load_balancer = round_robin
outlier.consecutive_5xx = 3
outlier.base_ejection_time = 2s
outlier.max_ejection_percent = 30   ; one of three (0% < 30), never two (33% >= 30)

[route flaky/r5xx]
match.path = prefix:/r5xx
retries = 3                      ; retry_on defaults to 5xx, connect-failure, reset
to = flaky

[route flaky/rgw]
match.path = prefix:/rgw
retries = 3
retry_on = gateway-error
to = flaky

[route flaky/rcf]
match.path = prefix:/rcf
retries = 3
retry_on = connect-failure
to = flaky

[route flaky/rcodes]
match.path = prefix:/rcodes
retries = 3
retry_on = retriable-status-codes
retry_status_codes = 409
to = flaky

[route flaky/rreset]
match.path = prefix:/rreset
retries = 2
retry_on = reset
to = flaky

[route flaky/rpt]
match.path = prefix:/rpt
retries = 2
per_try_timeout = 200ms
to = flaky

[route flaky/rbody]
match.path = prefix:/rbody
retries = 2
to = flaky

[route mixed/retry]
match.path = prefix:/retry
retries = 2
retry_on = connect-failure
to = mixed

[route failing/all]
retries = 5
to = failing

; the route's timeout bounds all tries together
[route flaky/rtmo]
match.path = prefix:/rtmo
timeout = 500ms
retries = 5
per_try_timeout = 200ms
to = flaky

; ---- more outlier detection: gateway errors, growing ejections, panic
[service og]
port = 80
endpoint = 127.0.0.1:$G1
endpoint = 127.0.0.1:$G2

[destination og]
load_balancer = round_robin
outlier.consecutive_gateway_errors = 2
outlier.base_ejection_time = 5s
outlier.max_ejection_percent = 50

[service grow]
port = 80
endpoint = 127.0.0.1:$X1
endpoint = 127.0.0.1:$X2

[destination grow]
load_balancer = round_robin
outlier.consecutive_5xx = 1
outlier.base_ejection_time = 500ms
outlier.max_ejection_percent = 50

[service panic]
port = 80
endpoint = 127.0.0.1:$P1
endpoint = 127.0.0.1:$P2
endpoint = 127.0.0.1:$P3

[destination panic]
load_balancer = round_robin
outlier.consecutive_5xx = 1
outlier.base_ejection_time = 10s
outlier.max_ejection_percent = 100
outlier.min_health_percent = 60

[service nopanic]
port = 80
endpoint = 127.0.0.1:$P1
endpoint = 127.0.0.1:$P2
endpoint = 127.0.0.1:$P3

[destination nopanic]
load_balancer = round_robin
outlier.consecutive_5xx = 1
outlier.base_ejection_time = 10s
outlier.max_ejection_percent = 100

; ---- a subset's own limit
[service sub]
port = 80
endpoint = 127.0.0.1:$SA version=v1
endpoint = 127.0.0.1:$SB version=v2

[destination sub]
subset.v1 = version=v1
subset.v2 = version=v2
max_concurrent_requests = 10

[destination sub/v2]
max_concurrent_requests = 1

[route sub/v2]
match.path = prefix:/v2
to = v2

[route sub/v1]
to = v1

; ---- the connection queue: one connection, requests wait for it
[service q1]
port = 80
endpoint = 127.0.0.1:$Q

[destination q1]
max_connections = 1
max_pending_requests = 5

[route q1/t]
match.path = prefix:/t
timeout = 300ms
to = q1

; an endpoint whose accept queue is full: connecting hangs
[service blackhole]
port = 80
endpoint = 127.0.0.1:$BH

[destination blackhole]
connect_timeout = 200ms

; the ejection multiplier decays by one per healthy outlier.interval
[service decay]
port = 80
endpoint = 127.0.0.1:$Y1
endpoint = 127.0.0.1:$Y2

[destination decay]
load_balancer = round_robin
outlier.consecutive_5xx = 1
outlier.base_ejection_time = 500ms
outlier.interval = 300ms
outlier.max_ejection_percent = 50
EOF

cat >"$ART/client.ini" <<EOF
[workload]
labels = app=client, version=v1

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s
retry_buffer = 4k

[control]
mesh = mesh.ini
EOF

# the same mesh, retry_budget_percent = 0 ("0 disables retries", docs/config.md)
cat >"$ART/nobudget.ini" <<EOF
[listen]
outbound = 127.0.0.1:$OUT0
admin = 127.0.0.1:$ADM0

[proxy]
drain_timeout = 1s
retry_budget_percent = 0

[control]
mesh = mesh.ini
EOF

for b in f:$F f2:$F2 fb:$FB slow:$SLOW conc:$CONC mr:$MR o1:$O1 o2:$O2 o3:$O3 g1:$G1 g2:$G2 x1:$X1 x2:$X2 \
	p1:$P1 p2:$P2 p3:$P3 sa:$SA sb:$SB q:$Q y1:$Y1 y2:$Y2; do
	start_flaky "${b%%:*}" "${b#*:}" || exit 1
done
start_proxy client "$ART/client.ini" "$ADM" || exit 1
CLIENT_PID=$MESH_PID
start_proxy nobudget "$ART/nobudget.ini" "$ADM0" || exit 1
pass "backends and proxies ready"

py <<'PY'
import time, uuid
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, fstats, flog, ctl, metric_sum, env

OUT, ADM = env("OUT"), env("ADM")
F = env("F")
cli = Client(OUT)
run = uuid.uuid4().hex[:8]
seq = [0]

def send(path, host="flaky", client=None, **kw):
    seq[0] += 1
    rid = "%s-%d" % (run, seq[0])
    hs = dict(kw.pop("headers", {}))
    hs["x-request-id"] = rid
    r = (client or cli).req(path, host=host, headers=hs, **kw)
    r.rid = rid
    return r

def attempts(port, rid):
    return sum(1 for d in flog(port) if d.get("id") == rid)

def retries_metric():
    return metric_sum(ADM, "mesh_upstream_rq_retry_total ")

# ---- retry_on 5xx (the default): 503 and 500 both retried
ctl(F, "reset"); ctl(F, "first?k=2&status=503")
m0 = retries_metric()
rs = [send("/r5xx/%d" % i) for i in range(10)]
expect("retries = 3: the first two attempts fail with 503, 10 of 10 requests get 200",
       all(r.status == 200 and r.first == "f" for r in rs), "%r" % [r.status for r in rs])
n = [attempts(F, r.rid) for r in rs]
expect("each of those requests reached the backend 3 times", n == [3] * 10, "%r" % n)
expect("mesh_upstream_rq_retry_total counts the 20 retries", retries_metric() - m0 == 20, "%d" % (retries_metric() - m0))
ctl(F, "first?k=4&status=503")
rs = [send("/r5xx/x%d" % i) for i in range(5)]
expect("retries = 3 against 4 failures: the backend's 503 reaches the caller", all(r.status == 503 for r in rs),
       "%r" % [r.status for r in rs])
n = [attempts(F, r.rid) for r in rs]
expect("... after 1 + 3 attempts each", n == [4] * 5, "%r" % n)
ctl(F, "first?k=1&status=500")
r = send("/r5xx/500")
expect("retry_on 5xx retries a 500", r.status == 200 and attempts(F, r.rid) == 2, "%r" % r)
r = send("/plain/500")
expect("no route, no retries: the 500 reaches the caller after 1 attempt", r.status == 500 and attempts(F, r.rid) == 1, "%r" % r)

# ---- gateway-error: 502/503/504 yes, 500 no
for status, want, n_att in ((502, 200, 2), (503, 200, 2), (504, 200, 2), (500, 500, 1)):
    ctl(F, "first?k=1&status=%d" % status)
    r = send("/rgw/%d" % status)
    expect("retry_on gateway-error, first attempt %d: caller gets %d after %d attempt(s)" % (status, want, n_att),
           r.status == want and attempts(F, r.rid) == n_att, "%d after %d" % (r.status, attempts(F, r.rid)))

# ---- retriable-status-codes: 409 listed, 503 not
ctl(F, "first?k=1&status=409")
r = send("/rcodes/a")
expect("retry_on retriable-status-codes (409): a 409 is retried", r.status == 200 and attempts(F, r.rid) == 2, "%r" % r)
ctl(F, "first?k=1&status=503")
r = send("/rcodes/b")
expect("retry_on retriable-status-codes (409): a 503 is not", r.status == 503 and attempts(F, r.rid) == 1, "%r" % r)

# ---- connect-failure: only connection failures
r = send("/rcf/a")
expect("retry_on connect-failure: a 503 response is not retried", r.status == 503 and attempts(F, r.rid) == 1, "%r" % r)
codes = [send("/retry/%d" % i, host="mixed").status for i in range(20)]
expect("retry_on connect-failure: a service with a refusing endpoint, 20 of 20 get 200", codes == [200] * 20, "%r" % codes)
codes = [send("/noretry/%d" % i, host="mixed").status for i in range(20)]
expect("without retries the refusing endpoint shows: 10 of 20 get 502 (round robin)",
       codes.count(502) == 10 and codes.count(200) == 10, "%r" % codes)

# ---- reset: the backend closes the connection without an answer
ctl(F, "first?k=1&status=0")
r = send("/rreset/a")
expect("retry_on reset: a connection reset before the response is retried", r.status == 200 and attempts(F, r.rid) == 2, "%r" % r)
ctl(F, "first?k=3&status=0")
r = send("/rreset/b")
expect("retry_on reset, retries = 2, three resets: 502 after 3 attempts", r.status == 502 and attempts(F, r.rid) == 3, "%r" % r)

# ---- per_try_timeout: a try that takes too long is abandoned and retried
ctl(F, "first?k=1&status=200&delay=3000")
r = send("/rpt/a")
expect("per_try_timeout = 200ms: the first try hangs 3 s, the second answers: 200 in %.0f ms" % (r.secs * 1000),
       r.status == 200 and b"failed on purpose" not in r.body and 0.2 <= r.secs < 1.5, "%r %.3f" % (r, r.secs))
ctl(F, "first?k=3&status=200&delay=3000")
r = send("/rpt/b")
expect("per_try_timeout = 200ms, every try hangs: 504 after 3 tries (%.0f ms)" % (r.secs * 1000),
       r.status == 504 and 0.6 <= r.secs < 2.0 and "timeout" in (r.get("x-mesh-error") or ""), "%r %.3f" % (r, r.secs))
ctl(F, "heal")

# ---- bodies up to retry_buffer (4k here) are replayed, larger ones are not
def post(path, size, chunked=False):
    body = bytes((i * 7) % 251 for i in range(size))
    r = send(path, method="POST", body=[body[:size // 2], body[size // 2:]] if chunked else body)
    return r, body

ctl(F, "first?k=1&status=503")
r, body = post("/rbody/4096", 4096)
expect("a 4096-byte body (= retry_buffer) is replayed: 200, the retry carried the whole body",
       r.status == 200 and b"bytes=4096 sum=%d" % sum(body) in r.body and attempts(F, r.rid) == 2, "%r" % r)
r, body = post("/rbody/chunked", 4000, chunked=True)
expect("a chunked 4000-byte body is replayed: 200, whole",
       r.status == 200 and b"bytes=4000 sum=%d" % sum(body) in r.body and attempts(F, r.rid) == 2, "%r" % r)
r, body = post("/rbody/4097", 4097)
expect("a 4097-byte body (> retry_buffer = 4k) is not retried: the 503 reaches the caller after 1 attempt",
       r.status == 503 and attempts(F, r.rid) == 1, "status %d after %d attempts" % (r.status, attempts(F, r.rid)))
r, body = post("/rbody/40000", 40000)
expect("a 40000-byte body is not retried: 503 after 1 attempt",
       r.status == 503 and attempts(F, r.rid) == 1, "status %d after %d attempts" % (r.status, attempts(F, r.rid)))
ctl(F, "heal")

# ---- the route's timeout covers every try: timeout 500ms, per_try_timeout 200ms, 5 retries
ctl(F, "first?k=10&status=200&delay=3000")
r = send("/rtmo/a")
n = attempts(F, r.rid)
expect("timeout = 500ms with 5 retries of 200 ms each: 504 after ~500 ms (%.0f ms), %d tries" % (r.secs * 1000, n),
       r.status == 504 and 0.45 <= r.secs < 1.0 and 2 <= n <= 3, "%r %.3f s, %d tries" % (r, r.secs, n))

# ---- backoff between retries: exponential with full jitter, ceilings 25, 50,
# 100 ms for retries 1..3. Ten requests failing 4 times: the waits sum to
# 10 x (12.5 + 25 + 50) = 875 ms on average, sd sqrt(10 x (25^2+50^2+100^2)/12)
# = 105 ms: at least 455 ms at 4 sigma (without backoff: ~10 ms in all).
ctl(F, "first?k=4&status=503")
t0 = time.monotonic()
rs = [send("/r5xx/bo%d" % i) for i in range(10)]
dt = time.monotonic() - t0
expect("retries back off: 10 requests x 3 retries took %.0f ms (>= 455 ms; mean 875 ms)" % (dt * 1000),
       0.455 <= dt < 3.0 and all(r.status == 503 for r in rs), "%.3f s %r" % (dt, [r.status for r in rs]))
ctl(F, "heal")

# ---- retry_budget_percent = 0 disables retries
ctl(F, "first?k=1&status=503")
r = send("/r5xx/nobudget", client=Client(env("OUT0")))
expect("retry_budget_percent = 0: no retry (503 after 1 attempt)", r.status == 503 and attempts(F, r.rid) == 1,
       "status %d after %d attempts" % (r.status, attempts(F, r.rid)))
ctl(F, "heal")
PY

# ---------------------------------------------------------------- the retry budget
# Backend fb always answers 503, after d = 20 ms. Route failing/all: retries = 5,
# so without a budget every request would reach it 6 times.
#
# The budget ([proxy] retry_budget_percent = 20, Envoy's retry_budget): a retry
# may start only while the streams retrying number less than
# cap = max(3, 20% of the streams in flight). With C = 20 clients, one request
# each at a time, cap <= max(3, 20 * 20 / 100) = 4. A retrying stream has one
# attempt in flight at a time, and every attempt lasts >= d at the backend, so
# over T seconds:
#   (1) retries R <= cap * T / d = 200 * T          (hard bound)
#   (2) the C - cap >= 16 other clients each send a first attempt every
#       >= d too, so R / sent <= cap / (C - cap) = 25%, plus the retries of the
#       streams still retrying at the end (<= cap * 5 = 20). The backoff between
#       retries (25 ms ceiling doubling, full jitter) makes the real share smaller.
# Sequentially (one stream) cap = 3 >= 1, so every request gets its 5 retries.
py <<'PY'
import time, uuid
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, fstats, ctl, metric_sum, env

OUT, ADM, FB = env("OUT"), env("ADM"), env("FB")
ctl(FB, "fail?n=-1&status=503")
ctl(FB, "reset")
cli = Client(OUT)
codes = [cli.req("/seq/%d" % i, host="failing").status for i in range(4)]
seen = fstats(FB)["requests"]
expect("budget, sequential: 4 requests, each tried 1 + 5 times (backend saw %d)" % seen,
       seen == 24 and codes == [503] * 4, "saw %d, codes %r" % (seen, codes))

ctl(FB, "fail?n=-1&status=503&delay=20")
ctl(FB, "reset")
m0 = metric_sum(ADM, "mesh_upstream_rq_retry_total ")
ref0 = metric_sum(ADM, "mesh_upstream_rq_retry_refused_total")
C, T = 20, 3.0
clients = [Client(OUT) for _ in range(C)]
stop = time.monotonic() + T
def worker(w, i):
    n, bad_codes = 0, 0
    while time.monotonic() < stop:
        r = clients[w].req("/c/%d/%d" % (w, n), host="failing")
        n += 1
        bad_codes += r.status != 503
    return n, bad_codes
t0 = time.monotonic()
res = parallel(worker, C, C)
T = time.monotonic() - t0
errs = [r for r in res if not isinstance(r, tuple)]
expect("budget, %d clients: no client error" % C, not errs, "%r" % errs[:3])
sent = sum(r[0] for r in res if isinstance(r, tuple))
others = sum(r[1] for r in res if isinstance(r, tuple))
seen = fstats(FB)["requests"]
R = seen - sent
print("note: budget: %d clients for %.1f s: sent %d, backend saw %d, retries %d (%.1f%% of sent)" % (C, T, sent, seen, R, 100.0 * R / max(sent, 1)))
expect("budget: every answer is the backend's 503", others == 0, "%d others" % others)
expect("budget: some retries still happen (%d)" % R, R >= 1, "%d" % R)
expect("budget (1): retries %d <= cap * T / d = %d" % (R, int(4 * T / 0.020)), R <= 4 * T / 0.020, "R = %d" % R)
expect("budget (2): retries %d <= 25%% of %d sent + 20 = %d (no budget: %d)" % (R, sent, int(0.25 * sent + 20), 5 * sent),
       R <= 0.25 * sent + 20, "R = %d" % R)
retries = metric_sum(ADM, "mesh_upstream_rq_retry_total ") - m0
refused = metric_sum(ADM, "mesh_upstream_rq_retry_refused_total") - ref0
expect("budget: mesh_upstream_rq_retry_total = retries the backend saw (%d)" % retries, retries == R, "%d vs %d" % (retries, R))
expect("budget: refused retries are counted (mesh_upstream_rq_retry_refused_total %d)" % refused, refused > 0, "%d" % refused)
ctl(FB, "heal")
PY

# ---------------------------------------------------------------- pool limits
# slow: max_connections = 2, max_pending_requests = 2. Ten requests at once that
# each take 1 s: 2 go, 2 wait for a connection, 6 are refused at once.
py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, fstats, ctl, metric_sum, env

OUT, ADM, SLOW, CONC = env("OUT"), env("ADM"), env("SLOW"), env("CONC")
ctl(SLOW, "reset")
clients = [Client(OUT) for _ in range(10)]
res = parallel(lambda w, i: clients[w].req("/x?ms=1000", host="slow"), 10, 10)
codes = sorted(getattr(r, "status", 0) for r in res)
expect("max_connections 2 + max_pending_requests 2: 4 of 10 get 200, 6 get 503", codes == [200] * 4 + [503] * 6, "%r" % codes)
over = [r for r in res if getattr(r, "status", 0) == 503]
expect("the 503s are fast (slowest %.0f ms)" % (max([r.secs for r in over] or [0]) * 1000),
       over and max(r.secs for r in over) < 0.7, "%r" % [round(r.secs, 3) for r in over])
expect("the 503s name the limit (x-mesh-error: ... max_pending_requests ...)",
       over and all("max_pending_requests" in (r.get("x-mesh-error") or "") for r in over), "%r" % [r.get("x-mesh-error") for r in over[:2]])
waited = sorted(r.secs for r in res if getattr(r, "status", 0) == 200)
expect("two waited for a connection (~2 s), two did not (~1 s): %r" % [round(t, 2) for t in waited],
       len(waited) == 4 and waited[1] < 1.6 and waited[2] >= 1.9, "%r" % waited)
st = fstats(SLOW)
expect("the backend never had more than 2 requests at once (maxactive %d)" % st["maxactive"], st["maxactive"] <= 2, "%r" % st)
# connections since the reset: the reset's own, the proxy's, this /ctl/stats call
expect("the backend saw 4 requests over at most 2 proxy connections",
       st["requests"] == 4 and st["connections"] - 2 <= 2, "%r" % st)
n = metric_sum(ADM, 'mesh_cluster_overflow_total{service="slow"')
expect("mesh_cluster_overflow_total{service=slow} = 6", n == 6, "%d" % n)
n = metric_sum(ADM, "istio_requests_total{", 'destination_service_name="slow"', 'response_flags="UO"')
expect("istio_requests_total with response_flags UO = 6", n == 6, "%d" % n)

# conc: max_concurrent_requests = 3
res = parallel(lambda w, i: clients[w].req("/x?ms=800", host="conc"), 8, 8)
codes = sorted(getattr(r, "status", 0) for r in res)
expect("max_concurrent_requests 3: 3 of 8 get 200, 5 get 503", codes == [200] * 3 + [503] * 5, "%r" % codes)
over = [r for r in res if getattr(r, "status", 0) == 503]
expect("those 503s are fast and name max_concurrent_requests",
       over and max(r.secs for r in over) < 0.6 and all("max_concurrent_requests" in (r.get("x-mesh-error") or "") for r in over),
       "%r" % [(round(r.secs, 3), r.get("x-mesh-error")) for r in over[:2]])
PY
sleep 1.2   # the access log is flushed every second
n=$(grep -c '" 503 UO ' "$ART/client.log")
expect_eq "the access log has the 11 overflows with flag UO" 11 "$n"

# max_requests_per_connection = 2: 20 requests in a row make 10 connections
c0=$(fstat "$MR" connections)
urls=()
for i in $(seq 1 20); do urls+=("http://127.0.0.1:$OUT/r$i"); done
out=$(curl -s --max-time 20 -H 'Host: mrpc' "${urls[@]}" | grep -c '^mr$')
c1=$(fstat "$MR" connections)
expect_eq "max_requests_per_connection: 20 requests answered" 20 "$out"
expect_eq "max_requests_per_connection = 2: 20 requests in a row used 10 upstream connections" 10 $((c1 - c0 - 1))
c0=$(fstat "$F" connections)
curl -s --max-time 20 -o /dev/null -H 'Host: flaky' "${urls[@]}"
c1=$(fstat "$F" connections)
if [ $((c1 - c0 - 1)) -le 1 ]; then pass "without the limit the same 20 requests share one connection ($((c1 - c0 - 1)) new)"
else fail "pooled connections" "$((c1 - c0 - 1)) new connections for 20 requests"; fi

# ---------------------------------------------------------------- outlier detection
# out: o1, o2, o3 round robin, outlier.consecutive_5xx = 3, base_ejection_time = 2s
# (2 s: the requests that must all fall inside the ejection take ~50 ms, and
# a loaded machine may be 10 times slower)
py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, fstats, ctl, metric_sum, env

OUT, ADM = env("OUT"), env("ADM")
O = {"o1": env("O1"), "o2": env("O2"), "o3": env("O3")}
cli = Client(OUT)
def counts():
    return {k: fstats(p)["requests"] for k, p in O.items()}
def reset():
    for p in O.values():
        ctl(p, "reset")

reset()
ctl(O["o3"], "fail?n=-1&status=503")
t0 = time.monotonic()
codes = [cli.req("/e/%d" % i, host="out").status for i in range(45)]
dt = time.monotonic() - t0
c = counts()
print("note: 45 requests in %.0f ms: %r" % (dt * 1000, c))
expect("o3 fails: it got exactly 3 requests (consecutive_5xx = 3), then none", c["o3"] == 3, "%r" % c)
expect("the caller saw exactly those 3 failures", codes.count(503) == 3 and codes.count(200) == 42, "%r" % codes)
expect("the others took the rest (%d + %d)" % (c["o1"], c["o2"]), c["o1"] + c["o2"] == 42 and min(c["o1"], c["o2"]) >= 18, "%r" % c)
expect("(those 45 requests took less than the 2 s ejection: %.0f ms)" % (dt * 1000), dt < 1.8, "too slow to tell")
n = metric_sum(ADM, 'mesh_cluster_endpoints_ejected{service="out",namespace="default",subset=""}')
expect("mesh_cluster_endpoints_ejected{service=out} = 1", n == 1, "%d" % n)
n = metric_sum(ADM, 'mesh_cluster_ejections_total{service="out",namespace="default",subset=""}')
expect("mesh_cluster_ejections_total{service=out} = 1", n == 1, "%d" % n)

# heal; after the ejection time o3 gets traffic again
ctl(O["o3"], "heal")
time.sleep(max(0.0, 2.15 - (time.monotonic() - t0)))
reset()
codes = [cli.req("/h/%d" % i, host="out").status for i in range(30)]
c = counts()
expect("after base_ejection_time (2 s) o3 is back: 30 requests, all 200, o3 got %d (round robin: 10)" % c["o3"],
       codes == [200] * 30 and 9 <= c["o3"] <= 11, "%r %r" % (c, codes))
n = metric_sum(ADM, 'mesh_cluster_endpoints_ejected{service="out",namespace="default",subset=""}')
expect("mesh_cluster_endpoints_ejected{service=out} = 0 again", n == 0, "%d" % n)

# two endpoints fail: max_ejection_percent = 30 lets only one be ejected
reset()
ctl(O["o2"], "fail?n=-1&status=503")
ctl(O["o3"], "fail?n=-1&status=503")
codes = [cli.req("/m/%d" % i, host="out").status for i in range(45)]
c = counts()
lo, hi = sorted((c["o2"], c["o3"]))
expect("two failing endpoints, max_ejection_percent = 30: one ejected after 3 requests, the other keeps "
       "getting traffic (o2 %d, o3 %d)" % (c["o2"], c["o3"]), lo == 3 and hi >= 15, "%r" % c)
expect("the caller's failures are those of the two endpoints", codes.count(503) == c["o2"] + c["o3"], "%r %r" % (c, codes.count(503)))
n = metric_sum(ADM, 'mesh_cluster_endpoints_ejected{service="out",namespace="default",subset=""}')
expect("mesh_cluster_endpoints_ejected{service=out} = 1 (not 2)", n == 1, "%d" % n)
ctl(O["o2"], "heal")
ctl(O["o3"], "heal")
PY
# ---------------------------------------------------------------- the queue, subsets, more outlier detection
py <<'PY'
import socket, time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, fstats, ctl, metric_sum, env

OUT, ADM = env("OUT"), env("ADM")
cli = Client(OUT)

def gauge(name, svc, subset=""):
    return metric_sum(ADM, '%s{service="%s",namespace="default",subset="%s"}' % (name, svc, subset))

def settle(svc):
    """the cluster's gauges back at 0 (a second at most)"""
    end = time.time() + 2
    while time.time() < end:
        if gauge("mesh_cluster_rq_pending", svc) == 0 and gauge("mesh_cluster_rq_active", svc) == 0:
            return True
        time.sleep(0.05)
    return False

# q1: max_connections = 1. Requests waiting for the connection time out like any other.
clients = [Client(OUT) for _ in range(3)]
res = parallel(lambda w, i: clients[w].req("/t/%d?ms=1000" % i, host="q1"), 3, 3)
st = [(getattr(r, "status", 0), round(getattr(r, "secs", 0), 2)) for r in res]
expect("max_connections 1, route timeout 300ms: 3 requests (1 sent, 2 queued) all get 504 after ~300 ms: %r" % st,
       all(c == 504 and 0.28 <= t < 1.0 for c, t in st), "%r" % st)
expect("... and the queue and the active count are back at 0", settle("q1"),
       "pending %d active %d" % (gauge("mesh_cluster_rq_pending", "q1"), gauge("mesh_cluster_rq_active", "q1")))
r = cli.req("/n?ms=0", host="q1")
expect("the connection slot is free again: the next request 200 at once (%.0f ms)" % (r.secs * 1000),
       r.status == 200 and r.secs < 0.5, "%r" % r)
# clients that give up while queued leave the queue
def impatient(w, i):
    s = socket.create_connection(("127.0.0.1", OUT), timeout=0.3)
    s.sendall(b"GET /n/%d?ms=1000 HTTP/1.1\r\nHost: q1\r\n\r\n" % i)
    try:
        return s.recv(100)
    except socket.timeout:
        return b"gave up"
    finally:
        s.close()
res = parallel(impatient, 3, 3)
expect("3 clients give up after 300 ms (1 sent, 2 queued)", res == [b"gave up"] * 3, "%r" % res)
time.sleep(0.2)
expect("... the queue is empty again (mesh_cluster_rq_pending 0) and nothing is active", settle("q1"),
       "pending %d active %d" % (gauge("mesh_cluster_rq_pending", "q1"), gauge("mesh_cluster_rq_active", "q1")))
r = cli.req("/n?ms=0", host="q1")
expect("... and the next request gets the connection at once (%.0f ms)" % (r.secs * 1000), r.status == 200 and r.secs < 0.5, "%r" % r)

# sub: max_concurrent_requests 10, but 1 for subset v2
clients = [Client(OUT) for _ in range(6)]
res = parallel(lambda w, i: clients[w].req("/%s/%d?ms=600" % ("v1" if w < 3 else "v2", i), host="sub"), 6, 6)
v1 = sorted(getattr(r, "status", 0) for r in res[:3])
v2 = sorted(getattr(r, "status", 0) for r in res[3:])
expect("[destination sub/v2] max_concurrent_requests = 1 overrides the parent's 10: v1 %r, v2 %r" % (v1, v2),
       v1 == [200, 200, 200] and v2 == [200, 503, 503], "v1 %r v2 %r" % (v1, v2))
n = gauge("mesh_cluster_overflow_total", "sub", "v2")
expect("the overflows are counted on the subset's cluster (mesh_cluster_overflow_total{subset=v2} = 2)", n == 2, "%d" % n)

# og: consecutive_gateway_errors = 2. 500s are not gateway errors; 502s are.
G1 = env("G1")
ctl(G1, "reset"); ctl(G1, "fail?n=-1&status=500")
codes = [cli.req("/g/%d" % i, host="og").status for i in range(20)]
n = fstats(G1)["requests"]
expect("consecutive_gateway_errors: an endpoint answering 500 stays in (it got %d of 20 requests)" % n,
       n == 10 and codes.count(500) == 10, "%d %r" % (n, codes))
ctl(G1, "reset"); ctl(G1, "fail?n=-1&status=502")
codes = [cli.req("/g/%d" % i, host="og").status for i in range(20)]
n = fstats(G1)["requests"]
expect("consecutive_gateway_errors = 2: an endpoint answering 502 is ejected after 2 (it got %d of 20)" % n,
       n == 2 and codes.count(502) == 2, "%d %r" % (n, codes))
ctl(G1, "heal")

# grow: base_ejection_time = 500ms, consecutive_5xx = 1. An endpoint that keeps
# failing is ejected for 0.5 s, then 1 s, then 1.5 s (base x (ejections + 1)).
X2 = env("X2")
ctl(X2, "fail?n=-1&status=503")
fails = []
t0 = time.monotonic()
for i in range(2000):
    now = time.monotonic() - t0
    if now > 3.4:
        break
    r = cli.req("/x/%d" % i, host="grow")
    if r.status == 503:
        fails.append(now)
    time.sleep(0.01)
gaps = [round(b - a, 2) for a, b in zip(fails, fails[1:])]
print("note: grow: failures at %r, gaps %r" % ([round(f, 2) for f in fails], gaps))
expect("ejections grow: gaps between the failing endpoint's requests ~0.5, 1.0, 1.5 s: %r" % gaps,
       len(gaps) >= 3 and 0.45 <= gaps[0] < 0.8 and 0.95 <= gaps[1] < 1.3 and 1.45 <= gaps[2] < 1.8, "%r" % gaps)
ctl(X2, "heal")

# panic: min_health_percent = 60. p2 and p3 fail: with both ejected only 33% are
# healthy, so ejections are ignored and all three get traffic. The same without
# min_health_percent: p2 and p3 get one request each, then nothing.
P = {"p1": env("P1"), "p2": env("P2"), "p3": env("P3")}
for k in ("p2", "p3"):
    ctl(P[k], "fail?n=-1&status=503")
def run(svc):
    for p in P.values():
        ctl(p, "reset")
    codes = [cli.req("/p/%d" % i, host=svc).status for i in range(30)]
    return {k: fstats(p)["requests"] for k, p in P.items()}, codes
c, codes = run("nopanic")
expect("no panic threshold: both failing endpoints ejected after one request each: %r" % c,
       c == {"p1": 28, "p2": 1, "p3": 1}, "%r" % c)
c, codes = run("panic")
expect("min_health_percent = 60: with 2 of 3 ejected, all three are used again: %r" % c,
       c["p2"] + c["p3"] >= 15 and codes.count(503) == c["p2"] + c["p3"], "%r" % c)
for k in ("p2", "p3"):
    ctl(P[k], "heal")

# decay: y2 fails once (ejected 0.5 s), comes back, stays healthy for more than
# two intervals (300 ms), fails once again: ejected for the base 0.5 s again,
# not 1 s (the growth the previous check saw without the healthy intervals).
Y2 = env("Y2")
def until_back(t_fail):
    """seconds from t_fail until y2 answers a request again (requests every 10 ms)"""
    for i in range(400):
        r = cli.req("/y", host="decay")
        if r.first == "y2" and r.status == 200:
            return time.monotonic() - t_fail
        time.sleep(0.01)
    return 99
def fail_once():
    ctl(Y2, "fail?n=1&status=503")
    for i in range(4):
        if cli.req("/y", host="decay").status == 503:
            return time.monotonic()
    return None
t = fail_once()
first = until_back(t) if t else 99
time.sleep(1.0)                       # > 2 intervals healthy (and y2 seen healthy above)
for i in range(6):
    cli.req("/y", host="decay")
t = fail_once()
second = until_back(t) if t else 99
expect("outlier.interval = 300ms: after > 2 healthy intervals a new ejection lasts the base 0.5 s again "
       "(first %.2f s, second %.2f s)" % (first, second),
       0.45 <= first < 0.8 and 0.45 <= second < 0.8, "first %.2f second %.2f" % (first, second))

# connect_timeout = 200ms: an endpoint that never completes the handshake (its
# accept queue is full, so the kernel drops the SYN) gets 502 UF after ~200 ms
import socket
BH = env("BH")
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", BH))
ls.listen(0)
fill = []
for i in range(3):
    f = socket.socket()
    f.setblocking(False)
    f.connect_ex(("127.0.0.1", BH))
    fill.append(f)
time.sleep(0.1)
r = cli.req("/bh", host="blackhole")
expect("[destination] connect_timeout = 200ms: 502 after ~200 ms (%.0f ms): %s" % (r.secs * 1000, r.get("x-mesh-error")),
       r.status == 502 and 0.18 <= r.secs < 1.0 and "connect" in (r.get("x-mesh-error") or ""), "%r %.3f" % (r, r.secs))
for f in fill:
    f.close()
ls.close()
PY

# an ejection survives a reload (balance state is kept by endpoint address)
py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, fstats, ctl, env
OUT = env("OUT")
O3 = env("O3")
cli = Client(OUT)
ctl(O3, "fail?n=-1&status=503")
ctl(O3, "reset")
codes = [cli.req("/r/%d" % i, host="out").status for i in range(30)]
expect("o3 failing: ejected after its 3 requests (%d)" % fstats(O3)["requests"], fstats(O3)["requests"] == 3, "%r" % codes)
PY
n0=$(grep -c 'configuration reloaded' "$ART/client.log")
kill -HUP "$CLIENT_PID"
for i in $(seq 1 30); do [ "$(grep -c 'configuration reloaded' "$ART/client.log")" -gt "$n0" ] && break; sleep 0.1; done
py <<'PY'
from rawhttp import ok, bad, expect
from tmhttp import Client, fstats, ctl, env
OUT, O3 = env("OUT"), env("O3")
cli = Client(OUT)
codes = [cli.req("/r2/%d" % i, host="out").status for i in range(30)]
n = fstats(O3)["requests"]
expect("after a SIGHUP reload o3 is still ejected: 30 more requests, all 200, none to o3 (%d)" % n,
       n == 3 and codes == [200] * 30, "o3 saw %d, %r" % (n, codes))
ctl(O3, "heal")
PY
exit 0
