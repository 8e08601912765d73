#!/usr/bin/env bash
# 40_ca: the certificate authority end to end. `mesh ca init` (root, then an
# intermediate under it; files 0600; refuses to overwrite), `mesh ca token`,
# `mesh ca -c ca.ini` serving POST /v1/sign and GET /v1/root over TLS,
# `mesh cert request` (the agent: trust bundle file or pinned fingerprint) and
# `mesh cert show`; 403 and a log line for a foreign, other-identity or
# expired token; garbage and oversized requests answered, not crashed on;
# the CA restarted in between (no state); allow_namespaces (lab mode) with
# its loud warning.
. "$(dirname "$0")/lib.sh"

ports CA CA2
D=$ART/ca
I=$ART/inter
rm -rf "$D" "$I" "$ART"/*.crt "$ART"/*.key "$ART"/*.token

mode() { stat -c %a "$1" 2>/dev/null; }

# ---------------------------------------------------------------- init
out=$("$MESH" ca init --dir "$D" --trust-domain cluster.local 2>&1)
check "init: root made" test -s "$D/root.crt" -a -s "$D/root.key" -a -s "$D/token.secret" -a -s "$D/ca.ini"
expect_eq "init: root.key is 0600" 600 "$(mode "$D/root.key")"
expect_eq "init: token.secret is 0600" 600 "$(mode "$D/token.secret")"
expect_match "init: prints the root fingerprint" 'fingerprint \(sha256.*\): [0-9a-f]{64}' "$out"
FP=$(printf '%s\n' "$out" | sed -n 's/.*fingerprint (sha256[^)]*): \([0-9a-f]*\).*/\1/p')
before=$(sha256sum "$D/root.key")
out=$("$MESH" ca init --dir "$D" 2>&1); rc=$?
expect_eq "init: refuses to overwrite (exit 1)" 1 "$rc"
expect_match "init: says what exists and what to do" 'already exists: refusing to overwrite.*another --dir' "$(echo $out)"
expect_eq "init: the key is untouched" "$before" "$(sha256sum "$D/root.key")"
out=$("$MESH" cert show "$D/root.crt")
expect_match "cert show: the root is a CA" 'ca: +yes' "$out"
expect_match "cert show: fingerprint matches init's" "sha256 $FP" "$out"

sed -i "s/^listen = .*/listen = 127.0.0.1:$CA/" "$D/ca.ini"
"$MESH" ca token --dir "$D" --ns default --sa reviews >"$ART/reviews.token" 2>/dev/null
expect_match "token: printed" '^mesh1:default:reviews:0:[0-9a-f]{64}$' "$(cat "$ART/reviews.token")"
"$MESH" ca token -c "$D/ca.ini" --ns default --sa ratings --ttl 1h >"$ART/ratings.token" 2>/dev/null
expect_match "token: with expiry, via -c ca.ini" '^mesh1:default:ratings:[0-9]{10}:' "$(cat "$ART/ratings.token")"

# ---------------------------------------------------------------- serve
start_mesh ca ca -c "$D/ca.ini"
CA_PID=$MESH_PID
wait_port "$CA" 10 || fail "ca: listening" "nothing on $CA"

