#!/usr/bin/env bash
# 50_tracing: spans across Bookinfo (issue #6). The shipped conf/bookinfo
# (sampling = 100) with a collector added: a small Zipkin v2 endpoint
# (zipkin.py) that stores what the proxies post. Checks: one page through the
# gateway is one trace whose spans chain gateway -> productpage -> details and
# productpage -> reviews -> ratings, each SERVER span the child of the CLIENT
# span that called it, each CLIENT span the child of its workload's SERVER span,
# timestamps nested; Istio-like names and tags; B3 (multi and single header)
# and W3C requests are continued (same trace id, our root under their span);
# an incoming "not sampled" wins over sampling = 100, an incoming "sampled"
# over sampling = 0; a malformed traceparent starts a new trace; hostile
# header bytes still make valid JSON; sampling = 0 sends nothing; a dead
# collector only counts drops while every request still succeeds.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/bookinfo.sh"

bookinfo_ports
ports ZIP DEAD
export GW PP_ADM GW_ADM RA_ADM ZIP ART
bookinfo_conf
expect_match "the shipped conf/bookinfo samples every request (demo/labs)" '^sampling *= *100' \
	"$(sed -n '/^\[tracing\]/,/^\[/p' "$ART/mesh.ini")"
sed -i "/^\[tracing\]/a collector = 127.0.0.1:$ZIP" "$ART/mesh.ini"

bg python3 "$E2E/zipkin.py" "$ZIP" "$ART/spans.jsonl"
wait_port "$ZIP" 10 || { fail "collector" "zipkin.py does not listen on $ZIP"; exit 1; }
bookinfo_start_proxies || exit 1
bookinfo_start_apps --quiet || exit 1

cfg=$(body "http://127.0.0.1:$PP_ADM/config")
expect_match "/config renders [tracing] with the collector" "collector *= *127\.0\.0\.1:$ZIP" \
	"$(printf '%s\n' "$cfg" | sed -n '/^\[tracing\]/,/^\[/p')"

# ---------------------------------------------------------------- one page, one trace
py <<'PY'
import json, os, time, urllib.request
from rawhttp import ok, bad, expect, get, wait_until
GW, ZIP = int(os.environ["GW"]), int(os.environ["ZIP"])

def spans():
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/spans" % ZIP, timeout=5) as r:
        return json.loads(r.read())

def by_rid(rid):
    return [s for s in spans() if s.get("tags", {}).get("guid:x-request-id") == rid]

# three pages: round robin gives reviews v1, v2 and v3 one each
pages = {}
for i in range(3):
    rid = "trace-page-%d" % i
    r = get(GW, "/productpage", host="localhost", headers=[("x-request-id", rid)])
    pages[rid] = r
expect("three pages through the gateway, all 200", all(r and r.status == 200 for r in pages.values()),
       "%r" % [(k, r and r.status) for k, r in pages.items()])
# v2/v3 pages: 8 spans (gateway, productpage in/out x2, details, reviews in/out, ratings); v1: 6
want = {}
for rid, r in pages.items():
    want[rid] = 6 if b"served by: reviews-v1" in r.body else 8
wait_until(lambda: all(len(by_rid(rid)) >= n for rid, n in want.items()), 8)
got = {rid: by_rid(rid) for rid in pages}
expect("every span of each page arrives at the collector (%r)" % {k: len(v) for k, v in got.items()},
       all(len(got[rid]) == want[rid] for rid in pages), "%r" % {k: len(v) for k, v in got.items()})
expect("each page is exactly one trace (one trace id for all its spans), three different traces",
       all(len({s["traceId"] for s in got[rid]}) == 1 for rid in pages)
       and len({got[rid][0]["traceId"] for rid in pages if got[rid]}) == 3,
       "%r" % {k: sorted({s["traceId"] for s in v}) for k, v in got.items()})
expect("trace ids are 32 and span ids 16 lowercase hex digits, span ids unique",
       all(len(s["traceId"]) == 32 and len(s["id"]) == 16 and s["id"] == s["id"].lower()
           and int(s["id"], 16) != 0 for v in got.values() for s in v)
       and all(len({s["id"] for s in v}) == len(v) for v in got.values()), "%r" % got)

rid = next((k for k in pages if want[k] == 8), None)
S = got.get(rid, [])
def svc(s): return s.get("tags", {}).get("istio.canonical_service")
def dst(s): return s.get("tags", {}).get("destination_service", "")
def one(kind, who, to=None):
    m = [s for s in S if s["kind"] == kind and (svc(s) == who or (who == "gateway" and svc(s) == "bookinfo-gateway"))
         and (to is None or dst(s).startswith(to + "."))]
    return m[0] if len(m) == 1 else None
