#!/usr/bin/env bash
# 31_actions: what a [route] does (issue #3): weighted split over subsets and
# to another service, rewrite.uri (prefix, whole path, regex match),
# rewrite.authority, redirect (status and Location), direct_response (status
# and body), request and response header set / add / remove, the per-route
# timeout (504), fault delay and abort (their rates within binomial bounds,
# the delay measured; both on one rule: abort after the delay; on direct
# responses too), and mirroring to a service or a subset (the shadow gets a
# copy with Host "<host>-shadow", the same id and body; mirror_percent; the
# caller is unaffected when the shadow is dead or slow).
#
# Backends are flaky (tests/e2e/flaky.c): the body names the endpoint, then
# the request body's length and byte sum, then the request head as received.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"

ports W1 W2 ALT SH SLOWSH DEADSH OUT ADM
export W1 W2 ALT SH SLOWSH OUT ADM

EXT_HOST=example.com   # a name in a redirect target, never resolved
cat >"$ART/mesh.ini" <<EOF
[service web]
port = 80
endpoint = 127.0.0.1:$W1 version=v1
endpoint = 127.0.0.1:$W2 version=v2

[service alt]
port = 80
endpoint = 127.0.0.1:$ALT

[service shadow]
port = 80
endpoint = 127.0.0.1:$SH

[service slowshadow]
port = 80
endpoint = 127.0.0.1:$SLOWSH

[service deadshadow]
port = 80
endpoint = 127.0.0.1:$DEADSH     ; nothing listens here

[destination web]
subset.v1 = version=v1
subset.v2 = version=v2

[route web/split]
match.path = prefix:/split
to = v1 70, v2 30

[route web/zero]
match.path = prefix:/zero
to = v1 100, v2 0

[route web/other-service]
match.path = prefix:/other
to = v1 50, alt 50

[route web/rw-prefix]
match.path = prefix:/old/
rewrite.uri = /new/
to = v1

[route web/rw-whole]
match.path = /legacy
rewrite.uri = /modern/page
to = v1

[route web/rw-regex]
match.path = regex:/re/[0-9]+
rewrite.uri = /re-new
to = v1

[route web/authority]
match.path = prefix:/auth
rewrite.authority = backend.internal:8080
to = v1

[route web/redirect]
match.path = /go
redirect = /gone

[route web/redirect-abs]
match.path = /go-abs
redirect = https://$EXT_HOST/x
redirect.code = 308
response.set.x-redirected = yes

[route web/direct]
match.path = /dr
direct_response = 418
direct_response.body = I am a teapot
response.set.x-dr = yes

[route web/direct-delayed]
match.path = /dr-slow
direct_response = 200
direct_response.body = slow direct
fault.delay = 250ms

[route web/direct-aborted]
match.path = /dr-abort
direct_response = 200
fault.abort = 500

[route web/headers]
match.path = prefix:/hdr
request.set.x-set = one
request.add.x-add = two
request.remove = x-remove-me, X-Other
response.set.x-resp-set = r1
response.add.x-resp-add = r2
response.remove = x-origin
to = v1

[route web/timeout]
match.path = prefix:/slow
timeout = 300ms
to = v1

[route web/delay]
match.path = prefix:/fdelay
fault.delay = 200ms
fault.delay_percent = 40
to = v1

[route web/delay-all]
match.path = prefix:/fdall
fault.delay = 300ms
to = v1

[route web/abort]
match.path = prefix:/fabort
fault.abort = 503
fault.abort_percent = 25
to = v1

[route web/abort-all]
match.path = prefix:/fall
fault.abort = 429
to = v1

[route web/mirror]
match.path = prefix:/mirror/
to = v1
mirror = shadow

[route web/mirror-half]
match.path = prefix:/mhalf
to = v1
mirror = shadow
mirror_percent = 50

[route web/mirror-dead]
match.path = prefix:/mdead
to = v1
mirror = deadshadow

[route web/mirror-slow]
match.path = prefix:/mslow
to = v1
mirror = slowshadow

[route web/mirror-subset]
match.path = prefix:/msub
to = v1
mirror = v2                     ; a subset of the rule's own service

[route web/delay-abort]
match.path = prefix:/fboth
fault.delay = 200ms
fault.abort = 503
to = v1
EOF

cat >"$ART/client.ini" <<EOF
[workload]
labels = app=client, version=v1

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

