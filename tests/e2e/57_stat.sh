#!/usr/bin/env bash
# 57_stat: `mesh stat` and `mesh edges` (issue #6, linkerd viz stat / edges)
# against a live mesh: `mesh up` (controller + CA), hello v1 and v2 behind
# mTLS sidecars, a client-only sidecar, a plaintext caller from outside the
# mesh and a mesh.ini endpoint without a proxy; `mesh dashboard` (1 s scrapes)
# as the data source. Checked: rows per workload and per service, MESHED,
# SUCCESS with a known share of 500s, RPS, p50/p95/p99 against a known delay,
# TCP_CONN (a held connection counts, then leaves), --from / --to, edges with
# both identities and SECURED vs plaintext, the proxies' istio_tcp_* counters,
# -c mesh.ini ([dashboard] listen, token_file, off), a dashboard that wants a
# token, usage errors (2) and an unreachable dashboard (1, saying what to run).
. "$(dirname "$0")/lib.sh"

ports CAP CTL CADM A1 A2 I1 I2 D1 D2 O1 O2 COUT CADMP DASH LEG DASH2

lab_ca

cat >"$ART/mesh.ini" <<EOF
[controller]
ca     = ca/ca.ini
listen = 127.0.0.1:$CTL
admin  = 127.0.0.1:$CADM
lease_ttl = 5s   ; the controller's warm-up is max(lease_ttl, 8 s): shorter waits for SYNCED

[service hello]
port = 80

[destination hello]
subset.v1 = version=v1
subset.v2 = version=v2

[route hello/slow]
match.path = prefix:/delay
to         = hello/v2

[route hello/rest]
to = hello/v1

; a workload without a proxy: MESHED 0/1
[service legacy]
port     = 80
endpoint = 127.0.0.1:$LEG version=v1
EOF

lab_proxy_ini v1 v1 "$A1" "$I1" "$D1" "$O1"
lab_proxy_ini v2 v2 "$A2" "$I2" "$D2" "$O2"
lab_client_ini "$COUT" "$CADMP"

cd "$ART" || exit 1
start_backend v1 "$A1"
start_backend v2 "$A2"
start_mesh up up -c mesh.ini --dashboard off   # the dashboard runs alone below, scraping every second
wait_port "$CTL" 15 || { fail "up" "the controller does not listen on $CTL"; exit 1; }
for n in v1 v2 client; do start_mesh "$n" proxy -c "$n.ini"; done
for p in $D1 $D2 $CADMP; do wait_ready "$p" 40 || { fail "ready" "proxy with admin $p not ready"; exit 1; }; done
start_mesh dashboard dashboard -c mesh.ini --listen "127.0.0.1:$DASH" --interval 1s
wait_http "http://127.0.0.1:$DASH/ready" 10 || { fail "dashboard" "not answering on $DASH"; exit 1; }
API=http://127.0.0.1:$DASH
STAT=("$MESH" stat --dashboard "127.0.0.1:$DASH")
EDGES=("$MESH" edges --dashboard "127.0.0.1:$DASH")

all_scraped() {
	curl -s --max-time 5 "$API/api/services" | python3 -c '
import json, sys
d = json.load(sys.stdin)
ps = [p for s in d["services"] for p in s["proxies"]] + d["clients"]
sys.exit(0 if len(ps) == 3 and all(p["scrape"] == "ok" and p["status"] == "SYNCED" for p in ps) else 1)'
}
wait_until 30 all_scraped && pass "3 proxies registered, synced and scraped" || { fail "scrape" "$(curl -s "$API/api/services")"; exit 1; }

# ---------------------------------------------------------------- traffic
urls() { local i; for ((i = 0; i < $2; i++)); do printf 'http://hello%s ' "$1"; done; }
# through the client's sidecar (mTLS): 90 x / and 10 x /status/500 to v1, 20 x /delay?ms=30 to v2
# shellcheck disable=SC2046
curl -s --max-time 60 -x "127.0.0.1:$COUT" -w '\ncode=%{http_code}\n' $(urls / 90) $(urls /status/500 10) \
	$(urls '/delay?ms=30' 20) >client.out
