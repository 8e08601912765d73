#!/usr/bin/env bash
# 33_lb: each load_balancer of [destination] (issue #3, docs/balancing.md):
# round_robin (an exact cycle), random and least_request (uniform within
# binomial bounds; least_request avoids a busy endpoint), peak_ewma (a slow
# endpoint gets a small share and is probed again once it heals), ring_hash
# and maglev on a header, a cookie, a query parameter and the source IP
# (the same key always lands on the same endpoint, keys spread within
# bounds, two sidecars agree on the mapping; with maglev an ejected endpoint's
# keys move to the others and come back, the other keys never move), and a
# [destination S/SUBSET] with its own balancer.
#
# Services share endpoints e1..e3 (flaky); every service has its own cluster
# state (docs/balancing.md: per (set, endpoint)). least_request and peak_ewma
# get their own endpoints, since they slow some down.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"

ports E1 E2 E3 S1 S2 S3 W1 W2 W3 C1 C2 C3 H1 H2 H3 OUT ADM OUT2 ADM2
export E1 E2 E3 S1 S2 S3 W1 W2 W3 C1 C2 C3 H1 H2 H3 OUT ADM OUT2

svc() { # NAME ENDPOINT-PORTS...
	local n=$1 p i=1
	shift
	printf '[service %s]\nport = 80\n' "$n"
	for p in "$@"; do printf 'endpoint = 127.0.0.1:%s\n' "$p"; done
	printf '\n'
}
{
	svc rr "$E1" "$E2" "$E3"
	svc rnd "$E1" "$E2" "$E3"
	svc lr "$E1" "$E2" "$E3"
	svc lrbusy "$S1" "$S2" "$S3"
	svc ewma "$W1" "$W2" "$W3"
	svc ewmactl "$C1" "$C2" "$C3"
	for lb in ring mag; do
		for k in h c q s; do svc "$lb-$k" "$E1" "$E2" "$E3"; done
	done
	cat <<EOF
[destination rr]
load_balancer = ROUND_ROBIN        ; Istio's spelling works

[destination rnd]
load_balancer = random

[destination lr]
load_balancer = least_request

[destination lrbusy]
load_balancer = least_request

; no [destination ewma]: peak_ewma is the default
[destination ewmactl]
load_balancer = peak_ewma
EOF
	for lb in ring:ring_hash mag:maglev; do
		for k in h:header:x-user c:cookie:session q:query:user s:source_ip; do
			IFS=: read -r short kind key <<<"$k"
			printf '\n[destination %s-%s]\nload_balancer = %s\nhash_on = %s%s\n' "${lb%%:*}" "$short" "${lb#*:}" "$kind" "${key:+:$key}"
		done
	done
	cat <<EOF

; a subset with its own balancer: v1 inherits round_robin, v2 hashes
[service subl]
port = 80
endpoint = 127.0.0.1:$E1 version=v1
endpoint = 127.0.0.1:$E2 version=v1
endpoint = 127.0.0.1:$S1 version=v2
endpoint = 127.0.0.1:$S2 version=v2

[destination subl]
load_balancer = round_robin
subset.v1 = version=v1
subset.v2 = version=v2

[destination subl/v2]
load_balancer = ring_hash
hash_on = header:x-user

[route subl/v2]
match.header.x-sub = v2
to = v2

[route subl/v1]
to = v1

; maglev with outlier detection: an ejected endpoint's keys move, the others stay
[service magout]
port = 80
endpoint = 127.0.0.1:$H1
endpoint = 127.0.0.1:$H2
endpoint = 127.0.0.1:$H3

[destination magout]
load_balancer = maglev
hash_on = header:x-user
outlier.consecutive_5xx = 1
outlier.base_ejection_time = 2s
outlier.max_ejection_percent = 50
EOF
} >"$ART/mesh.ini"

for p in client:$OUT:$ADM client2:$OUT2:$ADM2; do
	IFS=: read -r n o a <<<"$p"
	cat >"$ART/$n.ini" <<EOF
[listen]
outbound = 127.0.0.1:$o
admin = 127.0.0.1:$a

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF
done

for b in e1:$E1 e2:$E2 e3:$E3 s1:$S1 s2:$S2 s3:$S3 w1:$W1 w2:$W2 w3:$W3 c1:$C1 c2:$C2 c3:$C3 h1:$H1 h2:$H2 h3:$H3; do
	start_flaky "${b%%:*}" "${b#*:}" || exit 1
done
start_proxy client "$ART/client.ini" "$ADM" || exit 1
start_proxy client2 "$ART/client2.ini" "$ADM2" || exit 1
pass "backends and two proxies ready"

py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, within, bounds, fstats, ctl, env

OUT, OUT2 = env("OUT"), env("OUT2")
cli = Client(OUT)
E = ["e1", "e2", "e3"]