for b in w1:$W1 w2:$W2 alt:$ALT shadow:$SH slowshadow:$SLOWSH; do start_flaky "${b%%:*}" "${b#*:}" || exit 1; done
ctl "$SLOWSH" 'delay?ms=3000' >/dev/null
start_proxy client "$ART/client.ini" "$ADM" || exit 1
pass "backends and the proxy ready"

py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, within, bounds, fstats, flog, ctl, metric_sum, env

OUT, ADM = env("OUT"), env("ADM")
W1, ALT, SH, SLOWSH = env("W1"), env("ALT"), env("SH"), env("SLOWSH")
cli = Client(OUT)

def head_of(r):
    """the request head the backend saw (after its two summary lines)"""
    return r.body.split(b"\n", 2)[2].decode("latin-1") if r.body.count(b"\n") >= 2 else ""

def header_lines(head, name):
    return [l.split(":", 1)[1].strip() for l in head.split("\r\n")[1:] if l.lower().startswith(name.lower() + ":")]

clients = [Client(OUT) for _ in range(20)]   # one per worker thread

# ---- weighted split, 70/30 over subsets
N = 1000
res = parallel(lambda w, i: clients[w].req("/split/%d" % i, host="web").first, N, 4)
n1, n2 = res.count("w1"), res.count("w2")
expect("split: every response from v1 or v2", n1 + n2 == N, "others: %r" % [r for r in res if r not in ("w1", "w2")][:5])
within("split to = v1 70, v2 30: v1's share", n1, N, 0.70)

# ---- split to another service
N = 400
res = parallel(lambda w, i: clients[w].req("/other/%d" % i, host="web").first, N, 4)
expect("split to v1 50, alt 50: only w1 and alt answer", res.count("w1") + res.count("alt") == N,
       "others: %r" % [r for r in res if r not in ("w1", "alt")][:5])
within("split to v1 50, alt 50: the other service's share", res.count("alt"), N, 0.50)

# ---- a weight of 0 gets nothing
res = parallel(lambda w, i: clients[w].req("/zero/%d" % i, host="web").first, 200, 4)
expect("to = v1 100, v2 0: 200 of 200 on v1", res == ["w1"] * 200, "%r" % {x: res.count(x) for x in set(res)})

# ---- rewrites
r = cli.req("/old/a/b?q=1", host="web")
expect("rewrite.uri on a prefix match: /old/a/b?q=1 arrives as /new/a/b?q=1",
       r.status == 200 and head_of(r).startswith("GET /new/a/b?q=1 HTTP/1.1\r\n"), "%r" % head_of(r)[:80])
r = cli.req("/legacy?x=y", host="web")
expect("rewrite.uri on an exact match replaces the whole path: /legacy?x=y -> /modern/page?x=y",
       head_of(r).startswith("GET /modern/page?x=y HTTP/1.1\r\n"), "%r" % head_of(r)[:80])
r = cli.req("/re/123", host="web")
expect("rewrite.uri on a regex match replaces the whole path: /re/123 -> /re-new",
       head_of(r).startswith("GET /re-new HTTP/1.1\r\n"), "%r" % head_of(r)[:80])
r = cli.req("/auth/x", host="web")
hosts = header_lines(head_of(r), "host")
expect("rewrite.authority: the backend sees Host: backend.internal:8080 (once)",
       hosts == ["backend.internal:8080"], "%r" % hosts)
expect("rewrite.authority still routes by the original host (to web v1)", r.first == "w1", "%r" % r)

# ---- redirect and direct response: answered by the proxy, nothing forwarded
before = fstats(W1)["requests"] + fstats(env("W2"))["requests"]
r = cli.req("/go", host="web")
expect("redirect: default status 301 with Location http://web/gone",
       r.status == 301 and r.get("location") == "http://web/gone", "%r" % r)
r = cli.req("/go?x=1", host="web:80")
expect("redirect keeps the request's authority: Location http://web:80/gone",
       r.status == 301 and r.get("location") == "http://web:80/gone", "%d %r" % (r.status, r.get("location")))
r = cli.req("/go-abs", host="web")
EXT = "https://" + "example.com/x"
expect("redirect = " + EXT + " with redirect.code = 308",
       r.status == 308 and r.get("location") == EXT, "%r" % r)
