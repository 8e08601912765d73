#!/usr/bin/env bash
# 46_controller: the control plane (issue #5). `mesh controller` (beside
# `mesh ca`; 45_demo runs `mesh up`) and proxies that take their mesh part from it: hello v1 (two
# replicas) and v2 register with their certificates and appear in a client's
# snapshot; the seed's canary moves from 80/20 to 50/50 by editing mesh.ini,
# live; an invalid edit changes nothing (file:line in the log, proxy-status
# and `mesh check`); a workload cannot register an identity other than its
# certificate's; a killed replica leaves the snapshots within the lease TTL
# with no failed request (retries + ejection); a draining proxy deregisters
# at once; the controller killed under load fails no request, a proxy
# restarted meanwhile starts from its snapshot_file, and the restarted
# controller rebuilds the registry from the proxies' next polls without
# sending anyone a new snapshot.
. "$(dirname "$0")/lib.sh"

ports CAP CTL CADM A1 A2 A3 I1 I2 I3 D1 D2 D3 O1 O2 O3 COUT CADMP SPOUT SPADM
TTL=3

lab_ca

# mesh_ini W1 W2 : mesh.ini with the canary weights (same length for 80/20 and 50/50)
mesh_ini() {
	cat >"$ART/mesh.ini.new" <<EOF
[controller]
ca        = ca/ca.ini
listen    = 127.0.0.1:$CTL
admin     = 127.0.0.1:$CADM
lease_ttl = ${TTL}s

[service hello]
port = 80

[destination hello]
subset.v1 = version=v1
subset.v2 = version=v2
outlier.consecutive_gateway_errors = 1
outlier.base_ejection_time = 30s
outlier.max_ejection_percent = 100

[route hello/canary]
to       = hello/v1 $1, hello/v2 $2
retries  = 3
retry_on = connect-failure, reset, gateway-error
EOF
	mv "$ART/mesh.ini.new" "$ART/mesh.ini"
}
mesh_ini 80 20

lab_proxy_ini v1a v1 "$A1" "$I1" "$D1" "$O1"
lab_proxy_ini v1b v1 "$A2" "$I2" "$D2" "$O2"
lab_proxy_ini v2 v2 "$A3" "$I3" "$D3" "$O3"
lab_client_ini "$COUT" "$CADMP"
echo "snapshot_file = client.snapshot" >>"$ART/client.ini"
# a workload with the client's certificate that claims to be hello
cat >"$ART/spoof.ini" <<EOF
[workload]
service         = hello
service_account = client
labels  = app=hello, version=v1
app     = 127.0.0.1:$A1
[listen]
inbound  = 127.0.0.1:$SPOUT
admin    = 127.0.0.1:$SPADM
outbound = off
EOF
lab_control client >>"$ART/spoof.ini"

check "mesh check: the controller's mesh.ini" "$MESH" check -c "$ART/mesh.ini"
check "mesh check: a proxy file with controller" "$MESH" check -c "$ART/client.ini"

cd "$ART" || exit 1
start_backend v1a "$A1"
start_backend v1b "$A2"
start_backend v2 "$A3"
start_mesh ca ca -c ca/ca.ini
wait_port "$CAP" 10 || { fail "ca" "the CA does not listen on $CAP"; exit 1; }
start_mesh controller controller -c mesh.ini
UP_PID=$MESH_PID
wait_port "$CTL" 10 || { fail "up" "the controller does not listen on $CTL"; exit 1; }
wait_port "$CADM" 5 || fail "up" "the controller's admin does not listen on $CADM"
PIDS_BY=()
for n in v1a:$D1 v1b:$D2 v2:$D3 client:$CADMP; do
	start_mesh "${n%%:*}" proxy -c "${n%%:*}.ini"
	eval "PID_${n%%:*}=$MESH_PID"
done
for p in $D1 $D2 $D3 $CADMP; do wait_ready "$p" 40 || fail "ready" "proxy with admin $p not ready"; done

status() { "$MESH" proxy-status --admin "127.0.0.1:$CADM"; }
ver_of() { curl -s --max-time 5 "http://127.0.0.1:$1/config" | sed -n 's/^; mesh part: snapshot \([0-9a-f]*\).*/\1/p'; }
all_synced() { [ "$(status | grep -c ' SYNCED ')" -eq "$1" ]; }
# urls N : N copies of the service URL, for one curl that reuses its connection
urls() { local i; for ((i = 0; i < $1; i++)); do printf 'http://hello/ '; done; }
# split N : N requests through the client; prints "v1 v2 other"
split() {
	# shellcheck disable=SC2046
	curl -s --max-time 60 -x "127.0.0.1:$COUT" $(urls "$1") | awk -v n="$1" '
		$0 == "v1a" || $0 == "v1b" { v1++ } $0 == "v2" { v2++ }
		END { printf "%d %d %d\n", v1, v2, n - v1 - v2 }'
}
# load N FILE : N requests in the background, 10 per connection, 0.1 s apart
# (seconds of load), one status code per line into FILE
load() {
	(
		for ((k = 0; k < $1 / 10; k++)); do
			# shellcheck disable=SC2046
			curl -s --max-time 60 -x "127.0.0.1:$COUT" -w '%{http_code}\n' $(urls 10) | grep -E '^[0-9]{3}$'
			sleep 0.1
		done >"$2"
	) &
	LOAD_PID=$!
	PIDS+=("$LOAD_PID")
}
codes_ok() { [ "$(grep -c . "$1")" -eq "$2" ] && ! grep -qv '^200$' "$1"; }