# ---- round_robin: an exact cycle over the three endpoints
seq = [cli.req("/rr/%d" % i, host="rr").first for i in range(30)]
expect("round_robin: 30 requests in a row are an exact cycle of e1, e2, e3 (%s...)" % ",".join(seq[:6]),
       sorted(seq[:3]) == E and all(seq[i] == seq[i % 3] for i in range(30)), "%r" % seq)

# ---- random and least_request (idle endpoints: ties spread at random): uniform
for name in ("rnd", "lr"):
    N = 600
    clients = [Client(OUT) for _ in range(3)]
    seq = parallel(lambda w, i: clients[w].req("/%s/%d" % (name, i), host=name).first, N, 3)
    # random: independent draws, Binomial(N, 1/3), 4 sigma. least_request: with 3
    # clients in parallel a busy endpoint is avoided, so the counts follow how fast
    # each endpoint answers on a shared machine, not independent draws (seen 6.3
    # sigma off under load): each endpoint gets 10%..60%, which still catches
    # starvation or a stuck preference
    for e in E:
        if name == "rnd":
            within("%s: %s's share of %d requests" % (name, e, N), seq.count(e), N, 1 / 3, 4.0)
        else:
            n = seq.count(e)
            expect("%s: %s's share of %d requests is 10%%..60%% (%d)" % (name, e, N, n),
                   N // 10 <= n <= N * 6 // 10, "%d of %d" % (n, N))
    # not a disguised round robin: in a cycle seq[i] == seq[i-3] always, at random 1/3 of the time
    same = sum(seq[i] == seq[i - 3] for i in range(3, N)) / (N - 3)
    expect("%s is not a cycle (seq[i] == seq[i-3] in %.0f%% of positions, random ~33%%)" % (name, same * 100),
           same < 0.6, "%.2f" % same)

# ---- least_request with a busy endpoint: s3 answers after 300 ms, s1 and s2 at once.
# Power of two choices on requests in flight: s3 is taken only when it is idle and
# ties, so it gets a small share (random would give it a third).
ctl(env("S3"), "delay?ms=300")
clients = [Client(OUT) for _ in range(4)]
stop = time.monotonic() + 2.0
def busy(w, i):
    got = []
    while time.monotonic() < stop:
        got.append(clients[w].req("/b", host="lrbusy").first)
    return got
res = parallel(busy, 4, 4)
seq = [x for r in res if isinstance(r, list) for x in r]
n3 = seq.count("s3")
expect("least_request: a busy endpoint (300 ms) gets a small share: s3 %d of %d (< 10%%)" % (n3, len(seq)),
       len(seq) > 100 and n3 < 0.10 * len(seq), "s3 %d of %d" % (n3, len(seq)))
ctl(env("S3"), "heal")
PY

# ---------------------------------------------------------------- consistent hashing
py <<'PY'
import uuid
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, env

OUT, OUT2 = env("OUT"), env("OUT2")
E = ["e1", "e2", "e3"]
run = uuid.uuid4().hex[:6]

def key_req(client, svc, kind, key, i=0):
    if kind == "h":
        return client.req("/k?i=%d" % i, host=svc, headers={"x-user": key}).first
    if kind == "c":
        return client.req("/k?i=%d" % i, host=svc, headers={"cookie": "a=1; session=%s; b=2" % key}).first
    if kind == "q":
        return client.req("/k?x=1&user=%s&i=%d" % (key, i), host=svc).first
    raise ValueError(kind)

# Spread bounds over K distinct keys. maglev: each endpoint owns 1/3 of the table
# (+-1%, docs/balancing.md), so a count is Binomial(K, 1/3): 4 sigma. ring_hash:
# 100 points per endpoint give a share within +-35% of 1/3 (the unit test's
# bound), i.e. 0.217..0.45, and 4 sigma of sampling on top of that.
import math
def spread_ok(lb, counts, K):
    if lb == "mag":
        lo_p, hi_p = 1 / 3 - 0.01, 1 / 3 + 0.01
    else:
        lo_p, hi_p = (1 / 3) * 0.65, (1 / 3) * 1.35
    lo = K * lo_p - 4 * math.sqrt(K * lo_p * (1 - lo_p))
    hi = K * hi_p + 4 * math.sqrt(K * hi_p * (1 - hi_p))
    return all(lo <= counts[e] <= hi for e in E), (int(lo), int(math.ceil(hi)))

K = 300
c1 = [Client(OUT) for _ in range(4)]
c2 = Client(OUT2)
for lb, lbname in (("ring", "ring_hash"), ("mag", "maglev")):
    for kind, what in (("h", "header x-user"), ("c", "cookie session"), ("q", "query user")):
        svc = "%s-%s" % (lb, kind)
        # stickiness: 20 keys x 5 requests
        keys = ["%s-%s-%d" % (run, kind, k) for k in range(20)]
        res = parallel(lambda w, i: key_req(c1[w], svc, kind, keys[i // 5], i), 100, 4)
        by_key = {}
        for i, r in enumerate(res):
            by_key.setdefault(keys[i // 5], set()).add(r if isinstance(r, str) else repr(r))
        sticky = all(len(v) == 1 for v in by_key.values())
        expect("%s on %s: each of 20 keys always lands on the same endpoint (5 of 5)" % (lbname, what), sticky,
               "%r" % {k: v for k, v in by_key.items() if len(v) > 1})
        # spread: K distinct keys
        keys = ["%s-spread-%s-%d" % (run, kind, k) for k in range(K)]
        res = parallel(lambda w, i: key_req(c1[w], svc, kind, keys[i]), K, 4)
        counts = {e: res.count(e) for e in E}
        good, (lo, hi) = spread_ok(lb, counts, K)
        expect("%s on %s: %d keys spread over the endpoints %r (each %d..%d)" % (lbname, what, K, counts, lo, hi),
               good and sum(counts.values()) == K, "%r" % counts)
        # another sidecar with the same endpoints maps keys the same way
        other = [key_req(c2, svc, kind, keys[i]) for i in range(40)]
        expect("%s on %s: a second sidecar maps 40 keys identically" % (lbname, what), other == res[:40],
               "%r vs %r" % (other[:8], res[:8]))
    # no key: picked at random (not all on one endpoint)
    seen = {Client(OUT).req("/nokey/%d" % i, host="%s-h" % lb).first for i in range(30)}
    expect("%s without the header: spread at random (%d endpoints seen in 30)" % (lbname, len(seen)), len(seen) >= 2, "%r" % seen)

# source_ip: the client binds 127.0.x.y, one address per "client machine"
for lb, lbname in (("ring", "ring_hash"), ("mag", "maglev")):
    svc = "%s-s" % lb
    ips = ["127.0.3.%d" % i for i in range(1, 21)]
    by_ip = {}
    for ip in ips:
        c = Client(OUT, source=ip)
        by_ip[ip] = {c.req("/s/%d" % j, host=svc).first for j in range(5)}
        c.close()
    expect("%s on source_ip: each of 20 client addresses always lands on the same endpoint" % lbname,
           all(len(v) == 1 for v in by_ip.values()), "%r" % {k: v for k, v in by_ip.items() if len(v) > 1})
    ips = ["127.0.%d.%d" % (4 + i // 250, 1 + i % 250) for i in range(K)]
    def one(w, i):
        c = Client(OUT, source=ips[i])
        try:
            return c.req("/s", host=svc).first
        finally:
            c.close()
    res = parallel(one, K, 4)
    counts = {e: res.count(e) for e in E}
    good, (lo, hi) = spread_ok(lb, counts, K)
    expect("%s on source_ip: %d client addresses spread %r (each %d..%d)" % (lbname, K, counts, lo, hi),
           good and sum(counts.values()) == K, "%r" % counts)
PY

# ---------------------------------------------------------------- subset policy, hashing with ejection
py <<'PY'
import time, uuid
from rawhttp import ok, bad, expect
from tmhttp import Client, ctl, env

OUT = env("OUT")
cli = Client(OUT)
run = uuid.uuid4().hex[:6]

# subl: round_robin for the service, ring_hash for subset v2
seq = [cli.req("/s/%d" % i, host="subl").first for i in range(12)]
expect("subset v1 inherits round_robin: an exact cycle over its two endpoints (%s...)" % ",".join(seq[:4]),
       sorted(seq[:2]) == ["e1", "e2"] and all(seq[i] == seq[i % 2] for i in range(12)), "%r" % seq)
by_key = {}
for k in range(30):
    key = "%s-sub-%d" % (run, k)
    by_key[key] = {cli.req("/s", host="subl", headers={"x-sub": "v2", "x-user": key}).first for _ in range(3)}
sticky = all(len(v) == 1 for v in by_key.values())
used = set().union(*by_key.values())
expect("[destination subl/v2] load_balancer = ring_hash: 30 keys x 3 requests, each key on one endpoint, both used (%r)" % sorted(used),
       sticky and used == {"s1", "s2"}, "%r" % by_key)

# magout: maglev + consecutive_5xx = 1. h3 fails once and is ejected for 2 s:
# its keys move to h1 and h2, every other key stays, and all come back after.
keys = ["%s-mo-%d" % (run, k) for k in range(90)]
def mapping():
    out = {}
    for k in keys:
        r = cli.req("/m", host="magout", headers={"x-user": k})
        out[k] = r.first if r.status == 200 else "status %d" % r.status
    return out
base = mapping()
on3 = [k for k in keys if base[k] == "h3"]
expect("maglev: 90 keys over h1, h2, h3 (%d on h3)" % len(on3),
       set(base.values()) == {"h1", "h2", "h3"}, "%r" % sorted(set(base.values())))
ctl(env("H3"), "fail?n=1&status=503")
r = cli.req("/m", host="magout", headers={"x-user": on3[0]})
t_eject = time.monotonic()
expect("a key on h3 gets h3's one failure (503); h3 is ejected", r.status == 503, "%r" % r)
during = mapping()
moved = [k for k in keys if during[k] != base[k]]
expect("during the ejection exactly h3's %d keys moved, all to h1 or h2, and both took some"
       % len(on3), sorted(moved) == sorted(on3) and {during[k] for k in on3} == {"h1", "h2"},
       "moved %d: %r" % (len(moved), {k: (base[k], during[k]) for k in moved[:6]}))
time.sleep(max(0.0, 2.2 - (time.monotonic() - t_eject)))
after = mapping()
expect("after the ejection (2 s) every key is back where it was", after == base,
       "%r" % {k: (base[k], after[k]) for k in keys if after[k] != base[k]})
PY

# ---------------------------------------------------------------- peak EWMA
# ewma (w1..w3) and ewmactl (c1..c3, the control group): fast endpoints answer
# after 10 ms, w3 and c3 after 40 ms.
# Phase 1 (3 s, one client per service, so the endpoints are idle when one is
# picked): the slow one gets a small share. Peak EWMA counts its first 40 ms
# answer at once and it loses every comparison with a fast one (~10 ms) until
# its estimate has decayed (tau 10 s): 10 s x ln(40/10) ~ 14 s. A scheduling
# stall of a fast answer raises that endpoint's estimate at once (peak), and
# until it blends back (seconds: the same tau) the slow one wins the pairs with
# it: one 55 ms stall under ASan gave the slow one 7% of a run. So the bound
# is 15%: uniform would be 33%, at least 20% over ~190 requests with 4 sigma.
# Then w3 heals (10 ms) while c3 stays slow. Phase 2 (10 s, two clients per
# service: a fast endpoint is often busy, cost = estimate x (in flight + 1)
# ~ 2 x 10 ms, so an idle endpoint is probed once its estimate decays below
# ~20 ms: 10 s x ln(40/20) ~ 7 s after its last answer, sooner when stalls push
# the fast ones up). Once probed, a healed endpoint answers fast, its estimate
# drops and it is picked again and again; a slow one answers in 40 ms again,
# its estimate jumps back and it waits for the next decay or stall. Observed on
# a 2-core machine: w3 8-30% (probed after 1-4 s, then climbing), c3 0.5-8%
# (more when the machine is busy); the check wants w3 >= 30 requests and at
# least twice c3.
py <<'PY'
import time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, ctl, env

OUT = env("OUT")
for n in ("W1", "W2", "C1", "C2"):
    ctl(env(n), "delay?ms=10")
for n in ("W3", "C3"):
    ctl(env(n), "delay?ms=40")
clients = [Client(OUT) for _ in range(4)]

def phase(secs, tag, per_service):
    stop = time.monotonic() + secs
    def run(w, i):
        svc = "ewma" if w < per_service else "ewmactl"
        got = []
        while time.monotonic() < stop:
            got.append(clients[w].req("/" + tag, host=svc).first)
        return got
    res = parallel(run, 2 * per_service, 2 * per_service)
    errs = [r for r in res if not isinstance(r, list)]
    if errs:
        bad("peak_ewma %s: clients" % tag, "%r" % errs[:2])
    flat = [x for r in res if isinstance(r, list) for x in r]
    c = {k: flat.count(k) for k in ("w1", "w2", "w3", "c1", "c2", "c3")}
    print("note: peak_ewma %s: %r" % (tag, c))
    return c, c["w1"] + c["w2"] + c["w3"], c["c1"] + c["c2"] + c["c3"]

c, nw, nc = phase(3.0, "phase-1", 1)
expect("peak_ewma: a slow endpoint (40 ms vs 10 ms) gets a small share: w3 %d of %d (< 15%%)" % (c["w3"], nw),
       nw > 100 and c["w3"] < 0.15 * nw, "%r" % c)
expect("peak_ewma (control group): c3 %d of %d (< 15%%)" % (c["c3"], nc), nc > 100 and c["c3"] < 0.15 * nc, "%r" % c)
ctl(env("W3"), "delay?ms=10")
c, nw, nc = phase(10.0, "phase-2", 2)
expect("peak_ewma: healed, w3 is probed again and used: %d of %d in 10 s (>= 30), at least twice the still-slow c3 (%d of %d)"
       % (c["w3"], nw, c["c3"], nc), nw > 500 and c["w3"] >= 30 and c["w3"] >= 2 * c["c3"], "%r" % c)
PY
exit 0