expect("response.set applies to a redirect", r.get("x-redirected") == "yes", "%r" % r.headers)
r = cli.req("/dr", host="web")
expect("direct_response = 418 with its body", r.status == 418 and r.body == b"I am a teapot", "%r %r" % (r, r.body))
expect("direct_response has a content-length", r.get("content-length") == "13", "%r" % r.headers)
expect("response.set applies to a direct response (x-dr: yes)", r.get("x-dr") == "yes", "%r" % r.headers)
t0 = time.monotonic()
r = cli.req("/dr-slow", host="web")
dt = time.monotonic() - t0
expect("fault.delay 250ms on a direct response: 200 after >= 250 ms (%.0f ms)" % (dt * 1000),
       r.status == 200 and r.body == b"slow direct" and dt >= 0.245, "%r %.3f s" % (r, dt))
r = cli.req("/dr-abort", host="web")
expect("fault.abort 500 on a direct response: 500", r.status == 500, "%r" % r)
r = cli.req("/dr", host="web", method="HEAD")
expect("HEAD of a direct response: status, no body", r.status == 418 and r.body == b"", "%r" % r)
after = fstats(W1)["requests"] + fstats(env("W2"))["requests"]
expect("redirects and direct responses never reach a backend", after == before, "%d -> %d" % (before, after))

# ---- header operations
r = cli.req("/hdr", host="web", headers={"x-set": "original", "x-add": "first", "x-remove-me": "gone",
                                          "x-other": "gone too", "x-keep": "kept"})
h = head_of(r)
expect("request.set replaces: x-set: one, once", header_lines(h, "x-set") == ["one"], "%r" % header_lines(h, "x-set"))
expect("request.add appends: x-add: first, then two", header_lines(h, "x-add") == ["first", "two"], "%r" % header_lines(h, "x-add"))
expect("request.remove drops x-remove-me and x-other (listed as X-Other)",
       not header_lines(h, "x-remove-me") and not header_lines(h, "x-other"), "%r" % h)
expect("other request headers kept", header_lines(h, "x-keep") == ["kept"], "%r" % h)
expect("response.set replaces the origin's x-resp-set", r.all("x-resp-set") == ["r1"], "%r" % r.headers)
expect("response.add adds x-resp-add: r2", r.all("x-resp-add") == ["r2"], "%r" % r.headers)
expect("response.remove drops the origin's x-origin", r.get("x-origin") is None and r.get("x-backend") == "w1", "%r" % r.headers)
r = cli.req("/nohdr", host="web", headers={"x-remove-me": "stays"})
expect("header operations only on the rule's requests", "stays" in header_lines(head_of(r), "x-remove-me") and r.get("x-origin") == "yes",
       "%r" % r.headers)

# ---- per-route timeout
t0 = time.monotonic()
r = cli.req("/slow?ms=3000", host="web")
dt = time.monotonic() - t0
expect("timeout = 300ms: a 3 s answer becomes 504 (upstream request timeout)",
       r.status == 504 and "timeout" in (r.get("x-mesh-error") or ""), "%r" % r)
expect("the 504 comes after about 300 ms (%.0f ms)" % (dt * 1000), 0.28 <= dt <= 1.5, "%.3f s" % dt)
r = cli.req("/slow?ms=50", host="web")
expect("timeout = 300ms: a 50 ms answer passes", r.status == 200 and r.first == "w1", "%r" % r)
r = cli.req("/nothing?ms=600", host="web")
expect("no timeout on other routes ([proxy] request_timeout 0): 600 ms passes", r.status == 200, "%r" % r)

# ---- fault delay: 40% of requests wait 200 ms before being forwarded.
# The rate is checked on mesh_fault_injected_total (exact, whatever the load);
# the latencies then show that this many requests did wait >= 200 ms (a busy
# machine only makes requests slower, so >= is the robust direction; the
# upper check leaves room for 20 slow undelayed ones).
faults0 = metric_sum(ADM, "mesh_fault_injected_total")
N = 200
res = parallel(lambda w, i: clients[w].req("/fdelay/%d" % i, host="web"), N, 20)
errs = [r for r in res if not hasattr(r, "status") or r.status != 200]
expect("fault.delay: every response 200", not errs, "%r" % errs[:3])
n_delay = metric_sum(ADM, "mesh_fault_injected_total") - faults0
within("fault.delay_percent = 40: delayed requests (mesh_fault_injected_total)", n_delay, N, 0.40)
lat = sorted(r.secs for r in res if hasattr(r, "secs"))
slow = [t for t in lat if t >= 0.195]
expect("%d requests took >= 200 ms, as many as were delayed (%d)" % (len(slow), n_delay),
       n_delay <= len(slow) <= n_delay + 20, "latencies: %r" % [round(t, 3) for t in lat[-n_delay - 3:][:8]])