# ---------------------------------------------------------------- registry
wait_until 10 all_synced 4 || fail "proxy-status" "not 4 proxies SYNCED: $(status)"
st=$(status)
expect_match "proxy-status: the workloads with identities from their certificates" \
	"hello-v1 +spiffe://cluster.local/ns/default/sa/hello +app=hello, version=v1 +127.0.0.1:$I1" "$st"
expect_match "proxy-status: a client-only proxy" "client +spiffe://cluster.local/ns/default/sa/client +- +- " "$st"
js=$(curl -s "http://127.0.0.1:$CADM/proxies.json")
expect_eq "proxies.json: 4 proxies, SYNCED, labels as an object" "4 4 v2" "$(printf '%s' "$js" | python3 -c '
import json, sys
d = json.load(sys.stdin)["proxies"]
print(len(d), sum(p["status"] == "SYNCED" for p in d), [p["labels"].get("version") for p in d if p["address"].endswith(":'"$I3"'")][0])' 2>&1)"
cfg=$(curl -s "http://127.0.0.1:$CADMP/config")
expect_match "registered endpoints in another proxy's snapshot" \
	"endpoint += 127.0.0.1:$I1 app=hello, version=v1" "$cfg"
expect_match "... all three" "127.0.0.1:$I3 app=hello, version=v2" "$cfg"
V0=$(ver_of "$CADMP")
expect_eq "every proxy holds the same snapshot version" "$V0 $V0 $V0" "$(ver_of "$D1") $(ver_of "$D2") $(ver_of "$D3")"

# ---------------------------------------------------------------- canary 80/20 -> 50/50, live
read -r a b o <<<"$(split 300)"
if [ "$o" -eq 0 ] && [ "$b" -ge 36 ] && [ "$b" -le 84 ]; then pass "80/20: v2 got $b of 300"; else fail "80/20" "v1 $a v2 $b other $o"; fi
mesh_ini 50 50
# (within 15 s: an edit during the controller's warm-up, max(lease_ttl, 8 s) after it
# started, reaches proxies that already hold a snapshot only when the warm-up ends)
wait_until 15 sh -c "[ \"\$(curl -s http://127.0.0.1:$CADMP/config | sed -n 's/^; mesh part: snapshot \([0-9a-f]*\).*/\1/p')\" != $V0 ]" \
	|| fail "edit" "the client's snapshot did not change within 15 s"
V1=$(ver_of "$CADMP")
read -r a b o <<<"$(split 300)"
if [ "$o" -eq 0 ] && [ "$b" -ge 110 ] && [ "$b" -le 190 ]; then pass "edited to 50/50: v2 got $b of 300, no restart"; else fail "50/50" "v1 $a v2 $b other $o"; fi
expect_eq "no proxy restarted" "1 1 1 1" "$(for p in "$PID_v1a" "$PID_v1b" "$PID_v2" "$PID_client"; do _alive "$p" && printf 1 || printf 0; done | sed 's/./& /g;s/ $//')"

# ---------------------------------------------------------------- an invalid edit
echo "[route hello/broken" >>mesh.ini
wait_until 5 grep -q "mesh.ini:2[0-9]: syntax error" controller.log && pass "invalid edit: file:line in the controller's log" \
	|| fail "invalid edit" "no file:line error in controller.log"
expect_match "invalid edit: shown by proxy-status" "mesh.ini:[0-9]+: syntax error" "$(status)"
"$MESH" check -c mesh.ini >check.out 2>&1
expect_eq "invalid edit: mesh check exits 1" 1 "$?"
expect_match "invalid edit: mesh check says file:line" "mesh.ini:[0-9]+:" "$(cat check.out)"
sleep 0.5
expect_eq "invalid edit: the snapshot stays" "$V1" "$(ver_of "$CADMP")"
read -r a b o <<<"$(split 100)"
if [ "$o" -eq 0 ] && [ "$b" -ge 25 ]; then pass "invalid edit: traffic unchanged (v2 $b of 100)"; else fail "invalid edit traffic" "v1 $a v2 $b other $o"; fi
mesh_ini 50 50
wait_until 5 sh -c "! \"$MESH\" proxy-status --admin 127.0.0.1:$CADM | grep -q refused" \
	&& pass "fixed file accepted again" || fail "fix" "proxy-status still shows the refusal"

