#!/usr/bin/env bash
# 42_mtls: automatic mTLS between proxies and authorization (issue #4), with a
# real `mesh ca`. A client-only proxy (sa sleep) calls service hello through
# its outbound listener; hello's sidecar (sa hello) hands requests to the test
# backend. Checked: the mTLS hop and the identity the app sees (XFCC), Istio
# metrics with mutual_tls and principals, pooled connections (few handshakes),
# STRICT refusing plaintext (403 + counter), PERMISSIVE taking both on one
# port, DISABLE making the client speak plaintext (auto mTLS), a server with
# the wrong identity refused by the client, a certificate from another root
# refused, and AuthorizationPolicy: the seed's two-rule ALLOW policy, DENY
# beating ALLOW, default deny once an ALLOW applies, AUDIT.
. "$(dirname "$0")/lib.sh"

ports CAP CA2P APP SIN SADM COUT CADM OOUT OADM XOUT XADM
TD=cluster.local
HELLO=hello        # the service name, as a Host header

# ---------------------------------------------------------------- the CAs
"$MESH" ca init --dir "$ART/ca" >"$ART/ca-init.log" 2>&1
check "ca init" test -s "$ART/ca/root.crt"
"$MESH" ca init --dir "$ART/ca2" >"$ART/ca2-init.log" 2>&1   # a foreign root
for d in ca ca2; do
	p=$CAP; [ "$d" = ca2 ] && p=$CA2P
	cat >"$ART/$d.ini" <<EOF
[ca]
listen = 127.0.0.1:$p
dir = $ART/$d
EOF
done
start_mesh ca ca -c "$ART/ca.ini"
start_mesh ca2 ca -c "$ART/ca2.ini"
wait_port "$CAP" 10 || fail "ca" "the CA does not listen on $CAP"
wait_port "$CA2P" 10 || fail "ca2" "the second CA does not listen on $CA2P"
for sa in hello sleep other; do
	"$MESH" ca token --ns default --sa "$sa" --dir "$ART/ca" >"$ART/$sa.token"
done
"$MESH" ca token --ns default --sa sleep --dir "$ART/ca2" >"$ART/foreign.token"

# ---------------------------------------------------------------- the mesh
# mesh.ini is rewritten by mesh_ini EXTRA... and the proxies reloaded (SIGHUP)
mesh_ini() {
	{
		cat <<EOF
[service hello]
port = 80
endpoint = 127.0.0.1:$SIN version=v1
EOF
		printf '%s\n' "$@"
	} >"$ART/mesh.ini.new" && mv "$ART/mesh.ini.new" "$ART/mesh.ini"
}
mesh_ini "[peer_authentication default]" "mode = STRICT"

proxy_ini() {   # NAME SA OUT ADM CA TOKEN BUNDLE [extra workload lines]
	cat >"$ART/$1.ini" <<EOF
[workload]
service_account = $2
${8:-}

[listen]
outbound = 127.0.0.1:$3
admin = 127.0.0.1:$4

[control]
mesh = mesh.ini
ca = 127.0.0.1:$5
token_file = $6
trust_bundle = $7
EOF
}
proxy_ini sleep sleep "$COUT" "$CADM" "$CAP" "$ART/sleep.token" "$ART/ca/root.crt"
proxy_ini other other "$OOUT" "$OADM" "$CAP" "$ART/other.token" "$ART/ca/root.crt"
proxy_ini foreign sleep "$XOUT" "$XADM" "$CA2P" "$ART/foreign.token" "$ART/ca2/root.crt"
proxy_ini hello hello 0 "$SADM" "$CAP" "$ART/hello.token" "$ART/ca/root.crt" \
	"service = hello
labels = app=hello, version=v1
app = 127.0.0.1:$APP"
sed -i "s/^outbound = 127.0.0.1:0$/inbound = 127.0.0.1:$SIN\noutbound = off/" "$ART/hello.ini"

start_backend hello "$APP"
start_mesh hello proxy -c "$ART/hello.ini"; HELLO_PID=$MESH_PID
wait_ready "$SADM" 15 || fail "hello proxy" "not ready"
start_mesh sleep proxy -c "$ART/sleep.ini"; SLEEP_PID=$MESH_PID
wait_ready "$CADM" 15 || fail "sleep proxy" "not ready"
start_mesh other proxy -c "$ART/other.ini"; OTHER_PID=$MESH_PID
wait_ready "$OADM" 15 || fail "other proxy" "not ready"
start_mesh foreign proxy -c "$ART/foreign.ini"; FOREIGN_PID=$MESH_PID
wait_ready "$XADM" 15 || fail "foreign proxy" "not ready"

reload() {   # sends SIGHUP to every proxy and waits for the config to show up
	local p
	for p in "$HELLO_PID" "$SLEEP_PID" "$OTHER_PID" "$FOREIGN_PID"; do kill -HUP "$p"; done
	sleep 0.5
}
via() { curl -s --max-time 10 -H "Host: $HELLO" "$@"; }   # via URL [curl args]
via_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H "Host: $HELLO" "$@"; }