faults0 = metric_sum(ADM, "mesh_fault_injected_total")
t0 = time.monotonic()
rs = [cli.req("/fdall/%d" % i, host="web") for i in range(3)]
dt = time.monotonic() - t0
expect("fault.delay 300ms at 100%%: 3 requests in a row take >= 900 ms (%.0f ms), all 200" % (dt * 1000),
       dt >= 0.9 and all(r.status == 200 for r in rs), "%.3f %r" % (dt, rs))

# ---- fault abort: 25% answered 503 by the proxy, the rest forwarded
w1_before = fstats(W1)["requests"]
N = 800
res = parallel(lambda w, i: clients[w].req("/fabort/%d" % i, host="web"), N, 8)
codes = [getattr(r, "status", 0) for r in res]
aborted = codes.count(503)
expect("fault.abort: only 200 and 503", codes.count(200) + aborted == N, "other: %r" % [c for c in codes if c not in (200, 503)][:5])
within("fault.abort_percent = 25: aborted requests", aborted, N, 0.25)
ab = [r for r in res if getattr(r, "status", 0) == 503]
expect("an aborted request says so (x-mesh-error: fault filter abort)",
       ab and all("fault filter abort" in (r.get("x-mesh-error") or "") for r in ab), "%r" % ab[:1])
forwarded = fstats(W1)["requests"] - w1_before
expect("aborted requests never reach the backend: it saw %d = %d - %d" % (forwarded, N, aborted),
       forwarded == N - aborted, "backend saw %d" % forwarded)
rs = [cli.req("/fall", host="web").status for _ in range(5)]
expect("fault.abort = 429 at 100%: 5 of 5", rs == [429] * 5, "%r" % rs)
r = cli.req("/fboth", host="web")
expect("fault.delay and fault.abort on one rule: the abort comes after the delay (503 after %.0f ms)" % (r.secs * 1000),
       r.status == 503 and r.secs >= 0.195, "%r %.3f" % (r, r.secs))
faults = metric_sum(ADM, "mesh_fault_injected_total") - faults0
expect("mesh_fault_injected_total counts the faults: %d = 3 delays + %d aborts + 5 aborts + 1 delay and abort" % (faults, aborted),
       faults == 3 + aborted + 5 + 2, "%d" % faults)

# ---- mirroring
ctl(SH, "reset")
ids, bodies = [], []
for i in range(5):
    rid = "mirror-%d-%d" % (i, int(time.time() * 1000))
    body = ("mirror-body-%d-" % i).encode() * (i + 1) * 50
    r = cli.req("/mirror/p%d?i=%d" % (i, i), host="web", method="POST", headers={"x-request-id": rid}, body=body)
    ids.append(rid); bodies.append(body)
    if not (r.status == 200 and r.first == "w1"):
        bad("mirror: the caller's answer comes from v1", "%r" % r)
        break
else:
    ok("mirror: the caller's 5 answers come from v1")
def shadow_has_all():
    got = {d.get("id") for d in flog(SH)}
    return all(i in got for i in ids)
end = time.time() + 5
while time.time() < end and not shadow_has_all():
    time.sleep(0.1)
log = {d["id"]: d for d in flog(SH)}
miss = [i for i in ids if i not in log]
expect("the shadow received a copy of each of the 5 requests (same x-request-id)", not miss, "missing %r" % miss)
good = 0
for i, rid in enumerate(ids):
    d = log.get(rid)
    if d and d["host"] == "web-shadow" and d["method"] == "POST" and d["target"] == "/mirror/p%d?i=%d" % (i, i) \
            and int(d["bytes"]) == len(bodies[i]) and int(d["sum"]) == sum(bodies[i]):
        good += 1
    else:
        bad("mirror copy %d" % i, "%r (want host web-shadow, %d bytes)" % (d, len(bodies[i])))
