#!/usr/bin/env bash
# 59_browser: the dashboard page in real headless Chromium (issue #6): Debian's
# chromium driven by playwright-core (tests/browser/, `npm ci` by ./build.sh
# test) against `mesh demo` with the seed's Lab 2 canary (reviews v1 80 / v2 20)
# after 300 Bookinfo pages: no console errors; the Bookinfo nodes and edges
# with non-zero rates; a lock on the mTLS edges; the canary split in the edge
# rates (20% within 4 standard deviations of a 300-call sample, and within
# 2 points of what reviews v1 and v2 counted); a
# click on the edge, then on one of its traces, opens the waterfall.
# Screenshots in $ART (graph.png, edge.png, waterfall.png, services.png).
# Static-binary pass only: the page is the same in both, and Chromium is slow.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/demo.sh"

if [ "$MESH_STATIC" != 1 ]; then note "the browser test runs in the static-binary pass only"; exit 0; fi
BROWSER_DIR=$E2E/../browser
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
for need in "$CHROMIUM" "$(command -v node)" "$BROWSER_DIR/node_modules/playwright-core/package.json"; do
	if [ ! -e "$need" ]; then
		fail "browser setup" "${need:-node} is missing: ./build.sh test installs chromium and nodejs and runs npm ci in tests/browser"
		exit 1
	fi
done

RUN=$ART/run
demo_start "$RUN" --timeout 60 || exit 1
API=http://127.0.0.1:$DASH
# Chromium starts and opens the page now, and checks it once $GO says the traffic is in
GO=$ART/go
rm -f "$GO"
export ART CHROMIUM
(cd "$BROWSER_DIR" && exec timeout 150 node dashboard.test.mjs "$API/" "$GO") >"$ART/browser.out" 2>&1 &
BROWSER_PID=$!
PIDS+=("$BROWSER_PID")

# proxies_on SNAPSHOT : all seven proxies SYNCED on a snapshot other than SNAPSHOT
proxies_on() {
	curl -s --max-time 5 "http://127.0.0.1:$CTL_ADM/proxies.json" | python3 -c '
import json, sys
d = json.load(sys.stdin)["proxies"]
sys.exit(0 if len(d) == 7 and all(p["status"] == "SYNCED" and p["snapshot"] != sys.argv[1] for p in d) else 1)' "$1"
}
# Lab 2 before any traffic, as the banner says: the controller pushes it after its warm-up
old=$(curl -s --max-time 5 "http://127.0.0.1:$CTL_ADM/proxies.json" | grep -o '"snapshot":"[0-9a-f]*"' | head -1 | cut -d'"' -f4)
cp "$RUN/mesh-lab2.ini" "$RUN/mesh.ini"
wait_until 20 proxies_on "$old" && pass "Lab 2 (the reviews canary) on every proxy" \
	|| { fail "lab 2" "$("$MESH" proxy-status --admin "127.0.0.1:$CTL_ADM")"; exit 1; }
# the dashboard's first scrape of each proxy is its baseline: wait for it before the traffic
all_scraped() {
	curl -s --max-time 5 "$API/api/services" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ps = [p for s in d["services"] for p in s["proxies"]] + d["clients"]
sys.exit(0 if len(ps) == 7 and all(p["scrape"] == "ok" for p in ps) else 1)'
}
wait_until 15 all_scraped || fail "scrape" "$(curl -s "$API/api/services" | head -c 300)"

# ---- traffic: 300 pages through the gateway
# shellcheck disable=SC2046
n=$(curl -s --max-time 60 -w '%{http_code}\n' $(for i in $(seq 1 300); do printf 'http://127.0.0.1:%s/productpage -o /dev/null ' "$GW"; done) |
	grep -c '^200$')
expect_eq "300 Bookinfo pages through the gateway" 300 "$n"
reviews_of() { metric_sum "$1" '^istio_requests_total\{reporter="destination".*destination_service_name="reviews"'; }
V1N=$(reviews_of "$R1_ADM") V2N=$(reviews_of "$R2_ADM") V3N=$(reviews_of "$R3_ADM")
expect_eq "the canary: reviews v1 + v2 answered all 300, v3 none" "300 0" "$((V1N + V2N)) $V3N"
note "reviews v1 $V1N, v2 $V2N"
# until a scrape has seen all of it (the demo's dashboard scrapes every 5 s)
graph_done() {
	curl -s --max-time 5 "$API/api/graph?window=60" | python3 -c '
import json, sys
e = json.load(sys.stdin)["edges"]
n = sum(x["requests"] for x in e if x["source"] == "productpage v1" and x["service"] == "reviews")
sys.exit(0 if n == 300 else 1)'
}
wait_until 15 graph_done || fail "graph" "the dashboard's edges to reviews do not add up to 300"

# ---- the page in Chromium
echo "$V1N $V2N" >"$GO.tmp" && mv "$GO.tmp" "$GO"
browser_result() { wait "$BROWSER_PID"; local rc=$?; cat "$ART/browser.out"; return "$rc"; }
COUNTED_NAME=node counted browser_result
for f in graph edge waterfall services; do
	[ -s "$ART/$f.png" ] || fail "screenshot" "$ART/$f.png is missing"
done
