# demo.sh - sourced after lib.sh by the scenarios that run `mesh demo` (45, 58, 59).
#
#   demo_ports          DEMO_BASE = the first of DEMO_NPORTS consecutive free ports
#                       of our block, and the demo's ports named after its layout:
#                       GW GW_ADM, <W>_ADM for W in PP D R1 R2 R3 RA, CTL_ADM, DASH
#   wait_demo LOG PID   until LOG says ready (0), or the demo exits / 90 s pass (1)
#   demo_start RUNDIR [ARGS...]  demo_ports, then `mesh demo --dir RUNDIR` on them
#                       (log $ART/demo.log, DEMO_PID), waits until ready; its
#                       children's logs are scanned for sanitizer reports too
#   demo_proxy_admins   the seven proxies' admin ports, one a line
DEMO_NPORTS=31

demo_ports() {
	local used p
	used=" $(_ports_in_use) "
	DEMO_BASE=$PORT_NEXT
	for ((p = DEMO_BASE; p < DEMO_BASE + DEMO_NPORTS; p++)); do
		if [[ $used == *" $p "* ]]; then DEMO_BASE=$((p + 1)); fi
	done
	PORT_NEXT=$((DEMO_BASE + DEMO_NPORTS))
	# modules/demo.c: the gateway's three, the CA, four per workload (app, admin,
	# outbound, inbound), then the controller, its admin and the dashboard
	GW=$DEMO_BASE GW_ADM=$((DEMO_BASE + 1))
	PP_ADM=$((DEMO_BASE + 5)) D_ADM=$((DEMO_BASE + 9)) R1_ADM=$((DEMO_BASE + 13))
	R2_ADM=$((DEMO_BASE + 17)) R3_ADM=$((DEMO_BASE + 21)) RA_ADM=$((DEMO_BASE + 25))
	CTL_ADM=$((DEMO_BASE + 29)) DASH=$((DEMO_BASE + 30))
}

demo_proxy_admins() { printf '%s\n' "$GW_ADM" "$PP_ADM" "$D_ADM" "$R1_ADM" "$R2_ADM" "$R3_ADM" "$RA_ADM"; }

wait_demo() {
	local i
	for ((i = 0; i < 450; i++)); do
		grep -q '^mesh demo: ready$' "$1" 2>/dev/null && return 0
		_alive "$2" || return 1
		sleep 0.2
	done
	return 1
}

demo_start() {
	local run=$1
	shift
	demo_ports
	: >"$ART/demo.log"   # (a rerun by hand in the same $ART: no old "ready" line)
	start_mesh demo demo --dir "$run" --port-base "$DEMO_BASE" "$@"
	DEMO_PID=$MESH_PID
	if ! wait_demo "$ART/demo.log" "$DEMO_PID"; then fail "demo ready" "no 'mesh demo: ready' line"; return 1; fi
	MESH_LOGS+=("$run"/logs/*.log)
	pass "mesh demo ready (Bookinfo, controller, dashboard)"
}