expect("each copy has Host web-shadow, the same method, target and body", good == 5, "%d of 5" % good)
r = cli.req("/mirror/port", host="web:80", headers={"x-request-id": "mirror-port-1"})
end = time.time() + 3
while time.time() < end and "mirror-port-1" not in {d.get("id") for d in flog(SH)}:
    time.sleep(0.1)
d = {d["id"]: d for d in flog(SH)}.get("mirror-port-1")
expect("Host web:80 is mirrored as web-shadow:80", d is not None and d["host"] == "web-shadow:80", "%r" % d)

# a 1 MiB body: the mirror may be dropped when it cannot keep up, the caller never is
big = bytes((i * 13) % 256 for i in range(1 << 20))
rid = "mirror-big-%d" % int(time.time() * 1000)
r = cli.req("/mirror/big", host="web", method="POST", headers={"x-request-id": rid}, body=big)
expect("mirror with a 1 MiB body: the caller's request arrives whole (200, bytes and sum)",
       r.status == 200 and b"bytes=%d sum=%d" % (len(big), sum(big)) in r.body, "%r" % r)
time.sleep(0.5)
d = {d["id"]: d for d in flog(SH)}.get(rid)
expect("... and the shadow got either the whole body or nothing (%s)" % ("whole" if d else "dropped"),
       d is None or (int(d["bytes"]) == len(big) and int(d["sum"]) == sum(big)), "%r" % d)

# mirror_percent = 50
ctl(SH, "reset")
m0 = metric_sum(ADM, "mesh_mirror_total")
N = 400
res = parallel(lambda w, i: clients[w].req("/mhalf/%d" % i, host="web").status, N, 4)
expect("mirror_percent = 50: every caller answer 200", res == [200] * N, "%r" % [c for c in res if c != 200][:5])
mirrored = metric_sum(ADM, "mesh_mirror_total") - m0
within("mirror_percent = 50: mirrored requests (mesh_mirror_total)", mirrored, N, 0.50)
end = time.time() + 5
while time.time() < end and fstats(SH)["requests"] < mirrored:
    time.sleep(0.1)
expect("the shadow received every mirrored copy (%d)" % mirrored, fstats(SH)["requests"] == mirrored,
       "shadow saw %d" % fstats(SH)["requests"])

# a dead shadow: nothing listens
t0 = time.monotonic()
rs = [cli.req("/mdead/%d" % i, host="web") for i in range(20)]
dt = time.monotonic() - t0
expect("dead shadow: 20 of 20 caller answers 200 from v1", all(r.status == 200 and r.first == "w1" for r in rs), "%r" % rs[:3])
expect("dead shadow: no delay for the caller (20 requests in %.0f ms)" % (dt * 1000), dt < 2.0, "%.3f s" % dt)

# a slow shadow (answers after 3 s): the caller does not wait for it
ctl(SLOWSH, "reset")
lat = []
for i in range(10):
    r = cli.req("/mslow/%d" % i, host="web")
    lat.append(r.secs)
    if r.status != 200:
        bad("slow shadow: caller answer", "%r" % r)
expect("slow shadow (3 s): each of 10 answers on one keep-alive connection in < 1 s (longest %.0f ms)" % (max(lat) * 1000),
       max(lat) < 1.0, "%r" % lat)
end = time.time() + 3
while time.time() < end and fstats(SLOWSH)["requests"] < 10:
    time.sleep(0.1)
expect("slow shadow: it still received the 10 copies", fstats(SLOWSH)["requests"] == 10, "%r" % fstats(SLOWSH))

# mirror = v2: a subset of the rule's own service
W2 = env("W2")
rid = "mirror-subset-%d" % int(time.time() * 1000)
r = cli.req("/msub/x", host="web", headers={"x-request-id": rid})
end = time.time() + 3
while time.time() < end and rid not in {d.get("id") for d in flog(W2)}:
    time.sleep(0.1)
d = {d["id"]: d for d in flog(W2)}.get(rid)
expect("mirror = v2: the caller's answer from v1, the copy to v2 with Host web-shadow",
       r.status == 200 and r.first == "w1" and d is not None and d["host"] == "web-shadow", "%r %r" % (r, d))
PY
sleep 1.2   # the access log is flushed every second
n=$(grep -c '"GET /fabort/[0-9]* HTTP/1.1" 503 FI ' "$ART/client.log")
if [ "$n" -ge 100 ]; then pass "aborted requests logged with flag FI ($n)"; else fail "FI in the access log" "$n lines"; fi
exit 0
