#!/usr/bin/env bash
# 45_demo: `mesh demo`, the whole Bookinfo lab in one command: the embedded
# files equal conf/bookinfo; it starts, serves the page with stars and metrics,
# stops cleanly on SIGINT (exit 0, every child gone); a port in use fails fast;
# the binary alone in an empty directory works; a dead app is reported (exit 1).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/demo.sh"

# ---- the embedded files are conf/bookinfo's (with the default ports), run
# by the controller: `mesh = mesh.ini` becomes `controller = ...`, and the mesh
# files gain a [controller] section for `mesh up`
out=$("$MESH" demo --config-only --dir "$ART/conf-only" 2>&1); rc=$?
expect_eq "--config-only exits 0" 0 "$rc"
drift=
for f in "$E2E"/../../conf/bookinfo/*.ini; do
	n=$(basename "$f")
	case $n in
	mesh*) cmp -s "$f" <(sed '/^; added by `mesh demo`/,$d' "$ART/conf-only/$n" | grep -v '^collector = 127.0.0.1:20001 ' \
		| sed '$d') || drift="$drift $n" ;;
	*) cmp -s <(grep -v '^mesh = mesh.ini$' "$f") <(grep -v '^controller = 127.0.0.1:15010 ' "$ART/conf-only/$n") \
		|| drift="$drift $n" ;;
	esac
done
expect_eq "the demo's INI files are conf/bookinfo/*.ini, run by the controller" "" "$drift"
expect_match "sidecars get their mesh part from mesh up" "^controller = 127.0.0.1:15010 " "$(cat "$ART/conf-only/reviews-v2.ini")"
check "mesh check: the demo's mesh.ini with [controller]" "$MESH" check -c "$ART/conf-only/mesh.ini"
check "mesh check: a demo sidecar" "$MESH" check -c "$ART/conf-only/productpage-v1.ini"
check "--config-only made a CA" test -s "$ART/conf-only/ca/root.crt"

# ---- the demo's ports: DEMO_NPORTS consecutive free ones from our block
demo_ports
BASE=$DEMO_BASE

# children_gone RUNDIR : every pid in RUNDIR/pids but the demo's has exited
children_gone() {
	local name pid left=
	while read -r name pid; do
		[ "$name" = demo ] && continue
		_alive "$pid" && left="$left $name($pid)"
	done <"$1/pids"
	echo "$left"
}

# ---- a port in use: fails at once, naming it
bg python3 -c 'import socket,time
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", '"$((BASE + 2))"')); s.listen(1); time.sleep(60)'
BUSY_PID=$BG_PID
wait_port $((BASE + 2)) 5
out=$(timeout 20 "$MESH" demo --dir "$ART/busy" --port-base "$BASE" 2>&1); rc=$?
expect_eq "a port in use: exit 1" 1 "$rc"
expect_match "a port in use is named, with what to do" "port $((BASE + 2)) \(the gateway's outbound listener\).*--port-base" "$(printf '%s' "$out" | tr '\n' ' ')"
check "a port in use: nothing started (no run directory)" test ! -e "$ART/busy/pids"
kill "$BUSY_PID" 2>/dev/null; wait "$BUSY_PID" 2>/dev/null

# ---- start, use, SIGINT
RUN=$ART/run
start_mesh demo demo --dir "$RUN" --port-base "$BASE" --timeout 60
DEMO=$MESH_PID
if wait_demo "$ART/demo.log" "$DEMO"; then pass "demo ready"; else fail "demo ready" "no 'mesh demo: ready' line"; exit 1; fi
MESH_LOGS+=("$RUN"/logs/*.log)
expect_match "banner names the page" "http://localhost:$GW/productpage" "$(cat "$ART/demo.log")"
expect_match "banner names the Lab 2 step" "cp $RUN/mesh-lab2.ini $RUN/mesh.ini" "$(cat "$ART/demo.log")"
expect_match "banner names the dashboard" "http://127.0.0.1:$DASH/" "$(cat "$ART/demo.log")"
check "the dashboard (in mesh up) serves its page" curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$DASH/"
expect_match "banner names proxy-status" "proxy-status --admin 127.0.0.1:$CTL_ADM" "$(cat "$ART/demo.log")"
st=$("$MESH" proxy-status --admin "127.0.0.1:$CTL_ADM")
expect_eq "proxy-status: 7 sidecars registered" 7 "$(printf '%s\n' "$st" | grep -c 'spiffe://cluster.local/ns/default/sa/bookinfo-')"
title=$(body "http://127.0.0.1:$GW/productpage" | grep -o '<title>.*</title>')
expect_eq "productpage title through the gateway" "<title>Simple Bookstore App</title>" "$title"
stars=
for i in 1 2 3 4 5 6; do stars="$stars $(body "http://127.0.0.1:$GW/productpage" | grep -c glyphicon-star)"; done
if [[ " $stars " == *" 0 "* && " $stars " == *" 10 "* ]]; then pass "pages with no stars (v1) and with 10 (v2, v3):$stars"; else fail "stars: 0 and 10" "$stars"; fi
expect_match "productpage sidecar metrics" 'istio_requests_total\{' "$(body "http://127.0.0.1:$PP_ADM/metrics")"
# those first 7 pages, sent right after `ready` and maybe before the dashboard's first
# scrape of the gateway, are on its graph (the proxies started after the dashboard)
gw_pages() {
	body "http://127.0.0.1:$DASH/api/graph?window=300" | python3 -c 'import json, sys
print(int(sum(e["requests"] for e in json.load(sys.stdin)["edges"] if e["source"].startswith("bookinfo-gateway"))))' 2>/dev/null
}
for ((i = 0; i < 60; i++)); do [ "$(gw_pages)" -ge 7 ] 2>/dev/null && break; sleep 0.2; done
n=$(gw_pages)
if [ "${n:-0}" -ge 7 ] 2>/dev/null; then pass "dashboard graph: the demo's first 7 pages are counted ($n)"; else fail "first pages" "gateway edges hold ${n:-none} requests, want >= 7"; fi
expect_match "reviews v2 calls ratings over mTLS" 'destination_app="ratings".*mutual_tls|mutual_tls.*destination_app="ratings"' \
	"$(body "http://127.0.0.1:$R2_ADM/metrics" | grep istio_requests_total)"
check "gateway /ready" curl -sf -o /dev/null --max-time 5 "http://127.0.0.1:$GW_ADM/ready"
out=$("$MESH" tls-check productpage.default -c "$RUN/mesh.ini" 2>&1)
expect_match "tls-check against the demo's mesh.ini" 'OK' "$out"
# Lab 2 as the banner says: copy the file, the controller pushes it (past its warm-up)
cp "$RUN/mesh-lab2.ini" "$RUN/mesh.ini"
jason() { body "http://127.0.0.1:$GW/productpage" -H 'end-user: jason' | grep -c 'color="black"'; }
for ((i = 0; i < 150; i++)); do [ "$(jason)" -gt 0 ] && [ "$(jason)" -gt 0 ] && break; sleep 0.1; done
js=
for i in 1 2 3 4 5 6; do js="$js $(jason)"; done
expect_eq "Lab 2 live: jason always gets v2's black stars, no restart" " 2 2 2 2 2 2" "$js"
# the proxies' spans reach the dashboard in mesh up (collector set by the demo, sampling 100)
for ((i = 0; i < 50; i++)); do
	tr=$(body "http://127.0.0.1:$DASH/api/traces?service=productpage&limit=5")
	[[ $tr == *'"trace_id"'* ]] && break
	sleep 0.2
done
expect_match "traces of the Bookinfo pages in the dashboard" '"trace_id"' "$tr"
svc=$(body "http://127.0.0.1:$DASH/api/services")
expect_match "dashboard services from the registry" '"name":"reviews"' "$svc"
kill -INT "$DEMO"
for ((i = 0; i < 150; i++)); do _alive "$DEMO" || break; sleep 0.1; done
wait "$DEMO"; rc=$?
expect_eq "SIGINT: the demo exits 0" 0 "$rc"
expect_eq "SIGINT: every child is gone" "" "$(children_gone "$RUN")"
expect_match "SIGINT: it says it stopped" '^mesh demo: stopped' "$(tail -1 "$ART/demo.log")"

# ---- the binary alone in an empty directory (default run dir under TMPDIR); a dead app
ALONE=$(mktemp -d "$ART/alone.XXXXXX")
cp "$MESH" "$ALONE/mesh"
mkdir -p "$ALONE/tmp"
(cd "$ALONE" && TMPDIR=$ALONE/tmp exec ./mesh demo --port-base "$BASE" --timeout 60) >>"$ART/demo-alone.log" 2>&1 &
DEMO=$!
PIDS+=("$DEMO"); MESH_LOGS+=("$ART/demo-alone.log")
RUN=$ALONE/tmp/mesh-demo-$(id -u)
if wait_demo "$ART/demo-alone.log" "$DEMO"; then pass "alone: ready"; else fail "alone: ready" "no 'mesh demo: ready' line"; exit 1; fi
MESH_LOGS+=("$RUN"/logs/*.log)
title=$(body "http://127.0.0.1:$GW/productpage" | grep -o '<title>.*</title>')
expect_eq "alone: productpage title" "<title>Simple Bookstore App</title>" "$title"
app=$(awk '$1 == "app-details-v1" { print $2 }' "$RUN/pids")
kill -KILL "$app"
for ((i = 0; i < 150; i++)); do _alive "$DEMO" || break; sleep 0.1; done
wait "$DEMO"; rc=$?
expect_eq "a dead app: the demo exits 1" 1 "$rc"
expect_match "a dead app is named with its log" "app details-v1 was killed by signal 9.*$RUN/logs/app-details-v1.log" "$(cat "$ART/demo-alone.log")"
expect_eq "a dead app: every other child is gone" "" "$(children_gone "$RUN")"
