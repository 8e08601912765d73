#!/usr/bin/env bash
# 58_prometheus: a real Prometheus (Debian's package, /usr/bin/prometheus)
# scrapes the proxies of `mesh demo` unchanged (issue #6). The test writes its
# config (one job, the seven proxies' admin /metrics every second, storage in
# $ART), sends 30 Bookinfo pages through the gateway, and asks Prometheus'
# HTTP API (/api/v1/query): every target up; Istio's query
# sum by (destination_version) (istio_requests_total{destination_service_name="reviews",reporter="destination"})
# gives v1, v2 and v3 with 10 each (reviews is round robin in conf/bookinfo),
# equal to each reviews proxy's own counter; all of it mTLS; the source-side
# rate and histogram_quantile queries of docs/dashboard.md return the edges.
# Then `mesh dashboard --prometheus` reads this Prometheus instead of the
# proxies: its graph holds exactly the 15 pages sent after its first round.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/demo.sh"

PROM_BIN=${PROMETHEUS:-/usr/bin/prometheus}
if [ ! -x "$PROM_BIN" ]; then
	fail "prometheus" "$PROM_BIN not found: ./build.sh test installs Debian's prometheus (or: apt-get install prometheus)"
	exit 1
fi

demo_start "$ART/run" --timeout 60 || exit 1
ports PROM
rm -rf "$ART/prometheus"   # a fresh TSDB (a run by hand reuses $ART)
cat >"$ART/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: mesh
    static_configs:
      - targets: [$(demo_proxy_admins | sed 's/.*/"127.0.0.1:&"/' | paste -sd,)]
EOF
bg "$PROM_BIN" --config.file="$ART/prometheus.yml" --storage.tsdb.path="$ART/prometheus" \
	--web.listen-address="127.0.0.1:$PROM" >"$ART/prometheus.log" 2>&1
PROM_PID=$BG_PID
wait_http "http://127.0.0.1:$PROM/-/ready" 20 || { fail "prometheus ready" "no /-/ready on $PROM"; exit 1; }

# query PROMQL : the JSON answer of /api/v1/query
query() { curl -s --max-time 5 "http://127.0.0.1:$PROM/api/v1/query" --data-urlencode "query=$1"; }
# scalar PROMQL : the value of a one-element answer, or "none"
scalar() {
	query "$1" | python3 -c 'import json, sys
r = json.load(sys.stdin)["data"]["result"]
print(r[0]["value"][1] if len(r) == 1 else "none")' 2>/dev/null || echo none
}
# wait_value SECS PROMQL WANT : until the query's value is WANT; prints the last value
wait_value() {
	local i v n=$(($1 * 5))
	for ((i = 0; i < n; i++)); do
		v=$(scalar "$2")
		[ "$v" = "$3" ] && break
		sleep 0.2
	done
	echo "$v"
}
expect_eq "Prometheus scrapes the seven proxies' admin /metrics (up == 1)" 7 \
	"$(wait_value 15 'count(up{job="mesh"} == 1)' 7)"

# ---- traffic: 30 pages through the gateway, in two halves with a scrape
# between them (rate() needs two samples of a series: the first half makes them)
pages() {
	# shellcheck disable=SC2046
	curl -s --max-time 60 -w '%{http_code}\n' $(for i in $(seq 1 15); do printf 'http://127.0.0.1:%s/productpage -o /dev/null ' "$GW"; done) |
		grep -c '^200$'
}
DST='istio_requests_total{destination_service_name="reviews",reporter="destination"}'
SRC='istio_requests_total{destination_service_name="reviews",reporter="source"}'
ok1=$(pages)
expect_eq "PromQL: the first 15 pages' reviews calls" 15 "$(wait_value 15 "sum($DST)" 15)"
ok2=$(pages)
expect_eq "30 Bookinfo pages through the gateway" "15 15" "$ok1 $ok2"
# what each reviews proxy counted itself
own=
for a in "$R1_ADM" "$R2_ADM" "$R3_ADM"; do
	own="$own $(metric_sum "$a" '^istio_requests_total\{reporter="destination".*destination_service_name="reviews"')"
done
expect_eq "each reviews version's own proxy counted 10 (round robin)" " 10 10 10" "$own"
expect_eq "PromQL: the reviews series (destination reports) sum to the 30 calls" 30 "$(wait_value 15 "sum($DST)" 30)"
expect_eq "PromQL: productpage's own reports of them too (source)" 30 "$(wait_value 15 "sum($SRC)" 30)"
export PROM
py "$own" <<'PY'
import json, os, sys, time, urllib.parse, urllib.request
from rawhttp import ok, bad

