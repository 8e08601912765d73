# tests/bench/control.sh - the control suite of tests/bench/run.sh (issue 5), sourced by
# it: it uses run.sh's helpers, temp dir, pinning and cleanup. docs/benchmarks.md,
# "Control plane (issue 5)", says why it measures what it does.
#
# For each N (100 and 1,000; BENCH_CTL_N): a fresh `mesh controller` on CPU 1 with a
# mesh.ini of N/10 services (sim0..), waited past its warm-up; then
# tests/bench/ctlsim.c on CPU 0 simulates N proxies, each with its own mTLS connection
# (one shared workload certificate), registering a distinct address 127.0.0.1:PORT and
# long-polling its snapshot. ctlsim measures:
#   1. registration: all N leases granted, then all N on one snapshot version (ms);
#   2. CT_ROUNDS edits: each a new weight for sim0's canary route, written beforehand
#      and renamed over mesh.ini by ctlsim itself (one clock for the edit and every
#      arrival): per proxy the time until the 200 bringing the new version was read
#      whole -> p50 / p99 / max over the proxies; the controller's CPU time per edit,
#      VmRSS and VmHWM (/proc), and ctlsim's own CPU time (is the simulator the limit?).
# Reported: medians over the rounds, and the worst max of any round.

CT_NS=${BENCH_CTL_N:-100 1000}
if [ "$QUICK" = 1 ]; then CT_ROUNDS=3; else CT_ROUNDS=${BENCH_CTL_ROUNDS:-5}; fi
CT_HS=32            # ctlsim: handshakes in flight at once while registering
CT_SETTLE=300       # ms without a new snapshot arriving: a round is over
T_SUITE=$SECONDS
CT=$TMP/control
mkdir -p "$CT"
declare -A CT_REG CT_SYNC CT_P50 CT_P99 CT_MAX CT_WORST CT_ALL CT_CPU CT_SIM CT_RSS CT_HWM CT_IDLE CT_SNAP CT_ERRS CT_NOTE
declare -A CT_REGCPU CT_REBUILD CT_ONE
CT_LIVE=""

ct_note() { CT_NOTE[$1]=$2; say "control: N=$1: NOT MEASURED - $2"; }
# stops a process this suite started and takes it out of run.sh's PIDS: once reaped, its
# pid may be another process's by the time run.sh's cleanup signals everything in PIDS
ct_stop() {
	local p keep=()
	kill "$1" 2>/dev/null || true
	wait "$1" 2>/dev/null || true
	for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
	PIDS=("${keep[@]}")
}
kv() { tr ' ' '\n' | awk -F= -v k="$1" '$1 == k { print $2; exit }'; }   # line on stdin -> value of key

# ---------------------------------------------------------------- CA, one identity for every simulated proxy
P_CTCA=$(free_port)
"$MESH" ca init --dir "$CT/ca" >"$CT/ca-init.log" 2>&1 || die "mesh ca init failed: $(tail -2 "$CT/ca-init.log")"
printf '[ca]\nlisten = 127.0.0.1:%s\ndir = .\n' "$P_CTCA" >"$CT/ca/ca.ini"
"${ON_LOAD[@]}" "$MESH" ca -c "$CT/ca/ca.ini" >"$CT/ca.log" 2>&1 &
CT_CA_PID=$!; PIDS+=("$CT_CA_PID")
wait_port "$P_CTCA" "$CT_CA_PID" || die "mesh ca did not start: $(tail -3 "$CT/ca.log")"
"$MESH" ca token --dir "$CT/ca" --ns default --sa sim >"$CT/sim.token" 2>/dev/null || die "mesh ca token failed"
"$MESH" cert request --ca "127.0.0.1:$P_CTCA" --trust-bundle "$CT/ca/root.crt" --ns default --sa sim \
	--token-file "$CT/sim.token" --out "$CT/sim" >"$CT/cert-sim.log" 2>&1 \
	|| die "mesh cert request failed: $(tail -2 "$CT/cert-sim.log")"
ct_stop "$CT_CA_PID"   # the controller signs its own certificate with the CA's key

