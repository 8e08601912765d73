#!/usr/bin/env bash
# 44_check: `mesh check`, offline validation. The shipped conf/bookinfo/mesh.ini
# and conf/quickstart files check clean (exit 0, no warnings); a file with
# several loader mistakes prints every one as file:line with its warnings
# (exit 1); a file that loads but has analysis findings (an endpoint shared by
# two identities, a route to a subset no endpoint carries, STRICT on a service
# without a sidecar...) prints each at the line of its key; warnings alone
# exit 0, and 1 with --strict; bad flags exit 2.
. "$(dirname "$0")/lib.sh"

D=$ART
CONF=$E2E/../../conf

# ---------------------------------------------------------------- shipped files
for f in bookinfo/mesh.ini quickstart/mesh.ini quickstart/proxy-client.ini quickstart/proxy-hello-v1.ini; do
	out=$("$MESH" check -c "$CONF/$f" 2>&1); rc=$?
	expect_eq "$f: exit 0" 0 "$rc"
	expect_match "$f: ok, no warnings" "^$CONF/$f: ok \\([0-9]+ services" "$out"
done
out=$(cd "$CONF/bookinfo" && "$MESH" check 2>&1); rc=$?
expect_eq "default file is mesh.ini" "0:mesh.ini: ok (4 services, 6 endpoints, 1 destination)" "$rc:$out"

# ---------------------------------------------------------------- loader mistakes
cat >"$D/bad.ini" <<'INI'
[mesh]
trust_domain = cluster.local

[service reviews]
port = 9080
endpoint = 127.0.0.1:9083 version=v1

[destination reviews]
subset.v1 = version=v1
subset.v3 = version=v3
load_balancer = fastest
max_conections = 10

[route reviews/default]
to = v1 80, v4 20
INI
out=$("$MESH" check -c "$D/bad.ini" 2>&1); rc=$?
expect_eq "bad.ini: exit 1" 1 "$rc"
expect_match "bad.ini: bad value at its line" "^$D/bad.ini:11: load_balancer = fastest" "$out"
expect_match "bad.ini: misspelt key with a suggestion" "^$D/bad.ini:12: unknown key 'max_conections'.*did you mean 'max_connections'" "$out"
expect_match "bad.ini: unknown subset" "^$D/bad.ini:15: route reviews/default: unknown subset 'v4'" "$out"
expect_match "bad.ini: the warning of a refused file too" "^$D/bad.ini:10: warning: subset 'v3' of reviews matches no endpoint" "$out"
expect_match "bad.ini: summary" "^$D/bad.ini: 3 errors, 1 warning" "$out"
first=$(printf '%s\n' "$out" | head -1)
expect_match "bad.ini: errors come first" "^$D/bad.ini:11: " "$first"

# ---------------------------------------------------------------- analysis
cat >"$D/mesh.ini" <<'INI'
[service productpage]
port = 9080
endpoint = 127.0.0.1:9081 version=v1

[service reviews]
port = 9080
endpoint = 127.0.0.1:9083 version=v1
endpoint = 127.0.0.1:9084 version=v2

[service ratings]
port = 9080
endpoint = 127.0.0.1:9083

[service legacy]
sidecar = no
endpoint = 127.0.0.1:9090

[destination reviews]
subset.v1 = version=v1
subset.v2 = version=v2
subset.v3 = version=v3

[route reviews/jason]
match.header.end-user = jason
to = v3

[route reviews/default]
to = v1 80, v2 20
mirror = v2

[peer_authentication default]
mode = STRICT

[authorization productpage-policy]
selector = app=productpage
from.principals = cluster.local/ns/production/sa/bookinfo-productpage
INI
out=$("$MESH" check -c "$D/mesh.ini" 2>&1); rc=$?
expect_eq "analysis: exit 1 (one error)" 1 "$rc"
expect_match "analysis: shared endpoint with two identities is an error" "^$D/mesh.ini:12: endpoint 127.0.0.1:9083 of \\[service ratings\\] is also an endpoint of \\[service reviews\\]" "$out"
expect_match "analysis: STRICT without a sidecar" "^$D/mesh.ini:15: warning: \\[service legacy\\] has no sidecar" "$out"
expect_match "analysis: route to an empty subset" "^$D/mesh.ini:25: warning: route reviews/jason: subset 'v3' of reviews selects no endpoint \\(endpoints carry version=v1, v2\\)" "$out"
expect_match "analysis: mirror to the route's own destination" "^$D/mesh.ini:29: warning: route reviews/default: mirror reviews/v2" "$out"
expect_match "analysis: principal of no service" "^$D/mesh.ini:36: warning: authorization productpage-policy: from.principals" "$out"
expect_match "analysis: summary" "^$D/mesh.ini: 1 error, 5 warnings" "$out"

# warnings only: 0, and 1 with --strict
sed -i 's/^endpoint = 127.0.0.1:9083$/endpoint = 127.0.0.1:9087/' "$D/mesh.ini"
out=$("$MESH" check -c "$D/mesh.ini" 2>&1); rc=$?
expect_eq "warnings only: exit 0" 0 "$rc"
expect_match "warnings only: summary" "^$D/mesh.ini: ok, 5 warnings \\(4 services" "$out"
"$MESH" check --strict -c "$D/mesh.ini" >/dev/null 2>&1; rc=$?
expect_eq "--strict: warnings fail" 1 "$rc"
"$MESH" check --strict -c "$CONF/bookinfo/mesh.ini" >/dev/null 2>&1; rc=$?
expect_eq "--strict: a clean file passes" 0 "$rc"

# several files: each summarised, then a total
out=$("$MESH" check "$CONF/bookinfo/mesh.ini" "$D/bad.ini" 2>&1); rc=$?
expect_eq "two files: exit 1" 1 "$rc"
expect_match "two files: total" "^3 errors, 1 warning in 2 files$" "$out"

# ---------------------------------------------------------------- usage
"$MESH" check --bogus >/dev/null 2>&1; rc=$?
expect_eq "unknown flag: exit 2" 2 "$rc"
out=$("$MESH" check --help 2>&1)
expect_match "--help" '^usage: mesh check' "$out"
out=$("$MESH" check -c "$D/none.ini" 2>&1); rc=$?
expect_eq "missing file: exit 1" 1 "$rc"
expect_match "missing file: says so" "none.ini: cannot read" "$out"
out=$("$MESH" --help 2>&1)
expect_match "mesh --help lists check" 'mesh check' "$out"
exit 0