gw = one("CLIENT", "gateway", "productpage")
pp_s = one("SERVER", "productpage")
pp_d = one("CLIENT", "productpage", "details")
d_s = one("SERVER", "details")
pp_r = one("CLIENT", "productpage", "reviews")
r_s = one("SERVER", "reviews")
r_ra = one("CLIENT", "reviews", "ratings")
ra_s = one("SERVER", "ratings")
named = dict(gw=gw, pp_s=pp_s, pp_d=pp_d, d_s=d_s, pp_r=pp_r, r_s=r_s, r_ra=r_ra, ra_s=ra_s)
if expect("a v2/v3 page has one span per hop: gateway CLIENT, productpage SERVER + 2 CLIENT, details SERVER, "
          "reviews SERVER + CLIENT, ratings SERVER", rid is not None and all(named.values()),
          "missing %r in %r" % ([k for k, v in named.items() if not v], [(s["kind"], svc(s), dst(s)) for s in S])):
    expect("the gateway's CLIENT span is the root (no parent)", "parentId" not in gw, "%r" % gw)
    chain = [("gw", "pp_s"), ("pp_s", "pp_d"), ("pp_d", "d_s"), ("pp_s", "pp_r"), ("pp_r", "r_s"),
             ("r_s", "r_ra"), ("r_ra", "ra_s")]
    wrong = [(p, c) for p, c in chain if named[c].get("parentId") != named[p]["id"]]
    expect("parent/child order: gateway -> productpage -> details, productpage -> reviews -> ratings "
           "(each SERVER under the CLIENT that called it, each CLIENT under its workload's SERVER)",
           not wrong, "wrong links %r" % wrong)
    slack = 3000  # us: two processes' clocks are the same, but each loop caches its time
    nested = [(p, c) for p, c in chain
              if not (named[c]["timestamp"] + slack >= named[p]["timestamp"] and
                      named[c]["timestamp"] + named[c]["duration"] <=
                      named[p]["timestamp"] + named[p]["duration"] + slack)]
    expect("every child span lies within its parent's time", not nested,
           "%r" % [(p, c, named[p]["timestamp"], named[p]["duration"], named[c]["timestamp"], named[c]["duration"])
                   for p, c in nested])
    expect("span names are Istio's <service FQDN>:<port>/*",
           pp_r["name"] == "reviews.default.svc.cluster.local:9080/*" and
           r_s["name"] == "reviews.default.svc.cluster.local:9080/*" and
           ra_s["name"] == "ratings.default.svc.cluster.local:9080/*", "%r" % [s["name"] for s in S])
    expect("localEndpoint is <service>.<namespace>",
           r_s["localEndpoint"]["serviceName"] == "reviews.default" and
           pp_s["localEndpoint"]["serviceName"] == "productpage.default", "%r" % r_s["localEndpoint"])
    v = r_s["tags"].get("istio.canonical_revision")
    expect("the reviews SERVER span names its version (v2 or v3, the page's), the CLIENT span the endpoint's",
           v in ("v2", "v3") and ("served by: reviews-" + v).encode() in pages[rid].body and
           pp_r["tags"].get("destination_version") == v, "%r / %r" % (r_s["tags"], pp_r["tags"]))
    t = pp_r["tags"]
    expect("CLIENT tags: method, url, status 200, flags -, upstream endpoint address, cluster, retries 0",
           t.get("http.method") == "GET" and t.get("http.url") == "http://reviews:9080/reviews/0" and
           t.get("http.status_code") == "200" and t.get("response_flags") == "-" and
           t.get("upstream_address", "").startswith("127.0.0.1:") and
           t.get("upstream_cluster", "").startswith("outbound|9080|") and t.get("mesh.retries") == "0" and
           "error" not in t and pp_r.get("remoteEndpoint", {}).get("ipv4") == "127.0.0.1", "%r" % pp_r)
    expect("mTLS: the SERVER span names its caller's identity, the CLIENT span the server's",
           r_s["tags"].get("peer.identity") == "spiffe://cluster.local/ns/default/sa/bookinfo-productpage" and
           pp_r["tags"].get("peer.identity") == "spiffe://cluster.local/ns/default/sa/bookinfo-reviews" and
           r_s["tags"].get("connection_security_policy") == "mutual_tls", "%r" % r_s["tags"])
    timing = [k for k in ("mesh.timing.queue_us", "mesh.timing.connect_us", "mesh.timing.upstream_us",
                          "mesh.timing.total_us") if k not in pp_r["tags"]]
    tot = int(pp_r["tags"].get("mesh.timing.total_us", "-1"))
    expect("the proxy's timing split is in the tags (queue, connect, upstream, total = duration)",
           not timing and abs(tot - pp_r["duration"]) <= 1 and
           int(pp_r["tags"]["mesh.timing.upstream_us"]) <= tot, "missing %r, %r" % (timing, pp_r["tags"]))
