#!/usr/bin/env bash
# 08_admin: the admin listener (/ready, /config, /metrics with Istio's names and
# labels) and the access log (text to a file; JSON when configured).
. "$(dirname "$0")/lib.sh"

ports B1 OUT ADM IN_B OUT_B ADM_B OUT_R ADM_R
export ADM ADM_B

cat >"$ART/mesh.ini" <<EOF
[mesh]
domain = cluster.local

[service reviews]
port = 9080
endpoint = 127.0.0.1:$IN_B version=v2
EOF

# client sidecar: text access log to a file
cat >"$ART/client.ini" <<EOF
[workload]
service = productpage
namespace = default
labels = app=productpage, version=v1

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
header_timeout = 7s
drain_timeout = 1s

[log]
access_log = $ART/access-client.log

[control]
mesh = mesh.ini
EOF

# reviews sidecar: JSON access log to a file
cat >"$ART/reviews.ini" <<EOF
[workload]
service = reviews
namespace = default
labels = app=reviews, version=v2
app = 127.0.0.1:$B1

[listen]
inbound = 127.0.0.1:$IN_B
outbound = 127.0.0.1:$OUT_B
admin = 127.0.0.1:$ADM_B

[proxy]
drain_timeout = 1s

[log]
access_log = $ART/access-reviews.json
access_log_format = json

[control]
mesh = mesh.ini
EOF

start_backend reviews "$B1"
start_mesh client proxy -c "$ART/client.ini"
start_mesh reviews proxy -c "$ART/reviews.ini"
if ! wait_ready "$ADM" 10 || ! wait_ready "$ADM_B" 10; then
	fail "proxies start" "admin /ready did not answer 200"
	exit 1
fi

# ---- /ready
expect_eq "/ready answers 200" 200 "$(code "http://127.0.0.1:$ADM/ready")"

# ---- /config: the effective config as INI
cfg=$(body "http://127.0.0.1:$ADM/config")
printf '%s\n' "$cfg" >"$ART/config-client.txt"
expect_match "/config has the [workload] section" '^\[workload\]' "$cfg"
expect_match "/config has the workload name" '^service *= *productpage' "$cfg"
expect_match "/config shows a configured value (header_timeout = 7s)" '^header_timeout *= *(7s|7000ms)' "$cfg"
expect_match "/config shows a default (idle_timeout)" '^idle_timeout *= *[0-9]+' "$cfg"
expect_match "/config includes the mesh part (service reviews)" '^\[service reviews\]' "$cfg"
expect_match "/config includes the endpoint" "^endpoint *= *127\.0\.0\.1:$IN_B" "$cfg"
# ---- traffic: 5 x 200 and 2 x 404 (from the backend) through both proxies
for i in 1 2 3 4 5; do curl -s -o /dev/null --max-time 5 -H 'Host: reviews:9080' "http://127.0.0.1:$OUT/?i=$i"; done
for i in 1 2; do curl -s -o /dev/null --max-time 5 -H 'Host: reviews' "http://127.0.0.1:$OUT/nope$i"; done
curl -s -o /dev/null --max-time 5 -X POST --data-binary 'twelve bytes' -H 'Host: reviews' "http://127.0.0.1:$OUT/echo"

py <<'PY'
import re, urllib.request
from rawhttp import *
ADM, ADM_B = env_port("ADM"), env_port("ADM_B")

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        ctype = r.headers.get("content-type", "")
        text = r.read().decode()
    samples, badlines = [], []
    for ln in text.splitlines():
        if not ln or ln.startswith("#"):
            continue
        m = LINE.match(ln)
        if not m:
            badlines.append(ln)
            continue
        samples.append((m.group(1), dict(LABEL.findall(m.group(3) or "")), float(m.group(4))))
    return ctype, text, samples, badlines