# from outside the mesh: plaintext straight to v1's inbound port (PERMISSIVE), 20 requests ...
# shellcheck disable=SC2046
curl -s --max-time 60 -H 'Host: hello' -w '\ncode=%{http_code}\n' \
	$(for i in $(seq 1 20); do printf 'http://127.0.0.1:%s/ ' "$I1"; done) >outside.out
# ... and one more on a connection that stays open
exec 7<>"/dev/tcp/127.0.0.1/$I1"
printf 'GET / HTTP/1.1\r\nHost: hello\r\n\r\n' >&7
read -r -t 5 held <&7
expect_eq "traffic: 90 + 20 x 200 and 10 x 500 through the client, 20 + 1 from outside" "110 10 20 HTTP/1.1 200 OK" \
	"$(grep -c '^code=200$' client.out) $(grep -c '^code=500$' client.out) $(grep -c '^code=200$' outside.out) ${held%$'\r'}"
sleep 2.5   # two more scrapes

# ---------------------------------------------------------------- mesh stat deploy
"${STAT[@]}" >stat.out 2>stat.err; rc=$?
cat stat.out
expect_eq "mesh stat: exit 0, nothing on stderr" "0 " "$rc $(cat stat.err)"
expect_match "header" "^NAME +MESHED +SUCCESS +RPS +LATENCY_P50 +LATENCY_P95 +LATENCY_P99 +TCP_CONN$" "$(head -1 stat.out)"
expect_eq "one row per workload (registry and mesh.ini)" "client hello-v1 hello-v2 legacy-v1" "$(tail -n +2 stat.out | awk '{print $1}' | xargs)"
row() { grep "^$1 " "$2"; }
col() { row "$1" "$3" | awk -v c="$2" '{print $c}'; }
# hello-v1 received 90 + 10 (500) from the client and 21 from outside: 111/121
expect_eq "hello-v1: meshed 1/1, success 111/121" "1/1 91.74%" "$(col hello-v1 2 stat.out) $(col hello-v1 3 stat.out)"
expect_eq "hello-v2: meshed 1/1, success 100%" "1/1 100.00%" "$(col hello-v2 2 stat.out) $(col hello-v2 3 stat.out)"
expect_eq "legacy-v1: an endpoint without a proxy, no traffic" "0/1 - - - - - 0" "$(row legacy-v1 stat.out | awk '{print $2,$3,$4,$5,$6,$7,$8}')"
expect_eq "client: a client-only proxy, no requests received" "1/1 -" "$(col client 2 stat.out) $(col client 3 stat.out)"
py <<'PY'
from rawhttp import expect
rows = {l.split()[0]: l.split() for l in open("stat.out").read().splitlines()[1:]}
def ms(v): return float(v[:-2])
for name in ("hello-v1", "hello-v2"):
    r = rows[name]
    rps = float(r[3][:-3])
    expect(f"{name}: rps > 0 over the window ({r[3]})", rps > 0, r)
    p50, p95, p99 = ms(r[4]), ms(r[5]), ms(r[6])
    expect(f"{name}: p50 <= p95 <= p99 ({r[4]} {r[5]} {r[6]})", 0 < p50 <= p95 <= p99, r)
# v2's 20 requests waited 30 ms: in Istio's (25, 50] bucket (one slow first one may not be)
v2 = rows["hello-v2"]
expect(f"hello-v2: p50 inside the (25, 50] bucket of 30 ms requests ({v2[4]})", 25 < ms(v2[4]) < 50, v2)
expect(f"hello-v1: p50 under 25 ms ({rows['hello-v1'][4]})", ms(rows["hello-v1"][4]) < 25, rows["hello-v1"])
PY
tcp_v1=$(col hello-v1 8 stat.out)
if [ "${tcp_v1:-0}" -ge 2 ]; then pass "hello-v1: TCP_CONN $tcp_v1 (the client's pooled mTLS connection and the held one)"; else fail "tcp" "hello-v1 TCP_CONN '$tcp_v1'"; fi
exec 7>&-
tcp_closed() { "${STAT[@]}" >stat2.out 2>/dev/null && [ "$(col hello-v1 8 stat2.out)" = $((tcp_v1 - 1)) ]; }
wait_until 5 tcp_closed && pass "the held connection closed: TCP_CONN $((tcp_v1 - 1))" || fail "tcp" "$(cat stat2.out)"