PY

# ---------------------------------------------------------------- incoming contexts
py <<'PY'
import json, os, time, urllib.request
from rawhttp import ok, bad, expect, get, wait_until
GW, ZIP = int(os.environ["GW"]), int(os.environ["ZIP"])

def spans():
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/spans" % ZIP, timeout=5) as r:
        return json.loads(r.read())
def by_rid(rid):
    return [s for s in spans() if s.get("tags", {}).get("guid:x-request-id") == rid]
def page(rid, hdrs):
    r = get(GW, "/productpage", host="localhost", headers=[("x-request-id", rid)] + hdrs)
    return r is not None and r.status == 200
def root(S):
    r = [s for s in S if s["kind"] == "CLIENT" and s["tags"].get("istio.canonical_service") == "bookinfo-gateway"]
    return r[0] if len(r) == 1 else {}

cases = [
    ("b3-multi", [("x-b3-traceid", "463ac35c9f6413ad48485a3953bb6124"), ("x-b3-spanid", "a2fb4a1d1a96d312"),
                  ("x-b3-sampled", "1")], "463ac35c9f6413ad48485a3953bb6124", "a2fb4a1d1a96d312"),
    ("b3-multi-64bit", [("X-B3-TraceId", "48485a3953bb6124"), ("X-B3-SpanId", "b2fb4a1d1a96d312")],
     "000000000000000048485a3953bb6124", "b2fb4a1d1a96d312"),
    ("b3-single", [("b3", "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")],
     "80f198ee56343ba864fe8b2a57d3eff7", "e457b5a2e4d86bd1"),
    ("w3c", [("traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"), ("tracestate", "x=1")],
     "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"),
]
for name, hdrs, tid, parent in cases:
    expect("%s: the page is 200" % name, page("ctx-" + name, hdrs), "")
for name, hdrs, tid, parent in cases:
    wait_until(lambda: len(by_rid("ctx-" + name)) >= 6, 6)
    S = by_rid("ctx-" + name)
    expect("%s request continued: all %d spans carry trace id %s, our root's parent is the caller's span %s"
           % (name, len(S), tid, parent),
           len(S) >= 6 and {s["traceId"] for s in S} == {tid} and root(S).get("parentId") == parent,
           "%r" % [(s["traceId"], s.get("parentId"), s["kind"]) for s in S])

# incoming decisions win: "not sampled" under sampling = 100 records nothing
for name, hdrs in [("w3c-unsampled", [("traceparent", "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00")]),
                   ("b3-unsampled", [("x-b3-traceid", "563ac35c9f6413ad48485a3953bb6124"),
                                     ("x-b3-spanid", "c2fb4a1d1a96d312"), ("x-b3-sampled", "0")]),
                   ("b3-deny-only", [("b3", "0")])]:
    expect("%s: the page is 200" % name, page("ctx-" + name, hdrs), "")
# malformed contexts are absent: a new trace, sampled at the configured 100%
bads = [("w3c-version-ff", [("traceparent", "ff-2af7651916cd43dd8448eb211c80319c-d7ad6b7169203331-01")]),
        ("w3c-zero-trace", [("traceparent", "00-00000000000000000000000000000000-d7ad6b7169203331-01")]),
        ("w3c-uppercase", [("traceparent", "00-2AF7651916CD43DD8448EB211C80319C-D7AD6B7169203331-01")]),
        ("b3-short-span", [("b3", "3af7651916cd43dd8448eb211c80319c-d7ad6b71-1")])]
for name, hdrs in bads:
    expect("%s: the page is 200" % name, page("ctx-" + name, hdrs), "")
for name, hdrs in bads:
    wait_until(lambda: len(by_rid("ctx-" + name)) >= 6, 6)
    S = by_rid("ctx-" + name)
    ids = {s["traceId"] for s in S}
    sent = hdrs[0][1]
    expect("%s: treated as absent: a new trace (one id, not the malformed one), root without parent" % name,
           len(S) >= 6 and len(ids) == 1 and not any(i in sent.lower() for i in ids) and
           "parentId" not in root(S), "%r" % [(s["traceId"], s.get("parentId")) for s in S])