# ---------------------------------------------------------------- ctlsim (mbedTLS client, musl, as tlsload)
CT_SIM_NOTE=""
if command -v musl-gcc >/dev/null 2>&1 && [ -f .cache/musl/lib/libmbedtls.a ] \
	&& eval "$(sed -n '/^DEP_DEFS=/,/"$/p' build.sh)" && [ -n "${DEP_DEFS:-}" ]; then
	# shellcheck disable=SC2086
	musl-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE \
		$DEP_DEFS -I.cache/musl/include -Imodules -static -o "$CT/ctlsim" tests/bench/ctlsim.c modules/tls.c \
		.cache/musl/lib/libmbedtls.a .cache/musl/lib/libmbedx509.a .cache/musl/lib/libmbedcrypto.a \
		>"$CT/ctlsim-build.log" 2>&1 || CT_SIM_NOTE="ctlsim.c did not build: $(head -3 "$CT/ctlsim-build.log" | tr '\n' ' ')"
else
	CT_SIM_NOTE="no musl-gcc or no .cache/musl (run ./build.sh first): the control suite needs ctlsim"
fi

# ---------------------------------------------------------------- mesh.ini and its edits
ct_mesh_ini() { # N listen admin w1 w2 -> stdout
	local n=$1 s k
	s=$(( n / 10 > 0 ? n / 10 : 1 ))
	printf '; written by tests/bench/control.sh: %s services for %s simulated proxies\n' "$s" "$n"
	printf '[controller]\nca     = %s\nlisten = 127.0.0.1:%s\nadmin  = 127.0.0.1:%s\n\n' "$CT/ca/ca.ini" "$2" "$3"
	for ((k = 0; k < s; k++)); do
		printf '[service sim%d]\nport = 80\nservice_account = sim\n\n' "$k"
	done
	printf '[destination sim0]\nsubset.v1 = version=v1\nsubset.v2 = version=v2\n\n'
	printf '[route sim0/canary]\nto = sim0/v1 %s, sim0/v2 %s\n' "$4" "$5"
}