for who, port, reporter in (("client", ADM, "source"), ("reviews", ADM_B, "destination")):
    ctype, text, samples, badlines = scrape(port)
    open("%s/metrics-%s.txt" % (__import__("os").environ["ART"], who), "w").write(text)
    expect("%s /metrics is Prometheus text" % who, ctype.startswith("text/plain") and not badlines,
           "content-type %r, unparsable lines %r" % (ctype, badlines[:3]))
    req = [s for s in samples if s[0] == "istio_requests_total"]
    need = {"reporter", "source_workload", "destination_service", "destination_workload", "destination_version", "response_code"}
    missing = need - set(req[0][1]) if req else need
    expect("%s istio_requests_total has labels %s" % (who, ",".join(sorted(need))), req and not missing,
           "missing %r in %r" % (missing, req[:1]))
    ok200 = sum(v for n, l, v in req if l.get("response_code") == "200" and "reviews" in l.get("destination_service", "")
                and l.get("reporter") == reporter)
    ok404 = sum(v for n, l, v in req if l.get("response_code") == "404" and l.get("reporter") == reporter)
    expect("%s counts 6 x 200 and 2 x 404 for reviews, reporter=%s" % (who, reporter), ok200 == 6 and ok404 == 2,
           "200: %r, 404: %r in %r" % (ok200, ok404, req))
    if req:
        l = req[0][1]
        expect("%s labels name the workloads (%s -> %s %s)" % (who, l.get("source_workload"), l.get("destination_workload"),
                                                               l.get("destination_version")),
               # workload names are <service>-<version> (docs/proxy.md)
               l.get("source_workload") in ("productpage", "productpage-v1")
               and l.get("destination_workload") in ("reviews", "reviews-v2") and l.get("destination_version") == "v2",
               "%r" % l)
    for h in ("istio_request_duration_milliseconds", "istio_request_bytes", "istio_response_bytes"):
        buckets = [s for s in samples if s[0] == h + "_bucket"]
        counts = [s for s in samples if s[0] == h + "_count"]
        sums = [s for s in samples if s[0] == h + "_sum"]
        inf = sum(v for n, l, v in buckets if l.get("le") == "+Inf")
        mono = True
        series = {}
        for n, l, v in buckets:
            key = tuple(sorted((k, x) for k, x in l.items() if k != "le"))
            series.setdefault(key, []).append((float("inf") if l["le"] == "+Inf" else float(l["le"]), v))
        for key, bs in series.items():
            vals = [v for _, v in sorted(bs)]
            mono &= vals == sorted(vals)
        expect("%s %s histogram: buckets cumulative, +Inf == _count == 8" % (who, h),
               buckets and counts and sums and mono and inf == sum(v for _, _, v in counts) == 8,
               "buckets %d, +Inf %r, count %r, monotonic %s" % (len(buckets), inf, [v for _, _, v in counts], mono))
    rb = sum(v for n, l, v in samples if n == "istio_request_bytes_sum")
    expect("%s istio_request_bytes_sum counts the 12-byte POST body" % who, rb >= 12, "sum %r" % rb)
PY

# ---- access logs: one line per request
for i in $(seq 1 30); do
	n=$(cat "$ART/access-client.log" 2>/dev/null | wc -l)
	m=$(cat "$ART/access-reviews.json" 2>/dev/null | wc -l)
	[ "$n" -ge 8 ] && [ "$m" -ge 8 ] && break
	sleep 0.1
done
expect_eq "text access log: one line per request" 8 "$n"
if [ -f "$ART/access-client.log" ]; then
	expect_match "text access log names method, path and status" '(GET|"GET).*/nope1.* 404' "$(grep nope1 "$ART/access-client.log")"
	if grep -q '^{' "$ART/access-client.log"; then fail "text access log is text" "$(head -1 "$ART/access-client.log")"
	else pass "text access log is not JSON by default"; fi
fi
py <<'PY'
import json, os
from rawhttp import *
path = os.environ["ART"] + "/access-reviews.json"
try:
    lines = open(path).read().splitlines()
except OSError as e:
    lines = []
    bad("JSON access log exists", repr(e))
objs, errs = [], []
for ln in lines:
    try:
        objs.append(json.loads(ln))
    except ValueError as e:
        errs.append((ln[:100], str(e)))
expect("JSON access log: 8 lines, each valid JSON", len(lines) == 8 and not errs and all(isinstance(o, dict) for o in objs),
       "%d lines, errors %r" % (len(lines), errs[:2]))
flat = [" ".join(str(v) for v in o.values()) for o in objs]
expect("JSON access log lines carry path and status", any("/nope1" in f and "404" in f for f in flat)
       and sum("200" in f for f in flat) >= 6, "%r" % objs[:2])
PY
# ---- last, since its request shows in the reviews proxy's metrics and logs:
# it is INI that mesh itself loads: the same text, listeners moved to fresh ports
sed -e "s/127\.0\.0\.1:$OUT\b/127.0.0.1:$OUT_R/" -e "s/127\.0\.0\.1:$ADM\b/127.0.0.1:$ADM_R/" \
	"$ART/config-client.txt" >"$ART/config-roundtrip.ini"
start_mesh roundtrip proxy -c "$ART/config-roundtrip.ini"
if wait_ready "$ADM_R" 10 && [ "$(body "http://127.0.0.1:$OUT_R/" -H 'Host: reviews')" = reviews ]; then
	pass "/config output loads back as a working config"
else
	fail "/config output loads back" "$(tail -3 "$ART/roundtrip.log" 2>/dev/null)"
fi
stop "$MESH_PID" 5
exit 0
