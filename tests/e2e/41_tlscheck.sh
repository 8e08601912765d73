#!/usr/bin/env bash
# 41_tlscheck: `mesh tls-check` from the configuration, the seed's
# `istioctl authn tls-check productpage.default.svc.cluster.local` after
# security-policy.yaml: mesh-wide STRICT gives `OK STRICT mTLS default/ -`;
# a workload policy with a port-level override, a namespace policy and a
# service without a sidecar (CONFLICT) give their rows; every host form
# names the service; a proxy file without [control] ca is a plaintext client;
# mistakes are file:line errors and an unknown service lists the known ones.
. "$(dirname "$0")/lib.sh"

D=$ART
cat >"$D/mesh.ini" <<'INI'
; the seed's Lab 2 services, then security-policy.yaml
[service productpage]
port     = 9080
endpoint = 127.0.0.1:9081 version=v1

[service reviews]
port     = 9080
endpoint = 127.0.0.1:9083 version=v1
endpoint = 127.0.0.1:9084 version=v2
endpoint = 127.0.0.1:9085 version=v3

[service ratings]
namespace = production
port      = 9080
endpoint  = 127.0.0.1:9086

[service legacy]
sidecar  = no
endpoint = 127.0.0.1:9099

[destination reviews]
subset.v1 = version=v1

[peer_authentication default]
mode = STRICT

[peer_authentication reviews-v3]
namespace = default
selector  = app=reviews, version=v3
port.9080 = PERMISSIVE

[peer_authentication default]
namespace = production
mode      = DISABLE

[authorization allow-all]
action = ALLOW
INI

# tls-check ARGS... -> $out, $rc (configuration only: --offline; 42_mtls checks the live column)
tc() { out=$(cd "$D" && timeout 10 "$MESH" tls-check --offline "$@" 2>&1); rc=$?; }
row() { printf '%s\n' "$out" | grep -E "^$1 " | head -1 | tr -s ' '; }

tc productpage.default
expect_eq "productpage.default: exit 0" 0 "$rc"
expect_match "the header is istioctl's" '^HOST:PORT +STATUS +SERVER +CLIENT +AUTHN POLICY +DESTINATION RULE$' \
	"$(printf '%s\n' "$out" | head -1)"
expect_eq "the seed's mesh-wide STRICT: OK STRICT mTLS default/ -" \
	"productpage.default.svc.cluster.local:9080 OK STRICT mTLS default/ -" "$(row 'productpage\.default\.svc\.cluster\.local:9080')"
expect_eq "one service asked, one row" 2 "$(printf '%s\n' "$out" | wc -l)"
cols=$(printf '%s\n' "$out" | sed -n 2p | awk '{ print index($0, "OK") }')
hcol=$(printf '%s\n' "$out" | sed -n 1p | awk '{ print index($0, "STATUS") }')
expect_eq "columns are aligned" "$hcol" "$cols"

for h in productpage productpage.default.svc productpage.default.svc.cluster.local productpage:9080 \
	productpage.default.svc.cluster.local:9080; do
	tc "$h"
	expect_eq "host form $h" "productpage.default.svc.cluster.local:9080 OK STRICT mTLS default/ -" \
		"$(row 'productpage\.default\.svc\.cluster\.local:9080')"
done

tc reviews
expect_eq "reviews v1, v2: mesh-wide STRICT, with its destination rule" \
	"reviews.default.svc.cluster.local:9080 OK STRICT mTLS default/ reviews/default" \
	"$(printf '%s\n' "$out" | grep STRICT | tr -s ' ')"
expect_eq "reviews v3: the workload policy's port level" \
	"reviews.default.svc.cluster.local:9080 OK PERMISSIVE mTLS reviews-v3/default reviews/default" \
	"$(printf '%s\n' "$out" | grep PERMISSIVE | tr -s ' ')"

tc ratings.production
expect_eq "namespace DISABLE: the client sends plaintext" \
	"ratings.production.svc.cluster.local:9080 OK DISABLE HTTP default/production -" \
	"$(row 'ratings\.production\.svc\.cluster\.local:9080')"

tc legacy
expect_eq "STRICT without a sidecar: CONFLICT" "legacy.default.svc.cluster.local:80 CONFLICT STRICT HTTP default/ -" \
	"$(row 'legacy\.default\.svc\.cluster\.local:80')"
expect_match "a CONFLICT says why" 'legacy\.default\.svc\.cluster\.local:80: STRICT, but the service has no sidecar' "$out"

tc
expect_eq "no service: a row for every service and mode (5)" 5 "$(printf '%s\n' "$out" | grep -cE '^[a-z.-]+:[0-9]+ +(OK|CONFLICT) ')"

# a proxy file: its client side has no identity without [control] ca
cat >"$D/proxy.ini" <<'INI'
[workload]
service = productpage
app     = 127.0.0.1:9081

[control]
mesh = mesh.ini
INI
tc productpage -c proxy.ini
expect_eq "a proxy without an identity: plaintext client, CONFLICT" \
	"productpage.default.svc.cluster.local:9080 CONFLICT STRICT HTTP default/ -" \
	"$(row 'productpage\.default\.svc\.cluster\.local:9080')"

# mistakes
tc nosuch
expect_eq "unknown service: exit 1" 1 "$rc"
expect_match "unknown service lists the services" "no service 'nosuch' in mesh\.ini \(services: productpage\.default reviews\.default" "$out"
printf '[peer_authentication default]\nmode = STRICT\n\n[peer_authentication again]\nmode = PERMISIVE\n' >"$D/bad.ini"
tc -c bad.ini
expect_eq "a bad mode: exit 1" 1 "$rc"
expect_match "a bad mode: file:line, and what to write" \
	"^bad\.ini:5: mode = PERMISIVE: expected one of: UNSET, DISABLE, PERMISSIVE, STRICT \(did you mean 'PERMISSIVE'\?\)" "$out"
expect_match "a second mesh-wide policy: file:line" "bad\.ini:4: peer_authentication again: there is already a mesh-wide policy" "$out"
tc --bogus
expect_eq "unknown flag: exit 2" 2 "$rc"
tc --help
expect_match "--help" '^usage: mesh tls-check' "$out"
out=$("$MESH" --help 2>&1)
expect_match "mesh --help lists tls-check" 'mesh tls-check' "$out"
exit 0
