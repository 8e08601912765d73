#!/usr/bin/env bash
# 43_identity: certificate life cycle (issue #4) with 12-second certificates.
# Renewal under continuous load loses no request (new connections take the new
# certificate, open ones keep theirs); with the CA down the proxies keep
# serving until their certificates expire, then mTLS fails (expired
# certificates are refused), and when the CA returns they renew and recover
# on their own.
. "$(dirname "$0")/lib.sh"

ports CAP APP SIN SADM COUT CADM
TTL=12

"$MESH" ca init --dir "$ART/ca" >"$ART/ca-init.log" 2>&1
cat >"$ART/ca.ini" <<EOF
[ca]
listen = 127.0.0.1:$CAP
dir = $ART/ca
cert_ttl = ${TTL}s
EOF
start_mesh ca ca -c "$ART/ca.ini"; CA_PID=$MESH_PID
wait_port "$CAP" 10 || fail "ca" "not listening"
for sa in hello sleep; do "$MESH" ca token --ns default --sa "$sa" --dir "$ART/ca" >"$ART/$sa.token" 2>/dev/null; done

cat >"$ART/mesh.ini" <<EOF
[service hello]
port = 80
endpoint = 127.0.0.1:$SIN version=v1

[destination hello]
max_requests_per_connection = 5    ; new connections (and handshakes) all the time

[peer_authentication default]
mode = STRICT
EOF
cat >"$ART/hello.ini" <<EOF
[workload]
service = hello
app = 127.0.0.1:$APP
[listen]
inbound = 127.0.0.1:$SIN
outbound = off
admin = 127.0.0.1:$SADM
[control]
mesh = mesh.ini
ca = 127.0.0.1:$CAP
token_file = $ART/hello.token
trust_bundle = $ART/ca/root.crt
EOF
cat >"$ART/sleep.ini" <<EOF
[workload]
service_account = sleep
[listen]
outbound = 127.0.0.1:$COUT
admin = 127.0.0.1:$CADM
[control]
mesh = mesh.ini
ca = 127.0.0.1:$CAP
token_file = $ART/sleep.token
trust_bundle = $ART/ca/root.crt
EOF
start_backend hello "$APP"
start_mesh hello proxy -c "$ART/hello.ini"
wait_ready "$SADM" 15 || fail "hello proxy" "not ready"
start_mesh sleep proxy -c "$ART/sleep.ini"
wait_ready "$CADM" 15 || fail "sleep proxy" "not ready"

# load SECS : requests through the mTLS hop for SECS seconds; prints "ok bad"
load() {
	python3 - "$COUT" "$1" <<'PY'
import http.client, sys, time
port, secs = int(sys.argv[1]), float(sys.argv[2])
ok = bad = 0
end = time.time() + secs
conn = None
while time.time() < end and ok + bad < 100000:
    try:
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/", headers={"Host": "hello"})
        r = conn.getresponse(); r.read()
        if r.status == 200: ok += 1
        else: bad += 1
        if r.getheader("connection", "").lower() == "close":
            conn.close(); conn = None
    except Exception:
        bad += 1
        conn = None
    time.sleep(0.01)
print(ok, bad)
PY
}

# ---------------------------------------------------------------- renewal under load
read -r ok bad < <(load 19)
if [ "$ok" -gt 300 ] && [ "$bad" -eq 0 ]; then pass "renewal under load: $ok requests, none failed"
else fail "renewal under load" "$ok ok, $bad failed"; fi
for p in hello sleep; do
	n=$(grep -c "renewed" "$ART/$p.log")
	if [ "$n" -ge 2 ]; then pass "$p renewed its certificate $n times in 19 s (ttl ${TTL}s)"
	else fail "$p renewals" "$n renewals in 19 s"; fi
done
hs=$(metric_sum "$SADM" 'mesh_tls_handshakes_total\{side="server",result="ok"\}')
if [ "$hs" -ge 20 ]; then pass "many handshakes during renewal ($hs)"; else fail "handshakes" "$hs"; fi
# a new connection to the same endpoint resumes the TLS session (tickets), unless a certificate changed
res=$(metric_sum "$CADM" '^mesh_tls_resumed_total')
if [ "$res" -ge $((hs / 3)) ]; then pass "most new connections resume their TLS session ($res of $hs)"
else fail "resumption" "$res resumed of $hs handshakes"; fi

# ---------------------------------------------------------------- CA down
# stop the CA when both certificates still have >= 5 s: then 1.5 s of load must all pass
expiry() { curl -s "http://127.0.0.1:$1/metrics" | sed -n 's/^mesh_cert_expiry_seconds \([-0-9]*\).*/\1/p'; }
for ((i = 0; i < 60; i++)); do
	a=$(expiry "$SADM"); b=$(expiry "$CADM")
	[ "${a:-0}" -ge 5 ] && [ "${b:-0}" -ge 5 ] && break
	sleep 0.2
done
stop "$CA_PID"
read -r ok bad < <(load 1.5)
if [ "$ok" -gt 10 ] && [ "$bad" -eq 0 ]; then pass "CA down: still serving ($ok requests)"
else fail "CA down, before expiry" "$ok ok, $bad failed"; fi
# wait for the certificates to expire (mesh_cert_expiry_seconds < 0)
for ((i = 0; i < 40; i++)); do
	e=$(curl -s "http://127.0.0.1:$SADM/metrics" | sed -n 's/^mesh_cert_expiry_seconds //p')
	[ -n "$e" ] && [ "${e%%.*}" -lt -1 ] && break
	sleep 0.5
done
expect_match "CA down: the certificate expired" "^-" "$e"
read -r ok bad < <(load 1)
# (a pooled connection made before the expiry may still carry a request or
# two: max_requests_per_connection = 5; every new one fails)
if [ "$bad" -ge 5 ] && [ "$ok" -le 8 ]; then pass "expired certificates are refused ($bad failed, $ok on older pooled connections)"
else fail "after expiry" "$ok ok, $bad failed"; fi
expect_match "the proxy log says why" "expired|renewing" "$(cat "$ART/hello.log" "$ART/sleep.log")"

# ---------------------------------------------------------------- CA back
start_mesh ca2 ca -c "$ART/ca.ini"
wait_port "$CAP" 10 || fail "ca restart" "not listening"
for ((i = 0; i < 80; i++)); do
	[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H 'Host: hello' "http://127.0.0.1:$COUT/")" = 200 ] && break
	sleep 0.5
done
read -r ok bad < <(load 2)
if [ "$ok" -gt 20 ] && [ "$bad" -eq 0 ]; then pass "CA back: recovered on their own after $((i / 2)) s"
else fail "recovery" "$ok ok, $bad failed after waiting $((i / 2)) s"; fi
