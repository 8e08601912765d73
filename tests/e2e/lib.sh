# lib.sh - sourced by every tests/e2e/NN_name.sh scenario.
#
# Environment (set by build.sh run_tests): MESH = absolute path of the mesh binary
# under test, BIN = directory of the helper programs (backend), ART = this
# scenario's artifact directory (configs and logs go there).
#
# Reporting: `pass NAME`, `fail NAME REASON`, `check NAME CMD...`, and `py` for
# python heredocs that report through rawhttp.ok()/bad() (`counted` for any other
# program that prints such lines). Nothing else may print
# lines starting with "PASS: " or "FAIL: ".
#
# Everything started through start_backend/start_mesh/bg is killed by an EXIT
# trap, even when the scenario fails or is killed by build.sh's timeout; on a
# failure the trap prints the tail of every log. A mesh log holding a sanitizer
# report is a failure too.
set -u
E2E=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${MESH:?MESH must name the mesh binary}" "${BIN:?BIN must name the helper directory}" "${ART:?ART must name an artifact directory}"
mkdir -p "$ART"
SCENARIO=$(basename "$0" .sh)
export SCENARIO E2E
NUM=${SCENARIO%%_*}
NUM=$((10#${NUM//[!0-9]/}))
PASSES=0
FAILS=0
PIDS=()       # everything to kill on exit
MESH_LOGS=()  # logs to scan for sanitizer reports
MESH_PIDS=()  # every mesh started
# a test must never go through a proxy the machine is configured with
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY
# leak reports at exit are failures; keep them readable
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}

# The musl build is static; the ASan build is dynamic. Decided from `file`, not the name.
MESH_STATIC=0
if file -L "$MESH" 2>/dev/null | grep -q 'statically linked'; then MESH_STATIC=1; fi

# ---------------------------------------------------------------- reporting
pass() { PASSES=$((PASSES + 1)); echo "PASS: $SCENARIO: $*"; }
fail() {
	local name=$1
	shift
	FAILS=$((FAILS + 1))
	echo "FAIL: $SCENARIO: $name: $*"
}
note() { echo "note: $*"; }
# check NAME CMD... : PASS when CMD exits 0
check() {
	local name=$1 out
	shift
	out=$("$@" 2>&1)
	if [ $? -eq 0 ]; then pass "$name"; else fail "$name" "command failed: $* ${out:0:300}"; fi
}
# expect_eq NAME WANT GOT
expect_eq() {
	if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "want '$2', got '${3:0:300}'"; fi
}
# expect_match NAME REGEX TEXT (extended regex, grep -E)
expect_match() {
	if printf '%s' "$3" | grep -Eq -- "$2"; then pass "$1"; else fail "$1" "'${3:0:300}' does not match /$2/"; fi
}
# counted CMD... : runs CMD (output kept in $ART until it ends, then printed);
# its PASS/FAIL lines count as ours, and a non-zero exit without a FAIL line is one
counted() {
	local out rc p f
	out=$(mktemp "$ART/out.XXXXXX")
	"$@" >"$out" 2>&1
	rc=$?
	cat "$out"
	p=$(grep -c '^PASS: ' "$out")
	f=$(grep -c '^FAIL: ' "$out")
	PASSES=$((PASSES + p))
	FAILS=$((FAILS + f))
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then fail "${COUNTED_NAME:-$1}" "exited with status $rc (see above)"; fi
	rm -f "$out"
	return "$rc"
}
# py [args] <<'PY' ... PY : runs a python3 program with rawhttp importable;
# its PASS/FAIL lines count as ours.
py() { PYTHONPATH="$E2E" COUNTED_NAME=python counted timeout "${PY_TIMEOUT:-90}" python3 - "$@"; }

# ---------------------------------------------------------------- ports
# Each scenario gets a block of 40 ports: 20000 + slot*800 + (NUM%20)*40, where
# the slot is E2E_SLOT or else comes from our pid (so two test runs at once rarely collide). Ports
# that anything on the machine is using (TIME_WAIT included) are skipped. All
# below 32768, clear of the kernel's ephemeral range.
# ./build.sh test runs scenarios on several lanes at once, each with its own slot (E2E_SLOT).
PORT_NEXT=$((20000 + ${E2E_SLOT:-$(($$ % 15))} * 800 + (NUM % 20) * 40))
_ports_in_use() {
	# $(<f) reads the table in blocks (`read` from /proc goes byte by byte: slow)
	local f text a lines=()
	for f in /proc/net/tcp /proc/net/tcp6; do
		[ -r "$f" ] || continue
		text=$(<"$f")
		mapfile -t lines <<<"$text"
		for a in "${lines[@]:1}"; do
			a=${a#*: }   # drop the slot number: "0100007F:1F90 ..."
			a=${a%% *}   # the local address
			printf ' %d' "$((16#${a##*:}))"
		done
	done
	echo ' '
}
# ports VAR... : assigns a distinct free port to each variable
ports() {
	local used v
	used=" $(_ports_in_use) "
	for v in "$@"; do
		while [[ $used == *" $PORT_NEXT "* ]]; do PORT_NEXT=$((PORT_NEXT + 1)); done
		printf -v "$v" '%d' "$PORT_NEXT"
		PORT_NEXT=$((PORT_NEXT + 1))
	done
}

# ---------------------------------------------------------------- processes
_alive() { [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* (.*) [ZX] ' "/proc/$1/stat" 2>/dev/null; }

# wait_port PORT [secs] : until something accepts on 127.0.0.1:PORT
wait_port() {
	local i n=$(( ${2:-5} * 10 ))
	for ((i = 0; i < n; i++)); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}
# wait_until SECS CMD... : until CMD succeeds (tried every 0.1 s), for at most SECS seconds
wait_until() {
	local end=$(( ${EPOCHREALTIME/./} + $1 * 1000000 )); shift
	while :; do
		"$@" >/dev/null 2>&1 && return 0
		[ "${EPOCHREALTIME/./}" -ge "$end" ] && return 1
		sleep 0.1
	done
}
# wait_closed PORT [secs] : until nothing accepts on 127.0.0.1:PORT
wait_closed() {
	local i n=$(( ${2:-5} * 10 ))
	for ((i = 0; i < n; i++)); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	return 1
}
# wait_http URL [secs] : until URL answers 2xx
wait_http() {
	local i n=$(( ${2:-10} * 5 ))
	for ((i = 0; i < n; i++)); do
		if curl -sf -o /dev/null --max-time 1 "$1" 2>/dev/null; then return 0; fi
		sleep 0.2
	done
	return 1
}

# start_backend NAME PORT : runs $BIN/backend, waits until it listens; BACKEND_PID
start_backend() {
	"$BIN/backend" -p "$2" -n "$1" >>"$ART/backend-$1.log" 2>&1 &
	BACKEND_PID=$!
	PIDS+=("$BACKEND_PID")
	if ! wait_port "$2" 5; then fail "start_backend $1" "backend $1 is not listening on $2"; return 1; fi
}

# start_mesh LOGNAME ARGS... : runs "$MESH" ARGS in the background (stdout and
# stderr to $ART/LOGNAME.log); MESH_PID. Does not wait: see wait_ready.
start_mesh() {
	local log=$ART/$1.log
	shift
	"$MESH" "$@" >>"$log" 2>&1 &
	MESH_PID=$!
	PIDS+=("$MESH_PID")
	MESH_PIDS+=("$MESH_PID")
	MESH_LOGS+=("$log")
}
# wait_ready ADMIN_PORT [secs] : until the proxy's /ready answers 200; gives up
# at once when the last mesh started has exited
wait_ready() {
	local i n=$(( ${2:-10} * 5 ))
	for ((i = 0; i < n; i++)); do
		if curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$1/ready" 2>/dev/null; then return 0; fi
		if [ -n "${MESH_PID:-}" ] && ! _alive "$MESH_PID"; then
			echo "note: mesh (pid $MESH_PID) exited before /ready on port $1 answered"
			return 1
		fi
		sleep 0.2
	done
	return 1
}

# bg CMD... : runs a helper in the background, killed on exit; BG_PID
bg() {
	"$@" &
	BG_PID=$!
	PIDS+=("$BG_PID")
}

# stop PID [secs] : SIGTERM, wait up to secs (default 5), then SIGKILL.
# STOP_RC = exit status (137 after a SIGKILL); returns 0 when it exited in time.
stop() {
	local pid=$1 i n=$(( ${2:-5} * 10 ))
	STOP_RC=
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < n; i++)); do
		_alive "$pid" || break
		sleep 0.1
	done
	if _alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		STOP_RC=$?
		return 1
	fi
	wait "$pid" 2>/dev/null
	STOP_RC=$?
	return 0
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
hwm_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
fd_count() { local a=("/proc/$1/fd/"*); echo "${#a[@]}"; }

_cleanup() {
	local rc=$? p i any log line
	trap - EXIT TERM INT HUP
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 60; i++)); do
		any=0
		for p in "${PIDS[@]}"; do _alive "$p" && any=1; done
		[ "$any" -eq 0 ] && break
		sleep 0.1
	done
	for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	for log in "${MESH_LOGS[@]}"; do
		[ -f "$log" ] || continue
		line=$(grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$log")
		if [ -n "$line" ]; then fail "sanitizer" "$(basename "$log"): $line"; fi
	done
	if [ "$FAILS" -gt 0 ] || [ "$rc" -ne 0 ]; then
		for log in "$ART"/*.log; do
			[ -f "$log" ] || continue
			echo "---- tail of $log"
			tail -n 25 "$log" | sed 's/^/  | /'
		done
	fi
	echo "$SCENARIO: $PASSES passed, $FAILS failed in ${SECONDS}s"
	# a scenario killed half-way must not look clean
	if [ "$rc" -ne 0 ] && [ "$FAILS" -eq 0 ]; then echo "FAIL: $SCENARIO: aborted with status $rc"; fi
	exit "$rc"
}
trap _cleanup EXIT
trap 'exit 143' TERM INT HUP

# ---------------------------------------------------------------- HTTP helpers
# code URL [curl args...] : prints the HTTP status code (000 when none)
code() { curl -s -o /dev/null -w '%{http_code}' --max-time "${CURL_TIME:-10}" "$@"; }
# body URL [curl args...]
body() { curl -s --max-time "${CURL_TIME:-10}" "$@"; }
# backend_stat PORT KEY : a number from the backend's /stats
backend_stat() {
	curl -s --max-time 5 "http://127.0.0.1:$1/stats" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# backend_stats PORT : prints "connections requests open" (one /stats call = one new connection)
backend_stats() {
	curl -s --max-time 5 "http://127.0.0.1:$1/stats" \
		| sed -n 's/^connections=\([0-9]*\) requests=\([0-9]*\) open=\([0-9]*\).*/\1 \2 \3/p'
}
# metric_sum ADMIN_PORT REGEX : sum of the values of /metrics lines matching REGEX
metric_sum() {
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | grep -E -- "$2" | grep -v '^#' \
		| awk '{ s += $NF } END { printf "%d\n", s }'
}

# ---- the hello lab of e2e 46, 55 and 57: `mesh up` (controller at $CTL, CA at $CAP),
# sidecars of service hello and a client-only sidecar, identities from the CA
# lab_ca : a CA in $ART/ca that listens on $CAP, tokens $ART/hello.token and client.token
lab_ca() {
	"$MESH" ca init --dir "$ART/ca" >"$ART/ca-init.log" 2>&1
	printf '[ca]\nlisten = 127.0.0.1:%s\ndir = .\n' "$CAP" >"$ART/ca/ca.ini"
	for sa in hello client; do "$MESH" ca token --ns default --sa "$sa" --dir "$ART/ca" >"$ART/$sa.token" 2>/dev/null; done
}
# lab_control SA : the [control] section of a lab sidecar (last in its file: more keys may follow)
lab_control() {
	printf '[control]\nca           = 127.0.0.1:%s\ntrust_bundle = ca/root.crt\ntoken_file   = %s.token\ncontroller   = 127.0.0.1:%s\n' \
		"$CAP" "$1" "$CTL"
}
# lab_proxy_ini NAME VERSION APP IN ADMIN OUT : $ART/NAME.ini, a sidecar of hello
lab_proxy_ini() {
	{
		printf '[workload]\nservice = hello\nlabels  = app=hello, version=%s\napp     = 127.0.0.1:%s\n' "$2" "$3"
		printf '[listen]\ninbound  = 127.0.0.1:%s\nadmin    = 127.0.0.1:%s\noutbound = 127.0.0.1:%s\n' "$4" "$5" "$6"
		lab_control hello
	} >"$ART/$1.ini"
}
# lab_client_ini OUT ADMIN : $ART/client.ini, a client-only sidecar (service account client)
lab_client_ini() {
	{
		printf '[workload]\nservice_account = client\n[listen]\noutbound = 127.0.0.1:%s\nadmin    = 127.0.0.1:%s\n' "$1" "$2"
		lab_control client
	} >"$ART/client.ini"
}