# ---------------------------------------------------------------- identities
expect_match "certs: the proxy's identity" "identity = spiffe://$TD/ns/default/sa/hello" \
	"$(curl -s "http://127.0.0.1:$SADM/certs")"
expect_match "certs: inbound STRICT" "inbound_mtls = STRICT" "$(curl -s "http://127.0.0.1:$SADM/certs")"

# ---------------------------------------------------------------- STRICT
out=$(via "http://127.0.0.1:$COUT/headers")
expect_match "mTLS hop answers" "x-forwarded-client-cert" "$out"
expect_match "the app sees the verified caller (XFCC)" \
	"By=spiffe://$TD/ns/default/sa/hello;URI=spiffe://$TD/ns/default/sa/sleep" "$out"
out=$(via "http://127.0.0.1:$COUT/headers" -H "x-forwarded-client-cert: URI=spiffe://$TD/ns/default/sa/admin")
expect_match "a client-sent XFCC is replaced" "URI=spiffe://$TD/ns/default/sa/sleep" "$out"
if echo "$out" | grep -q "sa/admin"; then fail "XFCC spoof" "the forged header reached the app"; else pass "XFCC spoof dropped"; fi

for i in $(seq 1 50); do via_code "http://127.0.0.1:$COUT/" >>"$ART/codes"; echo >>"$ART/codes"; done
expect_eq "50 requests over mTLS, all 200" 50 "$(grep -c '^200$' "$ART/codes")"
hs=$(metric_sum "$CADM" 'mesh_tls_handshakes_total\{side="client",result="ok"\}')
if [ "$hs" -ge 1 ] && [ "$hs" -le 3 ]; then pass "pooled mTLS: $hs handshakes for 52 requests"
else fail "pooled mTLS" "$hs client handshakes for 52 requests"; fi
n=$(metric_sum "$SADM" "istio_requests_total\\{.*reporter=\"destination\".*connection_security_policy=\"mutual_tls\"")
if [ "$n" -ge 50 ]; then pass "destination metrics say mutual_tls ($n)"; else fail "metrics mutual_tls" "got $n"; fi
n=$(metric_sum "$SADM" "istio_requests_total\\{.*source_principal=\"spiffe://$TD/ns/default/sa/sleep\"")
if [ "$n" -ge 50 ]; then pass "destination metrics carry source_principal"; else fail "source_principal" "got $n"; fi
n=$(metric_sum "$CADM" "istio_requests_total\\{.*destination_principal=\"spiffe://$TD/ns/default/sa/hello\"")
if [ "$n" -ge 50 ]; then pass "source metrics carry destination_principal"; else fail "destination_principal" "got $n"; fi

out=$(curl -s -i --max-time 5 "http://127.0.0.1:$SIN/")
expect_match "STRICT: plaintext refused with 403" "^HTTP/1.1 403" "$out"
expect_match "STRICT: the refusal says why" "mTLS required" "$out"
expect_eq "STRICT: refusal counted" 1 "$(metric_sum "$SADM" '^mesh_plaintext_refused_total')"
out=$(cd "$ART" && "$MESH" tls-check hello -c mesh.ini)
expect_match "tls-check: config and live proxy agree on STRICT" "^hello\.default\.svc\.cluster\.local:80 +OK +STRICT +mTLS +default/ +- +STRICT$" "$out"

# ---------------------------------------------------------------- foreign root
c=$(via_code "http://127.0.0.1:$XOUT/")
if [ "$c" = 502 ] || [ "$c" = 503 ]; then pass "a certificate from another root is refused ($c)"
else fail "foreign root" "status $c"; fi
n=$(metric_sum "$SADM" 'mesh_tls_handshakes_total\{side="server",result="fail"\}')
if [ "$n" -ge 1 ]; then pass "server counted the failed handshake"; else fail "server handshake failures" "$n"; fi
expect_match "the caller's error names mTLS" "mTLS" "$(curl -s -D - -o /dev/null --max-time 10 -H "Host: $HELLO" "http://127.0.0.1:$XOUT/")"

# ---------------------------------------------------------------- wrong identity
mesh_ini "[peer_authentication default]" "mode = STRICT"
sed -i 's/^port = 80$/port = 80\nservice_account = impostor/' "$ART/mesh.ini"
reload
out=$(curl -s -D - --max-time 10 -H "Host: $HELLO" -H "connection: close" "http://127.0.0.1:$OOUT/")
expect_match "server with the wrong identity: refused by the client" "^HTTP/1.1 50[23]" "$out"
expect_match "... and the error says which identity" "impostor|identity" "$out"

