#!/usr/bin/env bash
# 35_lab2: the seed's Lab 2 (canary, traffic split) as the lab writes it, with
# mesh instead of Istio: Bookinfo (`mesh sample-app`) behind its sidecars and a
# gateway, from the shipped conf/bookinfo. As `kubectl apply` changes the live
# config, each step edits the shared mesh file and SIGHUPs every proxy:
#   step 1  destination-rule-all.yaml: DestinationRules for all four services
#           (the lab's subsets, four of which no endpoint carries: warnings)
#   step 2  canary-reviews.yaml: end-user jason -> reviews v2, else v1 80 / v2 20
# Then the lab's test at scale: 1,000 pages as jason all show black stars;
# 2,000 anonymous pages show black stars 20% +- 4 sigma and no stars otherwise;
# every response 200. Stars are told apart by the markup: v2 renders
# <font color="black"> stars, v3 red ones (style="color: red"), v1 none.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"
. "$(dirname "$0")/bookinfo.sh"

bookinfo_ports
export GW PP_ADM
bookinfo_conf
bookinfo_start_proxies || exit 1
bookinfo_start_apps --quiet || exit 1

# SIGHUP every proxy, then wait until productpage's sidecar shows WANT in /config
reload_all() { # WANT-REGEX
	local p i
	for p in "${BOOKINFO_PROXIES[@]}"; do kill -HUP "${PROXY_PID[$p]}"; done
	for i in $(seq 1 50); do
		curl -s --max-time 2 "http://127.0.0.1:$PP_ADM/config" | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- before Lab 2
py <<'PY'
from rawhttp import ok, bad, expect
from tmhttp import Client, env
import re
GW = env("GW")
c = Client(GW)
seen = {}
for i in range(30):
    r = c.req("/productpage", host="localhost:%d" % GW)
    m = re.search(rb"served by: (reviews-v[123])", r.body)
    k = m.group(1).decode() if m and r.status == 200 else "status %d" % r.status
    seen[k] = seen.get(k, 0) + 1
expect("before Lab 2: 30 pages, all 200, every reviews version (%r)" % seen,
       sorted(seen) == ["reviews-v1", "reviews-v2", "reviews-v3"], "%r" % seen)
PY

# ---------------------------------------------------------------- step 1: destination-rule-all.yaml
# The lab's four DestinationRules as [destination] sections. reviews already has
# one in mesh.ini (round robin): like `kubectl apply`, the lab's rule replaces it.
sed -i '/^\[destination reviews\]$/,/^$/d' "$ART/mesh.ini"
grep -q '^\[destination' "$ART/mesh.ini" && fail "step 1" "mesh.ini still has a [destination]: $(grep -n '^\[destination' "$ART/mesh.ini")"
cat >>"$ART/mesh.ini" <<'EOF'

; ---- Lab 2, step 1: destination-rule-all.yaml
[destination productpage]
subset.v1 = version=v1

[destination reviews]
subset.v1 = version=v1
subset.v2 = version=v2
subset.v3 = version=v3

[destination ratings]
subset.v1          = version=v1
subset.v2          = version=v2
subset.v2-mysql    = version=v2-mysql
subset.v2-mysql-vm = version=v2-mysql-vm

[destination details]
subset.v1 = version=v1
subset.v2 = version=v2
EOF
if reload_all '^\[destination ratings\]'; then pass "step 1: the DestinationRules are in force after SIGHUP"
else fail "step 1" "productpage's sidecar does not show them: $(grep -E 'error|warn' "$ART/proxy-productpage-v1.log" | tail -n 3)"; fi
all_have=1
for p in "${BOOKINFO_PROXIES[@]}"; do
	a=$(grep -o '^admin *= *127.0.0.1:[0-9]*' "$ART/$p.ini" | sed 's/.*://')
	cfg=$(curl -s --max-time 5 "http://127.0.0.1:$a/config")
	for d in productpage reviews ratings details; do
		printf '%s\n' "$cfg" | grep -qx "\[destination $d\]" || { all_have=0; fail "step 1 on $p" "no [destination $d]"; }
	done
done
[ "$all_have" = 1 ] && pass "step 1: all seven proxies have the four DestinationRules"
sleep 0.2
for s in "'v2' of ratings" "'v2-mysql' of ratings" "'v2-mysql-vm' of ratings" "'v2' of details"; do
	if grep -q "mesh\.ini:[0-9]*: warning: subset $s matches no endpoint" "$ART/proxy-productpage-v1.log"; then
		pass "step 1: warning for subset $s, which no endpoint carries"
	else fail "step 1 warning for subset $s" "$(grep warning "$ART/proxy-productpage-v1.log" | tail -n 4)"; fi
done

# ---------------------------------------------------------------- step 2: canary-reviews.yaml
cat >>"$ART/mesh.ini" <<'EOF'

; ---- Lab 2, step 2: canary-reviews.yaml
[route reviews/jason]
match.header.end-user = jason
to = v2

[route reviews/default]
to = v1 80, v2 20
EOF
if reload_all '^\[route reviews/default\]'; then pass "step 2: the reviews canary is in force after SIGHUP"
else fail "step 2" "productpage's sidecar does not show it: $(grep -E 'error|warn' "$ART/proxy-productpage-v1.log" | tail -n 3)"; fi

# the lab's own loop, unchanged but for the count: grep -c "glyphicon-star" per page
counts=$(for i in $(seq 1 20); do curl -s --max-time 10 "http://127.0.0.1:$GW/productpage" | grep -c "glyphicon-star"; done | sort | uniq -c | tr -s ' ' | tr '\n' ';')
if printf '%s' "$counts" | grep -Eq '^( ?[0-9]+ (0|10);)+$'; then pass "the lab's loop: star counts per page are 0 or 10 ($counts)"
else fail "the lab's loop" "$counts"; fi

# ---------------------------------------------------------------- the canary at scale
py <<'PY'
import re, time
from rawhttp import ok, bad, expect
from tmhttp import Client, parallel, within, env

GW = env("GW")
HOST = "localhost:%d" % GW

def classify(r):
    """which reviews version rendered the page, from what it shows"""
    if r.status != 200:
        return "status %d" % r.status
    b = r.body
    n = b.count(b"glyphicon-star")
    full = b.count(b'glyphicon-star"')
    if n == 0 and b"served by: reviews-v1" in b:
        return "none"
    if n == 10 and full == 9 and b'<font color="black">' in b and b"color: red" not in b \
            and b"served by: reviews-v2" in b:
        return "black"
    if n == 10 and full == 9 and b'<font color="red">' in b and b"served by: reviews-v3" in b:
        return "red"
    return "unclassified"

W = 4
clients = [Client(GW, timeout=30) for _ in range(W)]

def run(n, headers):
    t0 = time.monotonic()
    res = parallel(lambda w, i: classify(clients[w].req("/productpage", host=HOST, headers=headers)), n, W)
    tally = {}
    for r in res:
        k = r if isinstance(r, str) else "error %r" % (r,)
        tally[k] = tally.get(k, 0) + 1
    print("note: %d pages %s in %.1f s: %r" % (n, headers or "anonymous", time.monotonic() - t0, tally))
    return tally

t = run(1000, {"end-user": "jason"})
expect("1,000 pages as end-user jason: all 200 with black stars (reviews v2): %r" % t, t == {"black": 1000}, "%r" % t)

t = run(2000, {})
n = sum(t.values())
expect("2,000 anonymous pages: every response 200, only black stars or none: %r" % t,
       set(t) <= {"black", "none"} and n == 2000, "%r" % t)
within("2,000 anonymous pages: black stars (v2) at 20%", t.get("black", 0), 2000, 0.20)

# the signed-in user: productpage turns the login cookie into end-user
t = run(100, {"cookie": "user=jason"})
expect("100 pages signed in as jason (cookie user=jason): all black stars: %r" % t, t == {"black": 100}, "%r" % t)
t = run(200, {"end-user": "Jason"})
expect("the match is exact: end-user Jason is anonymous traffic (200 pages, no red stars): %r" % t,
       set(t) <= {"black", "none"} and t.get("none", 0) > 100, "%r" % t)
PY

# metrics: productpage's sidecar counted its calls to each reviews version
m=$(curl -s --max-time 5 "http://127.0.0.1:$PP_ADM/metrics")
v2=$(printf '%s\n' "$m" | grep '^istio_requests_total{reporter="source"' | grep 'destination_workload="reviews-v2"' | awk '{ s += $NF } END { print s + 0 }')
v3=$(printf '%s\n' "$m" | grep '^istio_requests_total{reporter="source"' | grep 'destination_workload="reviews-v3"' | awk '{ s += $NF } END { print s + 0 }')
if [ "$v2" -ge 1400 ]; then pass "productpage's sidecar counted >= 1,400 calls to reviews-v2 ($v2)"
else fail "metrics to reviews-v2" "$v2"; fi
note "calls to reviews-v3 in all (before the canary only): $v3"

# ---------------------------------------------------------------- undo (kubectl delete -f canary-reviews.yaml)
sed -i '/^; ---- Lab 2, step 2/,$d' "$ART/mesh.ini"
for p in "${BOOKINFO_PROXIES[@]}"; do kill -HUP "${PROXY_PID[$p]}"; done
gone=0
for i in $(seq 1 50); do
	curl -s --max-time 2 "http://127.0.0.1:$PP_ADM/config" | grep -q '^\[route' || { gone=1; break; }
	sleep 0.1
done
if [ "$gone" = 1 ]; then pass "the canary removed on SIGHUP"
else fail "canary removed" "$(curl -s --max-time 2 "http://127.0.0.1:$PP_ADM/config" | grep -A2 '^\[route')"; fi
red=0
for i in $(seq 1 40); do
	if curl -s --max-time 10 "http://127.0.0.1:$GW/productpage" | grep -q 'served by: reviews-v3'; then red=1; break; fi
done
expect_eq "without the canary reviews v3 (red stars) is back" 1 "$red"
exit 0