# ---------------------------------------------------------------- identity comes from the certificate
start_mesh spoof proxy -c spoof.ini
SPOOF_PID=$MESH_PID
wait_until 10 grep -q "may not register as hello" controller.log && pass "spoof: registration as hello with the client's certificate refused" \
	|| fail "spoof" "no refusal in controller.log"
expect_match "spoof: the proxy says why" "refused the registration \(403\).*may not register as hello" "$(cat spoof.log)"
if status | grep -q "127.0.0.1:$SPOUT"; then fail "spoof" "it is in the registry"; else pass "spoof: not in the registry"; fi
stop "$SPOOF_PID" 2
"$MESH" cert request --ca "127.0.0.1:$CAP" --trust-bundle ca/root.crt --ns default --sa client \
	--token-file client.token --out cl >/dev/null 2>&1
r=$(curl -sk --max-time 5 --cert cl.crt --key cl.key -X POST --data-binary $'[workload]\nnamespace = other\n' \
	"https://127.0.0.1:$CTL/v1/register")
expect_match "a body claiming another namespace is refused" "may not register in namespace other" "$r"
expect_eq "without a client certificate: no TLS session" 000 "$(code -k "https://127.0.0.1:$CTL/v1/register" -X POST -d x)"

# ---------------------------------------------------------------- a replica killed under load
load 300 load1.txt
sleep 0.5
kill -9 "$PID_v1a"
t0=$(date +%s%N)
wait_until $((TTL + 3)) sh -c "! curl -s http://127.0.0.1:$CADMP/config | grep -q '127.0.0.1:$I1 '" \
	|| fail "kill" "the killed replica is still in the client's snapshot after $((TTL + 3)) s"
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -le $((TTL * 1000 + 1500)) ]; then pass "killed replica left the snapshot in ${ms} ms (TTL ${TTL}s)"; else fail "kill" "took ${ms} ms"; fi
wait "$LOAD_PID"
codes_ok load1.txt 300 && pass "no failed request while a replica died (retries + ejection)" \
	|| fail "kill under load" "$(sort load1.txt | uniq -c | tr '\n' ' ')"

# ---------------------------------------------------------------- draining deregisters at once
stop "$PID_v2" 10
wait_until 2 sh -c "! \"$MESH\" proxy-status --admin 127.0.0.1:$CADM | grep -q '127.0.0.1:$I3'" \
	&& pass "a draining proxy deregisters at once" || fail "drain" "v2 still registered"
expect_match "controller logged the deregistration" "deregistered hello-v2" "$(cat controller.log)"
start_mesh v2 proxy -c v2.ini
PID_v2=$MESH_PID
wait_ready "$D3" 20 || fail "v2 again" "not ready"
wait_until 10 all_synced 3 || fail "resync" "$(status)"
V2=$(ver_of "$CADMP")

# ---------------------------------------------------------------- the controller killed under load
load 300 load2.txt
sleep 0.3
kill -9 "$UP_PID"
sleep 1
# a proxy restarted while the controller is away starts from its snapshot_file
stop "$PID_client" 5
start_mesh client proxy -c client.ini
PID_client=$MESH_PID
wait_ready "$CADMP" 10 && pass "client restarted without a controller: ready from snapshot_file" \
	|| fail "static stability" "the client did not come back"
expect_eq "... with the last snapshot" "$V2" "$(ver_of "$CADMP")"
expect_match "... it says so" "starting from the last snapshot in client.snapshot" "$(cat client.log)"
wait "$LOAD_PID"
# the load's client connection broke when the client proxy restarted: count only what it answered
if ! grep -qv '^200$' <(grep -v '^000$' load2.txt); then pass "no failed request with the controller down ($(grep -c '^200$' load2.txt) answered)"
else fail "controller down" "$(sort load2.txt | uniq -c | tr '\n' ' ')"; fi
read -r a b o <<<"$(split 50)"
expect_eq "traffic on the last snapshot while the controller is down" 0 "$o"

applied_before=$(grep -c 'applied' client.log)
start_mesh controller2 controller -c mesh.ini
wait_port "$CTL" 10 || fail "up again" "does not listen"
wait_until $((TTL + 12)) all_synced 3 && pass "restarted controller: registry rebuilt from the proxies' polls" \
	|| fail "rebuild" "$(status)"
expect_eq "... nobody was sent a new snapshot (same content, same version)" "$V2 $V2" "$(ver_of "$CADMP") $(ver_of "$D2")"
sleep 8   # past the warm-up (8 s at least): nothing may come after it either
expect_eq "... no snapshot applied after the restart" "$applied_before" "$(grep -c 'applied' client.log)"
expect_match "... warm-up logged" "warm-up over: 3 proxies registered" "$(cat controller2.log)"
exit 0