def query(q):
    url = "http://127.0.0.1:%s/api/v1/query?%s" % (os.environ["PROM"], urllib.parse.urlencode({"query": q}))
    with urllib.request.urlopen(url, timeout=5) as r:
        d = json.load(r)
    assert d["status"] == "success", d
    return [(x["metric"], float(x["value"][1])) for x in d["data"]["result"]]

REVIEWS = 'istio_requests_total{destination_service_name="reviews",reporter="destination"}'
got = {m.get("destination_version"): v for m, v in query("sum by (destination_version) (%s)" % REVIEWS)}
own = dict(zip(["v1", "v2", "v3"], map(float, sys.argv[1].split())))
if got == own:
    ok("PromQL sum by (destination_version) (istio_requests_total{...reviews...}): %s, as the proxies counted" % sorted(got.items()))
else:
    bad("per-version series", "Prometheus %s, the proxies %s" % (got, own))
pol = {m.get("connection_security_policy"): v for m, v in query("sum by (connection_security_policy) (%s)" % REVIEWS)}
if pol == {"mutual_tls": 30.0}:
    ok("PromQL: every reviews call was mTLS (connection_security_policy)")
else:
    bad("mtls series", pol)
# the queries docs/dashboard.md quotes, over the caller's reports
want = ["productpage->details/v1", "productpage->reviews/v1", "productpage->reviews/v2", "productpage->reviews/v3",
        "reviews->ratings/v1"]
# rate() needs two scrapes of a series: one that first appeared in the second half
# may have only one yet (scrapes every 1 s; up to 10 s)
for attempt in range(20):
    edges = {"%s->%s/%s" % (m.get("source_app"), m.get("destination_service_name"), m.get("destination_version")): v
             for m, v in query("sum by (source_app, destination_service_name, destination_version)"
                               ' (rate(istio_requests_total{reporter="source"}[1m]))')}
    if all(edges.get(w, 0) > 0 for w in want):
        break
    time.sleep(0.5)
if all(edges.get(w, 0) > 0 for w in want):
    ok("PromQL rate() over the source reports: productpage -> details, reviews v1/v2/v3; reviews -> ratings")
else:
    bad("source edges", edges)
p99 = query('histogram_quantile(0.99, sum by (le) (rate(istio_request_duration_milliseconds_bucket'
            '{reporter="source",destination_service_name="reviews"}[1m])))')
if len(p99) == 1 and 0 < p99[0][1] < 10000:
    ok("PromQL histogram_quantile(0.99) of reviews from the proxies' buckets: %.1f ms" % p99[0][1])
else:
    bad("histogram_quantile", p99)
PY

# ---- the dashboard reading this Prometheus instead of the proxies (--prometheus)
ports PDASH
start_mesh dashboard-prom dashboard --controller "127.0.0.1:$CTL_ADM" --prometheus "127.0.0.1:$PROM" \
	--listen "127.0.0.1:$PDASH" --interval 1s
wait_http "http://127.0.0.1:$PDASH/ready" 10 || fail "dashboard --prometheus" "not answering on $PDASH"
st=$(body "http://127.0.0.1:$PDASH/api/status")
expect_match "dashboard --prometheus: /api/status says where the metrics come from" "\"metrics_from\":\"127.0.0.1:$PROM\"" "$st"
# its first round is the baseline: new traffic after it, then its edges must hold exactly that
rounds() { body "http://127.0.0.1:$PDASH/api/status" | sed -n 's/.*"rounds":\([0-9]*\).*/\1/p'; }
wait_until 10 eval '[ "$(rounds)" -ge 1 ]' || fail "dashboard --prometheus" "no round done: $(body "http://127.0.0.1:$PDASH/api/status")"
ok3=$(pages)
expect_eq "PromQL: 15 more pages' reviews calls" 45 "$(wait_value 15 "sum($DST)" 45)"
reviews_edges() {
	body "http://127.0.0.1:$PDASH/api/graph?window=60" | python3 -c '
import json, sys
e = json.load(sys.stdin)["edges"]
print(sum(x["requests"] for x in e if x["source"] == "productpage v1" and x["service"] == "reviews"))'
}
wait_until 15 eval '[ "$(reviews_edges)" = 15 ]'
expect_eq "dashboard --prometheus: the graph's productpage -> reviews edges hold the 15 new calls ($ok3 pages)" 15 "$(reviews_edges)"