ct_run() { # N
	local n=$1 d=$CT/n$1 lp ap pid s r w out line sum
	s=$(( n / 10 > 0 ? n / 10 : 1 ))
	mkdir -p "$d/edits"
	lp=$(free_port); ap=$(free_port)
	ct_mesh_ini "$n" "$lp" "$ap" 80 20 >"$d/mesh.ini"
	# the edits: a new weight each round; in a subdirectory, which the controller does not watch
	for ((r = 1; r <= CT_ROUNDS; r++)); do
		w=$(( r % 2 ? 50 + r : 80 - r ))
		ct_mesh_ini "$n" "$lp" "$ap" "$w" $((100 - w)) >"$d/edits/edit-$r.ini"
	done
	"$MESH" check -c "$d/mesh.ini" >"$d/check.log" 2>&1 || { ct_note "$n" "mesh check refuses the bench's mesh.ini: $(head -2 "$d/check.log" | tr '\n' ' ')"; return 1; }
	"${ON_PROXY[@]}" "$MESH" controller -c "$d/mesh.ini" >"$CT/controller-$n.log" 2>&1 &
	pid=$!; PIDS+=("$pid")
	wait_port "$lp" "$pid" || { ct_note "$n" "the controller did not start: $(tail -3 "$CT/controller-$n.log" | tr '\n' ' ')"; ct_stop "$pid"; return 1; }
	# fresh controllers hold snapshots back for a warm-up (one lease TTL, at least 8 s): wait it out
	for ((w = 0; w < 300; w++)); do
		grep -q 'warm-up over' "$CT/controller-$n.log" && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	grep -q 'warm-up over' "$CT/controller-$n.log" || { ct_note "$n" "no end of warm-up in 30 s: $(tail -2 "$CT/controller-$n.log" | tr '\n' ' ')"; ct_stop "$pid"; return 1; }
	CT_IDLE[$n]=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
	say "control: N=$n: controller pid $pid on 127.0.0.1:$lp (CPU $CPU_PROXY, idle RSS ${CT_IDLE[$n]} KiB, $s services); ctlsim on CPU $CPU_LOAD, $CT_ROUNDS edits"
	out=$CT/ctlsim-$n.txt
	local edits=()
	for ((r = 1; r <= CT_ROUNDS; r++)); do edits+=(--edit "$d/edits/edit-$r.ini"); done
	# bounded: ctlsim gives up on a phase after --timeout seconds, timeout(1) on the whole run
	timeout 300 "${ON_LOAD[@]}" "$CT/ctlsim" -p "$lp" --crt "$CT/sim.crt" --key "$CT/sim.key" --bundle "$CT/ca/root.crt" \
		-n "$n" --services "$s" --mesh "$d/mesh.ini" "${edits[@]}" --ctl-pid "$pid" -C "$CT_HS" \
		--settle "$CT_SETTLE" --timeout 120 >"$out" 2>&1 || true
	sed 's/^/    /' "$out"
	line=$(grep '^registration ' "$out" || true)
	sum=$(grep '^ctlsim ' "$out" || true)
	if [ -z "$line" ] || [ -z "$sum" ]; then
		ct_note "$n" "ctlsim failed: $(tail -2 "$out" | tr '\n' ' ')"; ct_stop "$pid"; return 1
	fi
	CT_SNAP[$n]=$(curl -s --max-time 5 "http://127.0.0.1:$ap/snapshot" | tail -n +2 | wc -c)
	# the last rebuild is the last edit's: render, check, and write to every parked poll
	CT_REBUILD[$n]=$(curl -s --max-time 5 "http://127.0.0.1:$ap/metrics" | awk '$1 == "mesh_controller_rebuild_ms" { print $2 }')
	CT_REG[$n]=$(kv reg_ms <<<"$line"); CT_SYNC[$n]=$(kv sync_ms <<<"$line"); CT_REGCPU[$n]=$(kv ctl_cpu_ms <<<"$line")
	CT_ONE[$n]="$(kv one_p50_ms <<<"$line")/$(kv one_p99_ms <<<"$line")/$(kv one_max_ms <<<"$line")"
	CT_P50[$n]=$(kv p50_ms <<<"$sum"); CT_P99[$n]=$(kv p99_ms <<<"$sum"); CT_MAX[$n]=$(kv max_ms <<<"$sum")
	CT_WORST[$n]=$(kv worst_max_ms <<<"$sum"); CT_ALL[$n]="$(kv rounds_all_updated <<<"$sum")/$(kv rounds <<<"$sum")"
	CT_CPU[$n]=$(kv ctl_cpu_ms <<<"$sum"); CT_SIM[$n]=$(kv sim_cpu_ms <<<"$sum")
	CT_RSS[$n]=$(kv rss_kib <<<"$sum"); CT_HWM[$n]=$(kv hwm_kib <<<"$sum"); CT_ERRS[$n]=$(kv errors <<<"$sum")
	kill -0 "$pid" 2>/dev/null || CT_NOTE[$n]="the controller exited during the run: $(tail -2 "$CT/controller-$n.log" | tr '\n' ' ')"
	ct_stop "$pid"
	CT_LIVE="$CT_LIVE $n"
}

if [ -n "$CT_SIM_NOTE" ]; then
	say "control: $CT_SIM_NOTE"
else
	for n in $CT_NS; do ct_run "$n" || true; done
fi
say "control suite took $((SECONDS - T_SUITE)) s"