# ---------------------------------------------------------------- PERMISSIVE
mesh_ini "[peer_authentication default]" "mode = PERMISSIVE"
reload
expect_eq "PERMISSIVE: plaintext accepted" 200 "$(code "http://127.0.0.1:$SIN/")"
expect_match "tls-check: live PERMISSIVE" "OK +PERMISSIVE +mTLS .* PERMISSIVE$" "$(cd "$ART" && "$MESH" tls-check hello -c mesh.ini)"
# the file says STRICT but the proxy has not reloaded: tls-check sees the difference
cp "$ART/mesh.ini" "$ART/mesh-saved.ini"
mesh_ini "[peer_authentication default]" "mode = STRICT"
out=$(cd "$ART" && "$MESH" tls-check hello -c mesh.ini)
expect_match "tls-check: a proxy behind its config is a CONFLICT" "CONFLICT +STRICT .* PERMISSIVE$" "$out"
expect_match "tls-check: ... and says what to do" "did not reload\\? send it SIGHUP" "$out"
mv "$ART/mesh-saved.ini" "$ART/mesh.ini"
expect_match "PERMISSIVE: mTLS still used by meshed callers" "URI=spiffe://$TD/ns/default/sa/sleep" \
	"$(via "http://127.0.0.1:$COUT/headers" -H 'connection: close')"
out=$(curl -s "http://127.0.0.1:$SIN/headers")
if echo "$out" | grep -qi "x-forwarded-client-cert"; then fail "PERMISSIVE plaintext" "XFCC on a plaintext request"
else pass "PERMISSIVE: plaintext requests carry no identity"; fi

# ---------------------------------------------------------------- DISABLE (auto mTLS follows)
mesh_ini "[peer_authentication hello]" "selector = app=hello" "mode = DISABLE" "" \
	"[peer_authentication default]" "mode = STRICT"
reload
before=$(metric_sum "$CADM" 'mesh_tls_handshakes_total\{side="client"')
out=$(via "http://127.0.0.1:$COUT/headers" -H 'connection: close')
expect_match "DISABLE: the request still works" "x-forwarded-for" "$out"
if echo "$out" | grep -qi "x-forwarded-client-cert"; then fail "DISABLE" "the hop was mTLS"
else pass "DISABLE: the client spoke plaintext (auto mTLS)"; fi
expect_eq "DISABLE: no new client handshake" "$before" "$(metric_sum "$CADM" 'mesh_tls_handshakes_total\{side="client"')"
expect_match "tls-check: live DISABLE" "OK +DISABLE +HTTP .* DISABLE$" "$(cd "$ART" && "$MESH" tls-check hello -c mesh.ini)"

# ---------------------------------------------------------------- authorization
# the seed's productpage-policy, for hello: rule 1 from sleep, rule 2 any GET
mesh_ini "[peer_authentication default]" "mode = STRICT" "" \
	"[authorization hello-policy]" "selector = app=hello" "action = ALLOW" \
	"from.principals = $TD/ns/default/sa/sleep" "" \
	"[authorization hello-policy/get]" "to.methods = GET" "" \
	"[authorization no-admin]" "action = DENY" "to.paths = /admin/*" "" \
	"[authorization audit-post]" "action = AUDIT" "to.methods = POST"
reload
expect_eq "authz: sleep may POST (rule 1)" 200 "$(via_code "http://127.0.0.1:$COUT/echo" -d x)"
expect_eq "authz: other may GET (rule 2)" 200 "$(via_code "http://127.0.0.1:$OOUT/")"
expect_eq "authz: other may not POST" 403 "$(via_code "http://127.0.0.1:$OOUT/echo" -d x)"
expect_eq "authz: the denial reads like Istio's" "RBAC: access denied" "$(via "http://127.0.0.1:$OOUT/echo" -d x)"
expect_eq "authz: DENY beats ALLOW" 403 "$(via_code "http://127.0.0.1:$COUT/admin/x")"
n=$(metric_sum "$SADM" '^mesh_authz_denied_total')
if [ "$n" -ge 3 ]; then pass "authz denials counted ($n)"; else fail "authz denials" "$n"; fi
n=$(metric_sum "$SADM" '^mesh_authz_audit_total')
if [ "$n" -ge 1 ]; then pass "AUDIT marks requests ($n)"; else fail "audit" "$n"; fi
n=$(metric_sum "$SADM" 'istio_requests_total\{.*response_code="403"')
if [ "$n" -ge 3 ]; then pass "denied requests in istio_requests_total as 403"; else fail "403 metrics" "$n"; fi

# ALLOW with no matching rule for anyone: default deny
mesh_ini "[peer_authentication default]" "mode = STRICT" "" \
	"[authorization only-nobody]" "selector = app=hello" "from.principals = $TD/ns/default/sa/nobody"
reload
expect_eq "authz: once an ALLOW applies, others are denied" 403 "$(via_code "http://127.0.0.1:$COUT/")"
mesh_ini "[peer_authentication default]" "mode = STRICT" "" "[authorization allow-all]" "action = ALLOW"
reload
expect_eq "authz: the seed's allow-all lets everything in" 200 "$(via_code "http://127.0.0.1:$OOUT/echo" -d x)"
