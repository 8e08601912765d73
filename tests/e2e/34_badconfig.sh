#!/usr/bin/env bash
# 34_badconfig: mistakes in [destination] and [route] (issue #3) and in
# [peer_authentication] and [authorization] (issue #4) (docs/config.md
# "Errors and warnings"). Each kind gives `file:line: message` at the right
# line of the mesh file and a non-zero exit from `mesh proxy -c`; all errors of
# a file are listed, in line order; a running proxy given the same mistakes on
# SIGHUP keeps serving its config. The seed's old names (LEAST_CONN,
# circuit_breaker.*, consecutive_errors) load with warnings naming the current
# key, and /config shows the current names.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"

ports R1 R2 R3 OUT ADM
BASE="[service reviews]
port = 9080
endpoint = 127.0.0.1:$R1 version=v1
endpoint = 127.0.0.1:$R2 version=v2
endpoint = 127.0.0.1:$R3 version=v3

[service ratings]
port = 9080
endpoint = 127.0.0.1:$R1

[destination reviews]
subset.v1 = version=v1
subset.v2 = version=v2
subset.v3 = version=v3
"
proxy_ini() { # FILE
	cat >"$1" <<EOF
[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF
}

# bad NAME MESSAGE-ERE SNIPPET : the mesh file is $BASE + SNIPPET; the lines of
# SNIPPET marked "; HERE" are where the error may be reported. Expects exit != 0
# and an output line "<dir>/mesh.ini:LINE: MESSAGE" with LINE one of them.
n_case=0
bad() {
	local name=$1 msg=$2 snippet=$3 dir out rc lines got l
	n_case=$((n_case + 1))
	dir=$ART/case$n_case
	mkdir -p "$dir"
	proxy_ini "$dir/proxy.ini"
	printf '%s\n%s\n' "$BASE" "$snippet" >"$dir/mesh.ini"
	lines=$(grep -n '; HERE' "$dir/mesh.ini" | cut -d: -f1 | tr '\n' ' ')
	out=$(timeout 5 "$MESH" proxy -c "$dir/proxy.ini" 2>&1)
	rc=$?
	printf '%s\n' "$out" >"$dir/out.txt"
	if [ "$rc" -eq 0 ] || [ "$rc" -eq 124 ]; then
		fail "$name" "mesh proxy -c exited $rc (want an error exit): ${out:0:300}"
		return
	fi
	got=""
	for l in $lines; do
		if printf '%s\n' "$out" | grep -Eq -- "(^|/)mesh\.ini:$l: $msg"; then got=$l; break; fi
	done
	if [ -n "$got" ]; then
		pass "$name: exit $rc, mesh.ini:$got: $(printf '%s\n' "$out" | grep -E -- "mesh\.ini:$got: " | head -1 | sed 's/.*mesh\.ini:[0-9]*: //' | cut -c1-110)"
	else
		fail "$name" "want mesh.ini:{${lines% }}: /$msg/, got: $(printf '%s' "$out" | head -5)"
	fi
}

bad "unknown subset in to" \
	"route reviews/default: unknown subset 'v4' \(subsets of reviews: v1, v2, v3\)" '
[route reviews/default]
to = v1 80, v4 20        ; HERE'

bad "unknown subset as SERVICE/SUBSET" \
	"route reviews/x: unknown subset 'v9'" '
[route reviews/x]
to = reviews/v9          ; HERE'

bad "weights not adding up to 100" \
	"route reviews/default: weights add up to 90, not 100" '
[route reviews/default]
to = v1 80, v2 10        ; HERE'

bad "weights on some destinations only" \
	"route reviews/mix: .*weight" '
[route reviews/mix]
to = v1 80, v2           ; HERE'

bad "the same destination twice" \
	"route reviews/twice: 'v1' and 'v1' are the same destination" '
[route reviews/twice]
to = v1 50, v1 50        ; HERE'

bad "bad regex (RE2 syntax)" \
	"route reviews/re: bad regex '\\\\d\+': '\\\\d' is RE2/Perl syntax, not POSIX ERE: write \[0-9\]" '
[route reviews/re]
match.header.x-id = regex:\d+     ; HERE
to = v1'

bad "bad regex (RE2 flags)" \
	"route reviews/re: bad regex '\(\?i\)jason'" '
[route reviews/re]
match.header.end-user = regex:(?i)jason     ; HERE
to = v1'

bad "bad regex (regcomp refuses it)" \
	"route reviews/re: bad regex '\(abc'" '
[route reviews/re]
match.path = regex:(abc  ; HERE
to = v1'

bad "unknown load balancer" \
	"load_balancer = fastest: expected one of: peak_ewma, round_robin, least_request, random, ring_hash, maglev" '
[destination ratings]
load_balancer = fastest  ; HERE'

bad "hash_on without ring_hash or maglev" \
	"hash_on needs load_balancer = ring_hash or maglev \(here it is least_request\)" '
[destination ratings]
load_balancer = least_request
hash_on = header:x-user  ; HERE'

bad "ring_hash without hash_on" \
	".*hash_on" '
[destination ratings]    ; HERE
load_balancer = ring_hash ; HERE'

bad "bad hash_on" \
	"hash_on = .*" '
[destination ratings]
load_balancer = maglev
hash_on = body:x         ; HERE'

bad "both to and redirect" \
	"route reviews/both: needs exactly one of to, redirect, direct_response \(found to and redirect\)" '
[route reviews/both]     ; HERE
to = v1                  ; HERE
redirect = /elsewhere    ; HERE'

bad "none of to, redirect, direct_response" \
	"route reviews/none: needs .*one of to, redirect, direct_response" '
[route reviews/none]     ; HERE
match.path = /x          ; HERE'

bad "unknown service in [destination]" \
	"\[destination reviwes\]: unknown service 'reviwes' \(did you mean 'reviews'\?\)" '
[destination reviwes]    ; HERE
subset.v1 = version=v1'

bad "unknown subset in [destination SERVICE/SUBSET]" \
	"\[destination reviews/v4\]: unknown subset 'v4' \(subsets of reviews: v1, v2, v3\)" '
[destination reviews/v4] ; HERE
max_connections = 10'

bad "a second [destination] for the same service" \
	"duplicate \[destination reviews\] \(first defined at .*mesh\.ini:11\)" '
[destination reviews]    ; HERE
load_balancer = random'

bad "unknown key in a route, with a suggestion" \
	"unknown key 'retires' in \[route reviews/typo\] \(did you mean 'retries'\?\)" '
[route reviews/typo]
to = v1
retires = 3              ; HERE'

bad "a duration without unit" \
	"timeout = 5: missing unit \(write 5s or 5ms\)" '
[route reviews/t]
to = v1
timeout = 5              ; HERE'

bad "timeout on a redirect rule" \
	"route reviews/r: .*timeout" '
[route reviews/r]        ; HERE
redirect = /x            ; HERE
timeout = 1s             ; HERE'

bad "retriable-status-codes without retry_status_codes" \
	"route reviews/codes: .*retry_status_codes" '
[route reviews/codes]    ; HERE
to = v1
retries = 2              ; HERE
retry_on = retriable-status-codes   ; HERE'

bad "a header the proxy owns" \
	"(request\.set\.host|host).*" '
[route reviews/h]
to = v1
request.set.host = other ; HERE'

bad "fault.abort out of range" \
	"fault\.abort = 600.*(range|200\.\.599)" '
[route reviews/f]
to = v1
fault.abort = 600        ; HERE'

bad "a percent over 100" \
	"fault\.abort_percent = 150.*" '
[route reviews/f]
to = v1
fault.abort = 503
fault.abort_percent = 150 ; HERE'

bad "an old name beside its current name is a duplicate key" \
	"duplicate key.*" '
[destination ratings]
outlier.consecutive_5xx = 3
circuit_breaker.consecutive_errors = 3   ; HERE'

# ---- security (issue #4)
bad "an unknown peer authentication mode, with a suggestion" \
	"mode = STRIC: expected one of: UNSET, DISABLE, PERMISSIVE, STRICT \(did you mean 'STRICT'\?\)" '
[peer_authentication default]
mode = STRIC               ; HERE'

bad "a bad ip block in an authorization rule" \
	"from\.ip_blocks = 10\.0\.0\.0/33: '10\.0\.0\.0/33': the prefix length is 0\.\.32" '
[authorization ratings-from-lan]
selector = app=ratings
from.ip_blocks = 10.0.0.0/33   ; HERE'

bad "a rule section without its policy" \
	"\[authorization productpage-policy/get\]: a rule section comes after its policy" '
[authorization productpage-policy/get]   ; HERE
to.methods = GET'

# ---- every error of a file is listed, in line order
dir=$ART/all
mkdir -p "$dir"
proxy_ini "$dir/proxy.ini"
printf '%s\n%s\n' "$BASE" '
[destination ratings]
load_balancer = fastest

[route reviews/a]
to = v1 70, v2 20

[route reviews/b]
match.path = regex:\w+
to = v7' >"$dir/mesh.ini"
out=$(timeout 5 "$MESH" proxy -c "$dir/proxy.ini" 2>&1); rc=$?
got=$(printf '%s\n' "$out" | grep -Eo 'mesh\.ini:[0-9]+: ' | sed 's/mesh\.ini:\([0-9]*\): /\1/' | tr '\n' ' ')
want="$(grep -n 'fastest\|70, v2 20\|\\w+\|v7' "$dir/mesh.ini" | cut -d: -f1 | tr '\n' ' ')"
if [ "$rc" -ne 0 ] && [ "$got" = "$want" ]; then pass "four mistakes in one file: four errors, in line order ($got), exit $rc"
else fail "all errors listed" "rc=$rc, error lines '$got', want '$want': $out"; fi

# ---- the seed's old names: warnings naming the current key, current names in /config
mkdir -p "$ART/seed"
proxy_ini "$ART/seed/proxy.ini"
printf '%s\n%s\n' "${BASE%\[destination reviews\]*}" '
; the seed'"'"'s DestinationRule reviews, as docs/config.md writes it
[destination reviews]
subset.v1 = version=v1
subset.v2 = version=v2
subset.v3 = version=v3
load_balancer = LEAST_CONN
max_connections = 10
max_pending_requests = 10
max_requests_per_connection = 2
circuit_breaker.consecutive_errors = 3
circuit_breaker.interval = 30s
circuit_breaker.base_ejection_time = 30s

[destination ratings]
outlier.consecutive_errors = 4
circuit_breaker.max_ejection_percent = 50' >"$ART/seed/mesh.ini"
start_mesh seed proxy -c "$ART/seed/proxy.ini"
SEED_PID=$MESH_PID
if wait_ready "$ADM" 10; then
	pass "the seed's circuit-breaker DestinationRule loads"
	warn() { # NAME KEY-MARKER MESSAGE
		local l
		l=$(grep -n -- "$2" "$ART/seed/mesh.ini" | head -1 | cut -d: -f1)
		if grep -Eq -- "mesh\.ini:$l: warning: $3" "$ART/seed.log"; then pass "warning at mesh.ini:$l: $1"
		else fail "warning: $1" "no 'mesh.ini:$l: warning: $3' in: $(grep warning "$ART/seed.log" | head -8)"; fi
	}
	warn "LEAST_CONN" "= LEAST_CONN" "'LEAST_CONN' is the old name, use least_request"
	warn "circuit_breaker.consecutive_errors" "circuit_breaker.consecutive_errors" \
		"'consecutive_errors' is the old name \(Istio's consecutiveErrors\), use outlier\.consecutive_5xx"
	warn "circuit_breaker.interval" "circuit_breaker.interval" \
		"'circuit_breaker\.interval' is the old name \(the seed's circuitBreaker\), use outlier\.interval"
	warn "circuit_breaker.base_ejection_time" "circuit_breaker.base_ejection_time" \
		"'circuit_breaker\.base_ejection_time' is the old name \(the seed's circuitBreaker\), use outlier\.base_ejection_time"
	warn "outlier.consecutive_errors" "outlier.consecutive_errors" \
		"'consecutive_errors' is the old name \(Istio's consecutiveErrors\), use outlier\.consecutive_5xx"
	warn "circuit_breaker.max_ejection_percent" "circuit_breaker.max_ejection_percent" \
		"'circuit_breaker\.max_ejection_percent' is the old name \(the seed's circuitBreaker\), use outlier\.max_ejection_percent"
	cfg=$(curl -s --max-time 5 "http://127.0.0.1:$ADM/config")
	printf '%s\n' "$cfg" >"$ART/seed/config.txt"
	rev=$(printf '%s\n' "$cfg" | sed -n '/^\[destination reviews\]/,/^$/p' | sed 's/ *= */ = /')
	ok=1
	for want in 'load_balancer = least_request' 'outlier.consecutive_5xx = 3' 'outlier.interval = 30s' \
		'outlier.base_ejection_time = 30s' 'max_connections = 10' 'max_pending_requests = 10' 'max_requests_per_connection = 2'; do
		printf '%s\n' "$rev" | grep -qxF -- "$want" || { ok=0; fail "/config of the seed's rule" "no line '$want' in: $(printf '%s' "$rev" | tr '\n' '|')"; }
	done
	[ "$ok" = 1 ] && pass "/config shows the seed's rule under the current names"
	if printf '%s\n' "$cfg" | grep -Eq 'circuit_breaker|consecutive_errors|LEAST_CONN'; then
		fail "/config has no old names" "$(printf '%s\n' "$cfg" | grep -E 'circuit_breaker|consecutive_errors|LEAST_CONN')"
	else pass "/config has no old names"; fi
	# what /config renders loads again, without the warnings
	mkdir -p "$ART/rendered"
	printf '%s\n' "$cfg" | sed "s/^admin *=.*/admin = off/; s/^outbound *=.*/outbound = off/" >"$ART/rendered/proxy.ini"
	out=$(timeout 2 "$MESH" proxy -c "$ART/rendered/proxy.ini" 2>&1); rc=$?
	if [ "$rc" -eq 124 ] && ! printf '%s' "$out" | grep -q 'old name'; then pass "the rendered config loads again, without old-name warnings"
	else fail "rendered config reloads" "rc=$rc: $(printf '%s' "$out" | head -5)"; fi
else
	fail "the seed's DestinationRule loads" "$(tail -5 "$ART/seed.log")"
fi
stop "$SEED_PID" 3

# ---- a running proxy keeps its config when SIGHUP brings a mistake
mkdir -p "$ART/live"
proxy_ini "$ART/live/proxy.ini"
good() { # BODY
	printf '%s\n%s\n' "$BASE" "
[route reviews/answer]
direct_response = 200
direct_response.body = $1" >"$ART/live/mesh.ini"
}
good answer-1
start_mesh live proxy -c "$ART/live/proxy.ini"
LIVE_PID=$MESH_PID
if ! wait_ready "$ADM" 10; then fail "live proxy starts" "$(tail -5 "$ART/live.log")"; exit 1; fi
U="http://127.0.0.1:$OUT/"
expect_eq "live proxy serves its rule" answer-1 "$(body "$U" -H 'Host: reviews')"
i=0
for snippet in "to = v1 80, v4 20" "to = v1 80, v2 10" "match.path = regex:\\d+
to = v1" "to = v1
redirect = /x"; do
	i=$((i + 1))
	printf '%s\n%s\n' "$BASE" "
[route reviews/answer]
$snippet      ; HERE" >"$ART/live/mesh.ini"
	line=$(grep -n '; HERE' "$ART/live/mesh.ini" | cut -d: -f1)
	before=$(grep -c 'mesh\.ini:[0-9]*: ' "$ART/live.log")
	kill -HUP "$LIVE_PID"
	seen=0
	for t in $(seq 1 30); do
		if [ "$(grep -c 'mesh\.ini:[0-9]*: ' "$ART/live.log")" -gt "$before" ]; then seen=1; break; fi
		sleep 0.1
	done
	msg=$(grep 'mesh\.ini:[0-9]*: ' "$ART/live.log" | tail -n +$((before + 1)) | head -3 | tr '\n' ' ')
	if [ "$seen" = 1 ] && printf '%s' "$msg" | grep -Eq "mesh\.ini:($line|$((line - 1))): route reviews/answer: "; then
		pass "SIGHUP with mistake $i: logged as ${msg:0:120}"
	else
		fail "SIGHUP with mistake $i" "no mesh.ini:$line: error logged: ${msg:-nothing}"
	fi
	expect_eq "SIGHUP with mistake $i: the proxy still answers with its config" answer-1 "$(body "$U" -H 'Host: reviews')"
done
if _alive "$LIVE_PID"; then pass "the proxy survived four bad reloads"; else fail "bad reloads" "the proxy exited"; fi
good answer-2
kill -HUP "$LIVE_PID"
ok=0
for t in $(seq 1 30); do
	[ "$(body "$U" -H 'Host: reviews')" = answer-2 ] && { ok=1; break; }
	sleep 0.1
done
expect_eq "a good file on the next SIGHUP is applied" 1 "$ok"
exit 0
