#!/usr/bin/env bash
# tests/bench/routes.sh - writes a mesh config for the routing-cost benchmark.
#
#   bash tests/bench/routes.sh KIND N ORIGIN_PORT OUTBOUND_PORT ADMIN_PORT >proxy.ini
#
# The benchmark request (run.sh sends it with wrk) is
#   GET /api/v1/items HTTP/1.1
#   Host: origin                      (origin.bench.test for KIND lit)
#   end-user: bench
#   accept: */*
# and every KIND ends with one rule that matches it ("hit": path prefix /api/ AND
# header end-user = bench; it sets the response header x-bench-rule: hit, which
# run.sh checks) after N-1 rules that do not. KIND says where those are:
#
#   rules  all N rules on host origin (a service): every request walks N-1 rules that
#          fail, then the hit. The misses cycle over four single-condition kinds:
#            exact path        match.path = /api/v1/items/K         (differs in length)
#            prefix path       match.path = prefix:/svc-K/          (differs at byte 2)
#            header, exact     match.header.end-user = user-K       (header found, value differs)
#            header, present   match.header.x-tenant-K = present    (header not there: all scanned)
#   regex  the same, but each miss is a whole-path regex:
#            match.path = regex:/api/v[0-9]+/items-K(/.*)?
#   walk   the same, but each miss is a condition route.c's index cannot file a rule
#          under, so every request evaluates all N-1 in turn (the worst case):
#            query exact               match.query.tenant = t-K       (no query string)
#            header absent             match.header.accept = absent   (accept is there)
#   hosts  N services (svc-0001 .. and origin, which is defined LAST) with one rule
#          each: the request's host has one rule, but the proxy must find its service
#          among N. The other services' rules are the same four kinds as `rules`.
#   lit    N literal (non-service) hosts with one rule each, h-0001.bench.test ..;
#          the benchmarked host origin.bench.test comes last, routed `to = origin`.
#
# The proxy is set up as in run.sh's proxy benchmark (no access log, 1024 idle upstream
# connections), except that requests arrive on the OUTBOUND listener, the sidecar's
# usual path, where the Host header picks the service (a scan over the services by
# name) and then its rules: so KIND hosts measures the service lookup among N as well.
set -euo pipefail
[ $# -eq 5 ] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
KIND=$1 N=$2 ORIGIN=$3 OUTBOUND=$4 ADMIN=$5
[ "$N" -ge 1 ] || { echo "routes.sh: N must be >= 1" >&2; exit 2; }
case "$KIND" in rules | regex | walk | hosts | lit) ;; *) echo "routes.sh: unknown KIND '$KIND' (rules regex walk hosts lit)" >&2; exit 2 ;; esac

cat <<EOF
; written by tests/bench/routes.sh $KIND $N
[listen]
outbound = 127.0.0.1:$OUTBOUND
admin = 127.0.0.1:$ADMIN

[proxy]
max_idle_per_endpoint = 1024

[log]
access_log = off

EOF

# awk, not a shell loop: thousands of sections in well under a second
awk -v kind="$KIND" -v n="$N" -v origin="$ORIGIN" '
function miss(host, k) {
	printf "[route %s/m%04d]\n", host, k
	if (kind == "regex")
		printf "match.path = regex:/api/v[0-9]+/items-%d(/.*)?\n", k
	else if (kind == "walk" && k % 2 == 0)
		printf "match.query.tenant = t-%d\n", k
	else if (kind == "walk")
		printf "match.header.accept = absent\n"
	else if (k % 4 == 0)
		printf "match.path = /api/v1/items/%d\n", k
	else if (k % 4 == 1)
		printf "match.path = prefix:/svc-%d/\n", k
	else if (k % 4 == 2)
		printf "match.header.end-user = user-%d\n", k
	else
		printf "match.header.x-tenant-%d = present\n", k
	printf "to = origin\n\n"
}
function service(name) { printf "[service %s]\nport = 80\nendpoint = 127.0.0.1:%s\n\n", name, origin }
BEGIN {
	for (k = 1; k < n; k++) {
		if (kind == "rules" || kind == "regex" || kind == "walk")
			miss("origin", k)
		else if (kind == "hosts") {
			service(sprintf("svc-%04d", k))
			miss(sprintf("svc-%04d", k), k)
		} else if (kind == "lit")
			miss(sprintf("h-%04d.bench.test", k), k)
	}
	# the rule every request ends at; its response header lets run.sh check it matched
	printf "[route %s/hit]\nmatch.path = prefix:/api/\nmatch.header.end-user = bench\n", (kind == "lit" ? "origin.bench.test" : "origin")
	printf "response.set.x-bench-rule = hit\nto = origin\n\n"
	service("origin")
}'