req() { # req NAME ARGS... : mesh cert request against the CA, output in $ART/NAME.*
	local n=$1
	shift
	"$MESH" cert request --ca "127.0.0.1:$CA" --out "$ART/$n" "$@" 2>&1
}
out=$(req reviews --trust-bundle "$D/root.crt" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_eq "sign: reviews gets a certificate" 0 "$rc"
expect_eq "sign: the agent's key file is 0600" 600 "$(mode "$ART/reviews.key")"
show=$("$MESH" cert show "$ART/reviews.crt")
expect_match "sign: identity" 'identity: +spiffe://cluster.local/ns/default/sa/reviews' "$show"
expect_match "sign: 24h lifetime" 'expires in: +(23h5[0-9]m|24h00m)' "$show"
expect_match "sign: issued by the root" 'issuer: +CN=mesh root CA' "$show"
expect_match "cert show -: reads stdin" 'spiffe://cluster.local/ns/default/sa/reviews' "$("$MESH" cert show - <"$ART/reviews.crt")"

out=$(req stolen --trust-bundle "$D/root.crt" --ns default --sa ratings --token-file "$ART/reviews.token"); rc=$?
expect_eq "403: reviews' token cannot get ratings" 1 "$rc"
expect_match "403: the agent says why and what to do" '403 .*token is for spiffe://cluster.local/ns/default/sa/reviews.*mesh ca token' "$out"
out=$(req ratings --trust-bundle "$D/root.crt" --ns default --sa ratings --token-file "$ART/ratings.token"); rc=$?
expect_eq "sign: ratings with its expiring token" 0 "$rc"

# a token from another CA
"$MESH" ca init --dir "$ART/other" >/dev/null 2>&1
"$MESH" ca token --dir "$ART/other" --ns default --sa reviews >"$ART/foreign.token" 2>/dev/null
out=$(req foreign --trust-bundle "$D/root.crt" --ns default --sa reviews --token-file "$ART/foreign.token"); rc=$?
expect_eq "403: a foreign CA's token" 1 "$rc"
expect_match "403: foreign token explained" 'another CA, or altered' "$out"
# an expired token: same identity and MAC over an expiry in the past cannot be
# made by hand, so a token with a 1 s ttl waits
"$MESH" ca token --dir "$D" --ns default --sa details --ttl 1s >"$ART/details.token" 2>/dev/null
sleep 2
out=$(req details --trust-bundle "$D/root.crt" --ns default --sa details --token-file "$ART/details.token"); rc=$?
expect_match "403: expired token" '403 .*expired' "$out"
sleep 0.3
n403=$(grep -c 'warn: 403 for 127.0.0.1' "$ART/ca.log")
expect_eq "403: one log line per refusal" 3 "$n403"

# the CA is verified: another CA's root as trust bundle fails the handshake
out=$(req x --trust-bundle "$ART/other/root.crt" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_match "agent: a CA the bundle does not vouch for is refused" 'TLS: .*(not correctly signed|refused)' "$out"
# pinned fingerprint instead of a bundle file
out=$(req pinned --ca-fingerprint "$FP" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_eq "agent: pinned root fingerprint works" 0 "$rc"
OFP=$("$MESH" cert show "$ART/other/root.crt" | awk '/^fingerprint/ { print $3 }')
out=$(req pinned2 --ca-fingerprint "$OFP" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_match "agent: a wrong pin is refused" 'does not have the pinned fingerprint' "$out"
out=$(req none --trust-bundle "$D/root.crt" --ns default --sa reviews); rc=$?
expect_match "403: no token, no lab mode" '403 .*token is required' "$out"

# ---------------------------------------------------------------- HTTP edges (curl, verifying the CA by the root)
C=(curl -s --max-time 5 --cacert "$D/root.crt")
root=$("${C[@]}" "https://127.0.0.1:$CA/v1/root")
expect_eq "GET /v1/root is the trust bundle" "$(cat "$D/root.crt")" "$root"
expect_eq "unknown path 404" 404 "$("${C[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$CA/nope")"
expect_eq "GET /v1/sign 405" 405 "$("${C[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$CA/v1/sign")"
expect_eq "garbage CSR 400" 400 "$("${C[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(cat "$ART/reviews.token")" --data-binary 'hello' "https://127.0.0.1:$CA/v1/sign")"
head -c 40000 /dev/zero | tr '\0' 'A' >"$ART/big.bin"
expect_eq "oversized body 413" 413 "$("${C[@]}" -o /dev/null -w '%{http_code}' --data-binary @"$ART/big.bin" "https://127.0.0.1:$CA/v1/sign")"
# plaintext and random bytes on the TLS port: dropped, CA still up
printf 'GET /v1/root HTTP/1.1\r\nHost: x\r\n\r\n' | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$CA" 2>/dev/null
head -c 3000 /dev/urandom | timeout 3 bash -c "cat >/dev/tcp/127.0.0.1/$CA" 2>/dev/null
expect_eq "garbage on the port: the CA still answers" 200 "$("${C[@]}" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$CA/v1/root")"

# ---------------------------------------------------------------- restart: no state
stop "$CA_PID" 5
expect_eq "ca: SIGTERM exits 0" 0 "${STOP_RC:-x}"
out=$(req down --trust-bundle "$D/root.crt" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_match "agent: CA down is a clear error" 'is `mesh ca` running' "$out"
start_mesh ca2 ca -c "$D/ca.ini"
CA_PID=$MESH_PID
wait_port "$CA" 10 || fail "ca: restarted" "nothing on $CA"
out=$(req again --trust-bundle "$D/root.crt" --ns default --sa reviews --token-file "$ART/reviews.token"); rc=$?
expect_eq "restart: the same token still works" 0 "$rc"
stop "$CA_PID" 5

# ---------------------------------------------------------------- an intermediate
out=$("$MESH" ca init --dir "$I" --root "$D" 2>&1); rc=$?
expect_eq "intermediate: made" 0 "$rc"
expect_eq "intermediate: ca.key is 0600" 600 "$(mode "$I/ca.key")"
expect_eq "intermediate: root.crt is the same bundle" "$(cat "$D/root.crt")" "$(cat "$I/root.crt")"
out=$("$MESH" ca init --dir "$I" --root "$D" 2>&1); rc=$?
expect_eq "intermediate: refuses to overwrite" 1 "$rc"
sed -i "s/^listen = .*/listen = 127.0.0.1:$CA2/" "$I/ca.ini"
printf 'allow_namespaces = default, production\n' >>"$I/ca.ini"
start_mesh ca3 ca -c "$I/ca.ini"
wait_port "$CA2" 10 || fail "ca: intermediate serving" "nothing on $CA2"
sleep 0.2
expect_match "allow_namespaces: a loud warning at start" 'LAB MODE: allow_namespaces = default, production.*WITHOUT a token' "$(cat "$ART/ca3.log")"
"$MESH" ca token --dir "$I" --ns default --sa reviews >"$ART/ireviews.token" 2>/dev/null
out=$("$MESH" cert request --ca "127.0.0.1:$CA2" --trust-bundle "$D/root.crt" --ns default --sa reviews \
	--token-file "$ART/ireviews.token" --out "$ART/ireviews" 2>&1); rc=$?
expect_eq "intermediate: signs with a token" 0 "$rc"
show=$("$MESH" cert show "$ART/ireviews.crt")
expect_match "intermediate: the chain has the intermediate" 'certificate 2 of 2' "$show"
expect_match "intermediate: the leaf's issuer is the intermediate" 'issuer: +CN=mesh intermediate CA' "$show"
out=$("$MESH" cert request --ca "127.0.0.1:$CA2" --trust-bundle "$D/root.crt" --ns default --sa reviews \
	--token-file "$ART/reviews.token" 2>&1); rc=$?
expect_match "intermediate: the root CA's token is not this CA's" '403' "$out"
out=$("$MESH" cert request --ca "127.0.0.1:$CA2" --trust-bundle "$D/root.crt" --ns production --sa anything 2>&1); rc=$?
expect_eq "allow_namespaces: production without a token" 0 "$rc"
out=$("$MESH" cert request --ca "127.0.0.1:$CA2" --trust-bundle "$D/root.crt" --ns kube-system --sa anything 2>&1); rc=$?
expect_match "allow_namespaces: not an unlisted namespace" '403' "$out"

# ---------------------------------------------------------------- bad ca.ini
printf '[ca]\nlisten = nowhere\ncert_ttl = soon\n' >"$ART/bad.ini"
out=$("$MESH" ca -c "$ART/bad.ini" 2>&1); rc=$?
expect_eq "ca.ini: errors exit 1" 1 "$rc"
expect_match "ca.ini: file:line for each" 'bad.ini:2: listen.*bad.ini:3: cert_ttl' "$(echo $out)"