time.sleep(2.5)   # more than a flush period after the unsampled pages
for name in ("w3c-unsampled", "b3-unsampled", "b3-deny-only"):
    S = by_rid("ctx-" + name)
    expect("%s: the caller's 'not sampled' wins over sampling = 100: no spans" % name, not S, "%d spans" % len(S))
PY

# hostile bytes in a header that ends up in a tag (http1 lets VCHAR, SP, HTAB and obs-text through)
ua=$'evil "ua" \\ \t caf\xc3\xa9 \xff end'
expect_eq "a user agent with quotes, backslash, tab, UTF-8 and a byte that is not UTF-8: 200" 200 \
	"$(code -A "$ua" -H 'x-request-id: ctx-hostile' "http://127.0.0.1:$GW/productpage")"
py <<'PY'
import json, os, urllib.request
from rawhttp import expect, wait_until
ZIP = int(os.environ["ZIP"])
def spans():
    with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/spans" % ZIP, timeout=5) as r:
        return json.loads(r.read())
wait_until(lambda: sum(s["tags"].get("guid:x-request-id") == "ctx-hostile" for s in spans()) >= 6, 6)
S = [s for s in spans() if s["tags"].get("guid:x-request-id") == "ctx-hostile"]
uas = {s["tags"].get("user_agent") for s in S}
with urllib.request.urlopen("http://127.0.0.1:%d/bad" % ZIP, timeout=5) as r:
    nbad = int(r.read())
expect("the collector never rejected a post (every batch was a valid JSON array of spans)", nbad == 0,
       "%d rejected posts, see zipkin.py's log" % nbad)
expect("hostile user agent in %d spans: JSON-escaped, valid UTF-8 kept, the bad byte as U+FFFD" % len(S),
       len(S) >= 6 and uas == {'evil "ua" \\ \t caf\u00e9 \ufffd end'}, "%r" % uas)
PY

# ---------------------------------------------------------------- metrics
sent=$(metric_sum "$PP_ADM" '^mesh_trace_spans_sent_total ')
dropped=$(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')
if [ "$sent" -gt 10 ] && [ "$dropped" -eq 0 ]; then pass "productpage's sidecar: mesh_trace_spans_sent_total $sent, dropped 0"
else fail "trace metrics" "sent=$sent dropped=$dropped"; fi
expect_match "/metrics has the trace counters with TYPE lines" \
	'# TYPE mesh_trace_spans_dropped_total counter' "$(body "http://127.0.0.1:$RA_ADM/metrics")"

# ---------------------------------------------------------------- kept-alive posts
# zipkin.py answers HTTP/1.1 with a Content-Length: each proxy keeps its connection
read -r posts conns _ <<<"$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/conns")"
if [ "${posts:-0}" -gt "${conns:-0}" ] && [ "${conns:-0}" -ge 1 ]; then
	pass "posts reuse kept-alive connections: $posts posts on $conns connections"