# the proxies' own counters behind TCP_CONN: curl's one keep-alive connection and the held one
TCP='istio_tcp_connections_(opened|closed)_total'
expect_eq "v1: plaintext inbound connections: 2 opened, 2 closed" "2 2" \
	"$(metric_sum "$D1" "${TCP/(opened|closed)/opened}\{reporter=\"destination\",.*connection_security_policy=\"none\"") $(metric_sum "$D1" "${TCP/(opened|closed)/closed}\{reporter=\"destination\",.*connection_security_policy=\"none\"")"
expect_match "v1: inbound mTLS connections, with the caller's identity" \
	'istio_tcp_connections_opened_total\{reporter="destination",.*source_principal="spiffe://cluster.local/ns/default/sa/client",.*connection_security_policy="mutual_tls".*request_protocol="tcp"\} [1-9]' \
	"$(curl -s "http://127.0.0.1:$D1/metrics")"
expect_match "client: upstream connections per destination version" \
	'istio_tcp_connections_opened_total\{reporter="source",.*destination_workload="hello-v2",.*destination_version="v2",.*connection_security_policy="mutual_tls"' \
	"$(curl -s "http://127.0.0.1:$CADMP/metrics")"

# --window: the traffic ended seconds ago, so the last second holds none of it
"${STAT[@]}" --window 1s >w1.out 2>&1
expect_eq "--window 1s: no requests in the last second" "1/1 - -" "$(col hello-v1 2 w1.out) $(col hello-v1 3 w1.out) $(col hello-v1 4 w1.out)"

# ---------------------------------------------------------------- --from / --to, svc
"${STAT[@]}" deploy --from client >from.out 2>&1
cat from.out
expect_eq "--from client: its destinations only" "hello-v1 hello-v2" "$(tail -n +2 from.out | awk '{print $1}' | xargs)"
expect_eq "--from client: hello-v1 90%, hello-v2 100%" "90.00% 100.00%" "$(col hello-v1 3 from.out) $(col hello-v2 3 from.out)"
expect_match "--from client: the client's connections to each" "^[1-9]" "$(col hello-v1 8 from.out) $(col hello-v2 8 from.out)"
"${STAT[@]}" --to hello-v1 >to.out 2>&1
cat to.out
expect_eq "--to hello-v1: its callers" "client unknown" "$(tail -n +2 to.out | awk '{print $1}' | xargs)"
expect_eq "--to hello-v1: client 90%, unknown 100% (MESHED -)" "90.00% 100.00% -" "$(col client 3 to.out) $(col unknown 3 to.out) $(col unknown 2 to.out)"
"${STAT[@]}" --to hello >to-svc.out 2>&1
expect_eq "--to hello (a service): both versions' callers" "client unknown" "$(tail -n +2 to-svc.out | awk '{print $1}' | xargs)"
expect_eq "--to hello: client 110/120" "91.67%" "$(col client 3 to-svc.out)"
"${STAT[@]}" svc >svc.out 2>&1
cat svc.out
expect_eq "svc: one row per service" "client hello legacy" "$(tail -n +2 svc.out | awk '{print $1}' | xargs)"
expect_eq "svc hello: 2/2 meshed, 131/141 successful" "2/2 92.91%" "$(col hello 2 svc.out) $(col hello 3 svc.out)"
"${STAT[@]}" --from nobody >none.out 2>&1; rc=$?
expect_eq "--from a name with no traffic: exit 0, says so" "0 no workload matches" "$rc $(cat none.out)"

