# tm.sh - sourced after lib.sh by the traffic-management scenarios (3x_*.sh).
#
# Helpers around $BIN/flaky (tests/e2e/flaky.c, the switchable origin) and the
# proxies these scenarios start. Python checks import tmhttp.py (keep-alive
# clients, thread pools, binomial bounds) next to rawhttp.py.

# start_flaky NAME PORT : runs $BIN/flaky, waits until it listens; FLAKY_PID
start_flaky() {
	"$BIN/flaky" -p "$2" -n "$1" >>"$ART/flaky-$1.log" 2>&1 &
	FLAKY_PID=$!
	PIDS+=("$FLAKY_PID")
	if ! wait_port "$2" 5; then fail "start_flaky $1" "flaky $1 is not listening on $2"; return 1; fi
}

# ctl PORT WHAT : a control URL of a flaky (fail?n=3, heal, stats, reset, log...)
ctl() { curl -s --max-time 5 "http://127.0.0.1:$1/ctl/$2"; }

# fstat PORT KEY : one number from a flaky's /ctl/stats (requests, ok, failed, connections, open, maxactive)
fstat() { ctl "$1" stats | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# start_proxy NAME INI ADMIN_PORT : starts `mesh proxy -c INI` (log $ART/NAME.log), waits for /ready
start_proxy() {
	start_mesh "$1" proxy -c "$2"
	if ! wait_ready "$3" 15; then
		fail "proxy $1 starts" "admin /ready on $3 did not answer 200: $(tail -n 5 "$ART/$1.log")"
		return 1
	fi
}