else fail "kept-alive posts" "posts=$posts connections=$conns"; fi
# the collector closes kept connections just as a batch goes out: it goes again on a new one
failed0=$(metric_sum "$PP_ADM" '^mesh_trace_batches_failed_total ')
drop0=$(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')
curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$ZIP/flaky/on"
bad=0
for i in $(seq 1 6); do
	[ "$(code -H "x-request-id: flaky-$i" "http://127.0.0.1:$GW/productpage")" = 200 ] || bad=$((bad + 1))
	sleep 0.4   # a batch per second per proxy: several posts on a connection
done
expect_eq "flaky collector: six pages, all 200" 0 "$bad"
n=0
for i in $(seq 1 40); do
	n=$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c '
import json,sys
print(sum(1 for s in json.load(sys.stdin) if s["tags"].get("guid:x-request-id", "").startswith("flaky-")))')
	[ "$n" -ge 36 ] && break
	sleep 0.2
done
read -r _ _ ncut <<<"$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/conns")"
curl -s --max-time 5 -o /dev/null "http://127.0.0.1:$ZIP/flaky/off"
if [ "$n" -ge 36 ] && [ "${ncut:-0}" -ge 1 ] && [ "$(metric_sum "$PP_ADM" '^mesh_trace_batches_failed_total ')" = "$failed0" ] &&
	[ "$(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')" = "$drop0" ]; then
	pass "flaky collector: $ncut posts cut on kept connections, each sent again on a new one: all $n spans arrived, none failed or dropped"
else
	fail "flaky collector" "spans=$n (want >= 36) cut=$ncut failed $failed0 -> $(metric_sum "$PP_ADM" '^mesh_trace_batches_failed_total ') dropped $drop0 -> $(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')"
fi

reload_all() { # WANT-REGEX in productpage's /config
	local p i
	for p in "${BOOKINFO_PROXIES[@]}"; do kill -HUP "${PROXY_PID[$p]}"; done
	for i in $(seq 1 50); do
		curl -s --max-time 2 "http://127.0.0.1:$PP_ADM/config" | grep -Eq -- "$1" && return 0
		sleep 0.1
	done
	return 1
}

# ---------------------------------------------------------------- sampling = 0
sed -i 's/^sampling *= *100/sampling = 0/' "$ART/mesh.ini"
reload_all '^sampling *= *0$' && pass "sampling = 0 applied by SIGHUP" || fail "reload" "sampling = 0 not in /config"
sleep 1.5   # let the last batches go out
before=$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
gw_before=$(metric_sum "$GW_ADM" '^mesh_trace_spans_total ')
bad=0
for i in $(seq 1 10); do
	[ "$(code -H "x-request-id: zero-$i" "http://127.0.0.1:$GW/productpage")" = 200 ] || bad=$((bad + 1))
done
expect_eq "sampling = 0: ten pages, all 200" 0 "$bad"
sleep 2.5
after=$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
expect_eq "sampling = 0: the collector receives nothing" "$before" "$after"
expect_eq "sampling = 0: the gateway records no span" "$gw_before" "$(metric_sum "$GW_ADM" '^mesh_trace_spans_total ')"
# a caller's "sampled" still wins (and proves the headers are still passed on, app to app)
c=$(code -H 'x-request-id: zero-forced' -H 'traceparent: 00-7af7651916cd43dd8448eb211c80319c-97ad6b7169203331-01' \
	"http://127.0.0.1:$GW/productpage")
expect_eq "sampling = 0 with an incoming sampled traceparent: 200" 200 "$c"
n=0
for i in $(seq 1 40); do
	n=$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c '
import json,sys
print(sum(1 for s in json.load(sys.stdin) if s["traceId"] == "7af7651916cd43dd8448eb211c80319c"))')
	[ "$n" -ge 6 ] && break
	sleep 0.2
done
if [ "$n" -ge 6 ]; then pass "sampling = 0: an incoming sampled decision is honoured across every hop ($n spans)"
else fail "incoming sampled under sampling = 0" "$n spans of trace 7af765..."; fi

# ---------------------------------------------------------------- a dead collector
sed -i -e 's/^sampling *= *0$/sampling = 100/' -e "s/^collector *= *127\.0\.0\.1:$ZIP/collector = 127.0.0.1:$DEAD/" "$ART/mesh.ini"
reload_all "^collector *= *127\\.0\\.0\\.1:$DEAD" && pass "collector moved to a dead port by SIGHUP" || fail "reload" "dead collector not in /config"
sleep 1.5
sent0=$(metric_sum "$PP_ADM" '^mesh_trace_spans_sent_total ')
drop0=$(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')
failed0=$(metric_sum "$PP_ADM" '^mesh_trace_batches_failed_total ')
count0=$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
bad=0
for i in $(seq 1 10); do
	[ "$(code -H "x-request-id: dead-$i" "http://127.0.0.1:$GW/productpage")" = 200 ] || bad=$((bad + 1))
done
expect_eq "dead collector: ten pages, all 200" 0 "$bad"
drop1=$drop0
for i in $(seq 1 30); do
	drop1=$(metric_sum "$PP_ADM" '^mesh_trace_spans_dropped_total ')
	[ "$drop1" -ge $((drop0 + 30)) ] && break
	sleep 0.2
done
sent1=$(metric_sum "$PP_ADM" '^mesh_trace_spans_sent_total ')
failed1=$(metric_sum "$PP_ADM" '^mesh_trace_batches_failed_total ')
if [ "$drop1" -ge $((drop0 + 30)) ] && [ "$sent1" -eq "$sent0" ] && [ "$failed1" -gt "$failed0" ]; then
	pass "dead collector: productpage's 30 spans counted as dropped ($drop0 -> $drop1), none sent, failed batches $failed0 -> $failed1"
else
	fail "dead collector counters" "dropped $drop0 -> $drop1, sent $sent0 -> $sent1, failed $failed0 -> $failed1"
fi
expect_eq "dead collector: the old collector got nothing more" "$count0" \
	"$(curl -s --max-time 5 "http://127.0.0.1:$ZIP/api/v2/spans" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
expect_match "dead collector: the proxy says so once in its log" 'trace collector 127\.0\.0\.1:[0-9]+: .*dropping' \
	"$(cat "$ART/proxy-productpage-v1.log")"
for p in "${BOOKINFO_PROXIES[@]}"; do
	_alive "${PROXY_PID[$p]}" || fail "proxy $p" "exited"
done
pass "every proxy still running"