# ---------------------------------------------------------------- mesh edges
"${EDGES[@]}" >edges.out 2>&1; rc=$?
cat edges.out
expect_eq "edges: exit 0" 0 "$rc"
expect_match "edges: header" "^SRC +DST +SRC_IDENTITY +DST_IDENTITY +SECURED$" "$(head -1 edges.out)"
expect_match "client -> hello-v1: both identities, secured" "^client +hello-v1 +spiffe://cluster.local/ns/default/sa/client +spiffe://cluster.local/ns/default/sa/hello +yes$" "$(cat edges.out)"
expect_match "client -> hello-v2 too" "^client +hello-v2 +spiffe://cluster.local/ns/default/sa/client +spiffe://cluster.local/ns/default/sa/hello +yes$" "$(cat edges.out)"
expect_match "unknown -> hello-v1: plaintext, no identities" "^unknown +hello-v1 +- +- +no \(plaintext, caller outside the mesh\)$" "$(cat edges.out)"
expect_eq "edges: three, and the header" 4 "$(grep -c . edges.out)"
"${EDGES[@]}" svc >edges-svc.out 2>&1
expect_match "edges svc: client -> hello" "^client +hello +spiffe://cluster.local/ns/default/sa/client +spiffe://cluster.local/ns/default/sa/hello +yes$" "$(cat edges-svc.out)"
body "$API/api/edges?by=svc" >edges-svc.json
py <<'PY'
import json
from rawhttp import expect
e = {(x["source"], x["destination"]): x for x in json.load(open("edges-svc.json"))["edges"]}
c, u = e.get(("client", "hello"), {}), e.get(("unknown", "hello"), {})
expect("/api/edges: requests and mtls_requests", c.get("requests") == 120 and c.get("mtls_requests") == 120
       and u.get("requests") == 21 and u.get("mtls_requests") == 0, e)
PY

# ---------------------------------------------------------------- errors
"$MESH" stat --help >help.out; rc=$?
expect_eq "stat --help: exit 0 with the columns" "0 1" "$rc $(grep -c 'LATENCY_P50/P95/P99' help.out)"
"$MESH" stat pods >/dev/null 2>&1; expect_eq "stat pods: usage error" 2 $?
"$MESH" stat --from a --to b >/dev/null 2>&1; expect_eq "--from with --to: usage error" 2 $?
"$MESH" stat --window 0 >/dev/null 2>&1; expect_eq "--window 0: usage error" 2 $?
"$MESH" edges --from a >/dev/null 2>&1; expect_eq "edges --from: usage error" 2 $?
# -c mesh.ini: the address and the token from [dashboard]; a second dashboard that wants a token
echo s3cret >dash.token
{ cat mesh.ini; printf '[dashboard]\nlisten = 127.0.0.1:%s\ntoken_file = dash.token\n' "$DASH2"; } >tok.ini
{ cat mesh.ini; printf '[dashboard]\nlisten = off\n'; } >off.ini
start_mesh dashboard2 dashboard -c tok.ini
wait_port "$DASH2" 10 || fail "dashboard2" "not listening on $DASH2"
msg=$("$MESH" stat --dashboard "127.0.0.1:$DASH2" 2>&1); rc=$?
expect_eq "a dashboard with a token, none given: exit 1" 1 "$rc"
expect_match "... says --token" "wants a token: --token" "$msg"
"$MESH" stat -c tok.ini >tok.out 2>&1; rc=$?
expect_eq "-c tok.ini: its [dashboard] address and token_file: a table" "0 NAME" "$rc $(grep -o '^NAME' tok.out)"
"$MESH" stat --dashboard "127.0.0.1:$DASH2" --token s3cret >tok2.out 2>&1
expect_eq "--token: a table" "NAME" "$(grep -o '^NAME' tok2.out)"
msg=$("$MESH" edges -c off.ini 2>&1); rc=$?
expect_eq "[dashboard] listen = off: exit 1" 1 "$rc"
expect_match "... says what to do" "listen = off: no dashboard to read" "$msg"
ports DEAD
msg=$("$MESH" stat --dashboard "127.0.0.1:$DEAD" 2>&1); rc=$?
expect_eq "no dashboard: exit 1" 1 "$rc"
expect_match "... and what to run" "cannot read the dashboard at 127.0.0.1:$DEAD .*mesh up -c mesh.ini.*mesh dashboard -c mesh.ini" "$(tr '\n' ' ' <<<"$msg")"
exit 0
