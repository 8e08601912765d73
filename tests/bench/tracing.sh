# tests/bench/tracing.sh - the tracing suite of tests/bench/run.sh (issue 6), sourced by
# it: it uses run.sh's helpers, temp dir, origin, pinning and cleanup. docs/benchmarks.md,
# "Tracing overhead", says why it measures what it does.
#
# The proxy suite's shape (wrk -> mesh outbound -> origin, one CLIENT span per request),
# one mesh per case, all up at once on CPU 1, idle except the one being measured:
#   off   no [tracing] section: trace headers read and written, no collector, no spans
#         (there is no switch that stops propagation itself)
#   s0    sampling = 0,   collector set: headers only, nothing recorded
#   s1    sampling = 1,   collector set: ~1% of requests become spans
#   s100  sampling = 100, collector set: every request is a span
# The collector is a second tests/bench/origin.c on CPU 0 beside wrk and the origin:
# it answers 200 to each POST /api/v2/spans after skipping its Content-Length body, so
# it never holds the proxy up and never shares the proxy's CPU; its CPU time per round
# is printed (it is taken from the load side, so it can only lower the traced cases).
# Measured, rounds interleaved over the cases (the order rotates each round):
#   wrk -t1 -c50 GET / -> req/s, p50, p99, the proxy's CPU time per request, spans
#   sent and dropped (the proxy's /metrics, before and after); rate.c at RATE req/s ->
#   p50/p99. Reported: medians, and each case's ratio to off.
# Metrics cannot be turned off (every request updates the Istio-style counters and
# histograms), so there is no metrics-off case: the report says so.

TR_CASES=${BENCH_TR_CASES:-off s0 s1 s100}
TR_REPS=${BENCH_TR_REPS:-$REPS}
if [ "$QUICK" = 1 ]; then TR_DUR=3; else TR_DUR=${BENCH_TR_DUR:-8}; fi
T_SUITE=$SECONDS
TRD=$TMP/tracing
mkdir -p "$TRD"
declare -A TR_PORT TR_ADMIN TR_PID TR_NOTE TR_RPS TR_P50 TR_P99 TR_US TR_ERRS TR_SINK TR_SENT TR_DROP
declare -A TR_FP50 TR_FP99 TR_FERR
TR_LIVE=""
case " $TR_CASES " in *" off "*) ;; *) TR_CASES="off $TR_CASES" ;; esac

tr_sampling() { case "$1" in off) echo "" ;; s*) echo "${1#s}" ;; esac; }
tr_metric() { # case name -> the counter's value from the case's /metrics (na when unreachable)
	curl -s --max-time 5 "http://127.0.0.1:${TR_ADMIN[$1]}/metrics" \
		| awk -v k="$2" '$1 == k { v = $2 } END { print (v == "" ? "na" : v) }'
}
tr_wrk() { # case secs outfile
	"${ON_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${2}s" --latency -H 'Host: origin' \
		"http://127.0.0.1:${TR_PORT[$1]}/" >"$3" 2>&1 || true
}

P_SINK=$(free_port)
"${ON_LOAD[@]}" "$TMP/origin" "$P_SINK" >"$TRD/sink.log" 2>&1 &
SINK_PID=$!; PIDS+=("$SINK_PID")
wait_port "$P_SINK" "$SINK_PID" || die "the span sink did not start: $(cat "$TRD/sink.log")"
say "tracing: span sink (origin.c, answers 200 to every POST) on 127.0.0.1:$P_SINK, CPU $CPU_LOAD"