control_report() {
	local n
	echo
	echo "control plane: N simulated proxies (ctlsim, CPU $CPU_LOAD) against one mesh controller (CPU $CPU_PROXY);"
	echo " $CT_ROUNDS edits per N (a route weight, renamed over mesh.ini); medians over the edits"
	[ -z "$CT_SIM_NOTE" ] || { echo "($CT_SIM_NOTE)"; return 0; }
	printf '%-6s %7s %7s | %7s %7s %7s %8s %7s | %8s %8s %7s | %8s %8s %8s | %8s %6s\n' N reg_ms sync_ms \
		p50_ms p99_ms max_ms worst_ms all_upd ctl_cpu sim_cpu rebuild rss_idle rss_kib hwm_kib snap_B errors
	for n in $CT_NS; do
		if ! in_list "$n" "$CT_LIVE"; then printf '%-6s not measured: %s\n' "$n" "${CT_NOTE[$n]:-}"; continue; fi
		printf '%-6s %7s %7s | %7s %7s %7s %8s %7s | %8s %8s %7s | %8s %8s %8s | %8s %6s\n' "$n" "${CT_REG[$n]}" "${CT_SYNC[$n]}" \
			"${CT_P50[$n]}" "${CT_P99[$n]}" "${CT_MAX[$n]}" "${CT_WORST[$n]}" "${CT_ALL[$n]}" "${CT_CPU[$n]}" "${CT_SIM[$n]}" "${CT_REBUILD[$n]:-na}" \
			"${CT_IDLE[$n]}" "${CT_RSS[$n]}" "${CT_HWM[$n]}" "${CT_SNAP[$n]}" "${CT_ERRS[$n]}"
		[ -z "${CT_NOTE[$n]+x}" ] || echo "    WARNING: N=$n ${CT_NOTE[$n]}"
	done
	printf '  one registration (connect + mTLS handshake + POST, %s in flight), p50/p99/max ms: %s\n' "$CT_HS" \
		"$(for n in $CT_LIVE; do printf 'N=%s %s  ' "$n" "${CT_ONE[$n]}"; done)"
	echo "(reg_ms: all N leases granted; sync_ms: all N on one snapshot version; p50/p99/max: edit -> a proxy holds"
	echo " the new version, over the proxies, median of the edits; worst_ms: the largest max of any edit; all_upd:"
	echo " edits after which every proxy had the new version; ctl_cpu / sim_cpu: ms of CPU per edit, the controller's"
	echo " and ctlsim's; rebuild: ms the controller spent in the last edit's rebuild (render, check, and write the"
	echo " snapshot to every parked poll, as far as the sockets take it; the 50 ms debounce comes before);"
	echo " rss_kib / hwm_kib: the controller's VmRSS at the end, VmHWM (peak); snap_B: the snapshot's bytes)"
	if in_list 1000 "$CT_LIVE"; then
		printf '  targets (issue 5): 1,000 proxies all updated within 1 s: max %s ms, worst %s ms; controller RSS under 32 MB: %s KiB (peak %s KiB)\n' \
			"${CT_MAX[1000]}" "${CT_WORST[1000]}" "${CT_RSS[1000]}" "${CT_HWM[1000]}"
	fi
}
ct_errors() { for n in $CT_LIVE; do echo "${CT_ERRS[$n]:-0}"; done | awk '{ s += $1 } END { print s + 0 }'; }
control_figures() {
	local n
	for n in $CT_NS; do
		printf 'ctl_register_ms_%s=%s\nctl_sync_ms_%s=%s\n' "$n" "${CT_REG[$n]:-na}" "$n" "${CT_SYNC[$n]:-na}"
		printf 'ctl_update_p50_ms_%s=%s\nctl_update_p99_ms_%s=%s\n' "$n" "${CT_P50[$n]:-na}" "$n" "${CT_P99[$n]:-na}"
		printf 'ctl_update_max_ms_%s=%s\nctl_update_worst_max_ms_%s=%s\n' "$n" "${CT_MAX[$n]:-na}" "$n" "${CT_WORST[$n]:-na}"
		printf 'ctl_cpu_ms_per_edit_%s=%s\nctl_sim_cpu_ms_per_edit_%s=%s\n' "$n" "${CT_CPU[$n]:-na}" "$n" "${CT_SIM[$n]:-na}"
		printf 'ctl_register_cpu_ms_%s=%s\n' "$n" "${CT_REGCPU[$n]:-na}"
		printf 'ctl_register_one_p99_ms_%s=%s\n' "$n" "$(echo "${CT_ONE[$n]:-na/na/na}" | cut -d/ -f2)"
		printf 'ctl_rss_idle_kib_%s=%s\nctl_rss_kib_%s=%s\nctl_hwm_kib_%s=%s\n' "$n" "${CT_IDLE[$n]:-na}" "$n" "${CT_RSS[$n]:-na}" \
			"$n" "${CT_HWM[$n]:-na}"
		printf 'ctl_snapshot_bytes_%s=%s\nctl_rebuild_ms_%s=%s\n' "$n" "${CT_SNAP[$n]:-na}" "$n" "${CT_REBUILD[$n]:-na}"
	done
	printf 'ctl_errors=%s\n' "$(ct_errors)"
}