for c in $TR_CASES; do
	case "$c" in off | s0 | s1 | s100) ;; *) die "unknown tracing case '$c' (off s0 s1 s100)" ;; esac
	TR_PORT[$c]=$(free_port); TR_ADMIN[$c]=$(free_port)
	{
		printf '; written by tests/bench/tracing.sh (case %s)\n[listen]\noutbound = 127.0.0.1:%s\n' "$c" "$(free_port)"
		printf 'admin = 127.0.0.1:%s\nservice.origin = 127.0.0.1:%s\n\n' "${TR_ADMIN[$c]}" "${TR_PORT[$c]}"
		printf '[proxy]\nmax_idle_per_endpoint = 1024\n\n[log]\naccess_log = off\n\n'
		printf '[service origin]\nport = 80\nendpoint = 127.0.0.1:%s\n' "$P_ORIGIN"
		[ "$c" = off ] || printf '\n[tracing]\nsampling = %s\ncollector = 127.0.0.1:%s\n' "$(tr_sampling "$c")" "$P_SINK"
	} >"$TRD/$c.ini"
	"${ON_PROXY[@]}" "$MESH" proxy -c "$TRD/$c.ini" >"$TRD/$c.log" 2>&1 &
	TR_PID[$c]=$!; PIDS+=("${TR_PID[$c]}")
	if ! wait_port "${TR_PORT[$c]}" "${TR_PID[$c]}"; then
		TR_NOTE[$c]="did not start: $(tail -3 "$TRD/$c.log" | tr '\n' ' ')"
		say "tracing: $c: NOT MEASURED - ${TR_NOTE[$c]}"; continue
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: origin' "http://127.0.0.1:${TR_PORT[$c]}/" || true)
	if [ "$code" != 200 ]; then
		TR_NOTE[$c]="answers $code instead of 200: $(tail -2 "$TRD/$c.log" | tr '\n' ' ')"
		say "tracing: $c: NOT MEASURED - ${TR_NOTE[$c]}"; continue
	fi
	TR_LIVE="$TR_LIVE $c"
done
TR_LIVE=${TR_LIVE# }
TR_N=$(echo "$TR_LIVE" | wc -w)
# the s100 proxy really sends: its one request above is a span at the sink within ~1 s
if in_list s100 "$TR_LIVE"; then
	for i in $(seq 1 40); do
		[ "$(tr_metric s100 mesh_trace_spans_sent_total)" = 1 ] && break
		sleep 0.1
	done
	[ "$(tr_metric s100 mesh_trace_spans_sent_total)" = 1 ] \
		|| TR_NOTE[s100]="the first span did not reach the sink: $(tail -2 "$TRD/s100.log" | tr '\n' ' ')"
fi

say "tracing: warm-up, wrk ${WARM}s per case"
for c in $TR_LIVE; do tr_wrk "$c" "$WARM" "$TRD/warm-$c.txt"; done
sleep 1.2   # the warm-up's last batch is posted before the rounds count spans
say "tracing: wrk -t1 -c$CONNS -d${TR_DUR}s --latency, $TR_REPS round(s) interleaved over: $TR_LIVE"
for r in $(seq 1 "$TR_REPS"); do
	order=$(echo "$TR_LIVE" | tr ' ' '\n' | awk -v k="$r" -v n="$TR_N" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	for c in $order; do
		out=$TRD/wrk-$c-$r.txt
		s0=$(tr_metric "$c" mesh_trace_spans_sent_total); d0=$(tr_metric "$c" mesh_trace_spans_dropped_total)
		p0=$(cpu_ticks "${TR_PID[$c]}"); k0=$(cpu_ticks "$SINK_PID")
		tr_wrk "$c" "$TR_DUR" "$out"
		p1=$(cpu_ticks "${TR_PID[$c]}"); k1=$(cpu_ticks "$SINK_PID")
		sleep 1.2   # the round's last batch goes out (every second)
		s1=$(tr_metric "$c" mesh_trace_spans_sent_total); d1=$(tr_metric "$c" mesh_trace_spans_dropped_total)
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		reqs=$(awk '/requests in/ { print $1 }' "$out")
		p50=$(awk '$1 == "50%" { print $2 }' "$out"); p99=$(awk '$1 == "99%" { print $2 }' "$out")
		errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } END { print e + 0 }' "$out")
		us=$(awk -v t=$((p1 - p0)) -v hz="$TICK" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "na" }')
		sent=$(awk -v a="$s0" -v b="$s1" 'BEGIN { print (a == "na" || b == "na") ? "na" : b - a }')
		drop=$(awk -v a="$d0" -v b="$d1" 'BEGIN { print (a == "na" || b == "na") ? "na" : b - a }')
		if [ -n "$rps" ]; then
			TR_RPS[$c]+="$rps "; TR_P50[$c]+="$(to_us "${p50:-0}") "; TR_P99[$c]+="$(to_us "${p99:-0}") "
		else
			TR_RPS[$c]+="na "; TR_P50[$c]+="na "; TR_P99[$c]+="na "; us=na
		fi
		TR_US[$c]+="$us "   # ("na" kept: every case has one value per round, in round order)
		TR_ERRS[$c]=$(( ${TR_ERRS[$c]:-0} + errs ))
		TR_SINK[$c]+="$(pct $((k1 - k0)) $((TR_DUR * TICK))) "
		TR_SENT[$c]+="$sent "; TR_DROP[$c]+="$drop "
		printf '    round %d %-5s %10s req/s  p50 %6s us  p99 %6s us  proxy %5s us/req  spans sent %s dropped %s  sink %s%% CPU  errors %s\n' \
			"$r" "$c" "${rps:-?}" "$(to_us "${p50:-0}")" "$(to_us "${p99:-0}")" "$us" "$sent" "$drop" \
			"$(pct $((k1 - k0)) $((TR_DUR * TICK)))" "$errs"
	done
done

say "tracing: latency at $RATE req/s: rate.c, $RATE_CONNS connections, ${RATE_DUR}s (+${RATE_WARM}s warm-up), $TR_REPS round(s)"
for r in $(seq 1 "$TR_REPS"); do
	order=$(echo "$TR_LIVE" | tr ' ' '\n' | awk -v k="$r" -v n="$TR_N" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	for c in $order; do
		out=$TRD/rate-$c-$r.txt
		"${ON_LOAD[@]}" "$TMP/rate" -p "${TR_PORT[$c]}" -H origin -r "$RATE" -d "$RATE_DUR" -w "$RATE_WARM" \
			-c "$RATE_CONNS" >"$out" 2>&1 || true
		res=$(tail -1 "$out" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END { if ("sent" in v) print v["p50_us"], v["p99_us"], v["max_us"], v["errors"] }')
		if [ -z "$res" ]; then
			echo "    rate.c failed for $c: $(tail -1 "$out")"; TR_FP50[$c]+="na "; TR_FP99[$c]+="na "; continue
		fi
		read -r a b m e <<<"$res"
		TR_FP50[$c]+="$a "; TR_FP99[$c]+="$b "; TR_FERR[$c]=$(( ${TR_FERR[$c]:-0} + e ))
		printf '    round %d %-5s p50 %7s us  p99 %7s us  max %8s us  errors %s\n' "$r" "$c" "$a" "$b" "$m" "$e"
	done
done
for c in $TR_LIVE; do
	kill -0 "${TR_PID[$c]}" 2>/dev/null || TR_NOTE[$c]="exited during the run: $(tail -3 "$TRD/$c.log" | tr '\n' ' ')"
done
say "tracing suite took $((SECONDS - T_SUITE)) s"

# ---------------------------------------------------------------- report (called by run.sh)
tr_med() { local -n a=$1; if [ -n "${a[$2]+x}" ] && [ -n "${a[$2]}" ]; then med "${a[$2]//na/}"; else echo na; fi; }
tr_ratio() { ratio "$(tr_med "$1" "$2")" "$(tr_med "$1" off)"; }
# the median over rounds of case/off within each round: the two ran seconds apart, so
# load that comes and goes on a shared machine moves both
tr_paired() {
	local -n a=$1
	paste -d' ' <(echo "${a[$2]:-}" | tr ' ' '\n' | awk NF) <(echo "${a[off]:-}" | tr ' ' '\n' | awk NF) \
		| awk '$1 != "na" && $2 != "na" && $2 > 0 { print $1 / $2 }' | median | awk '{ if ($1 == "na") print; else printf "%.2f\n", $1 }'
}
tr_sum() { local -n a=$1; echo "${a[$2]:-}" | tr ' ' '\n' | awk '$1 != "" && $1 != "na" { s += $1 } END { print s + 0 }'; }
tr_desc() {
	case "$1" in
	off) echo "no [tracing]: headers propagated, no collector" ;;
	s0) echo "sampling 0, collector set" ;;
	s1) echo "sampling 1, collector set" ;;
	s100) echo "sampling 100, collector set: a span per request" ;;
	esac
}
tracing_report() {
	local c
	echo
	echo "Tracing overhead (issue 6): wrk -> mesh outbound -> origin, one mesh per case on CPU $CPU_PROXY;"
	echo "wrk, origin and the span sink on CPU $CPU_LOAD; wrk -t1 -c$CONNS ${TR_DUR}s x $TR_REPS, rate.c $RATE req/s ${RATE_DUR}s x $TR_REPS; medians"
	printf '%-5s %9s %7s %7s %7s %6s | %7s %7s | %10s %8s %5s | %s\n' case "req/s" p50_us p99_us "us/req" errors \
		p50 p99 "spans sent" dropped sink% what
	for c in $TR_CASES; do
		if ! in_list "$c" "$TR_LIVE"; then printf '%-5s not measured: %s\n' "$c" "${TR_NOTE[$c]:-}"; continue; fi
		printf '%-5s %9.0f %7s %7s %7s %6s | %7s %7s | %10s %8s %5s | %s\n' "$c" "$(tr_med TR_RPS "$c")" \
			"$(tr_med TR_P50 "$c")" "$(tr_med TR_P99 "$c")" "$(tr_med TR_US "$c")" \
			"$(( ${TR_ERRS[$c]:-0} + ${TR_FERR[$c]:-0} ))" "$(tr_med TR_FP50 "$c")" "$(tr_med TR_FP99 "$c")" \
			"$(tr_sum TR_SENT "$c")" "$(tr_sum TR_DROP "$c")" "$(tr_med TR_SINK "$c")" "$(tr_desc "$c")"
		[ -z "${TR_NOTE[$c]+x}" ] || echo "    WARNING: $c ${TR_NOTE[$c]}"
	done
	echo "(us/req: the proxy's CPU time per request; right of the first |: latency at $RATE req/s; spans: summed over"
	echo " the wrk rounds; sink%: the span sink's CPU during a round, taken from CPU $CPU_LOAD, not from the proxy's)"
	echo "ratios to off (req/s below 1 and p99 or CPU above 1 is what tracing costs); first the median of the"
	echo "per-round ratios (case and off seconds apart), then in () the ratio of the medians:"
	for c in $TR_LIVE; do
		[ "$c" = off ] && continue
		printf '  %-5s req/s %s (%s)   p99 %s (%s)   CPU/req %s (%s)   p99 at %s req/s %s (%s)\n' "$c" \
			"$(tr_paired TR_RPS "$c")" "$(tr_ratio TR_RPS "$c")" "$(tr_paired TR_P99 "$c")" "$(tr_ratio TR_P99 "$c")" \
			"$(tr_paired TR_US "$c")" "$(tr_ratio TR_US "$c")" "$RATE" "$(tr_paired TR_FP99 "$c")" "$(tr_ratio TR_FP99 "$c")"
	done
	echo "  (target: s100 req/s >= 0.90. s0 does what off does, so its ratios show the noise of this run."
	echo "   Metrics cannot be turned off in mesh: there is no metrics-off case)"
}
tr_errors() {
	for c in $TR_LIVE; do echo "${TR_ERRS[$c]:-0}"; echo "${TR_FERR[$c]:-0}"; done | awk '{ s += $1 } END { print s + 0 }'
}
tracing_figures() {
	local c
	for c in $TR_CASES; do
		printf 'trace_rps_%s=%s\n' "$c" "$(tr_med TR_RPS "$c" | awk '{ if ($1 == "na") print "na"; else printf "%.0f\n", $1 }')"
		printf 'trace_p99_us_%s=%s\ntrace_cpu_us_per_req_%s=%s\n' "$c" "$(tr_med TR_P99 "$c")" "$c" "$(tr_med TR_US "$c")"
		printf 'trace_spans_dropped_%s=%s\n' "$c" "$(tr_sum TR_DROP "$c")"
	done
	for c in $TR_CASES; do
		[ "$c" = off ] && continue
		printf 'trace_rps_ratio_%s=%s\ntrace_p99_ratio_%s=%s\ntrace_cpu_ratio_%s=%s\n' "$c" "$(tr_paired TR_RPS "$c")" \
			"$c" "$(tr_paired TR_P99 "$c")" "$c" "$(tr_paired TR_US "$c")"
	done
	printf 'trace_errors=%s\n' "$(tr_errors)"
}
