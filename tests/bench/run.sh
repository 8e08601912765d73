#!/usr/bin/env bash
# tests/bench/run.sh - mesh benchmarks, six suites (docs/benchmarks.md):
#   proxy    the same HTTP/1.1 job four ways: direct to the origin, via mesh, via HAProxy,
#            via nginx;
#   routing  mesh with 1, 100 and 1,000 route rules (and 1,000 rules the index cannot file,
#            1,000 hosts, 1,000 literal hosts, 100 regex rules): req/s, p99 and CPU per
#            request against the 1-rule case;
#   lb       three endpoints, one slow: peak_ewma vs round_robin (and least_request) p99;
#   mtls     two hops: mesh -> mTLS -> mesh vs HAProxy -> TLS + client cert -> HAProxy (and
#            both in plaintext): req/s, p99 at 1,000 req/s, handshakes/s, CA signatures/s,
#            memory per idle connection (tests/bench/mtls.sh, which run.sh sources);
#   control  N = 100 and 1,000 simulated proxies against `mesh controller`: registration
#            time, mesh.ini edit -> every proxy updated (p50/p99/max), controller RSS and
#            CPU per edit (tests/bench/control.sh, which run.sh sources, and ctlsim.c);
#   tracing  mesh with [tracing] off, sampling 0, 1 and 100 (spans to a local sink):
#            req/s, p99 and CPU per request against off (tests/bench/tracing.sh, sourced).
# A benchmark, not a test: it measures and prints, never asserts.
#
#   bash tests/bench/run.sh [--suite all|proxy|routing|lb|mtls|control|tracing[,...]] [--quick]
#                           [--targets "direct mesh haproxy nginx"] [--syscalls] [--keep]
#   ./build.sh bench [--quick]        (builds ./mesh first; all suites)
#   BENCH_RT_CASES="rules1 rules1000" BENCH_RT_REPS=10 bash tests/bench/run.sh --suite routing
#                                     (some routing cases only, more rounds)
#
# What the proxy suite does (docs/benchmarks.md explains why):
#   - installs what it lacks with plain apt-get (wrk, haproxy, nginx, gcc, util-linux);
#   - builds tests/bench/origin.c (the backend) and rate.c (fixed-rate client) into a
#     temp dir, writes every config there, picks free loopback ports;
#   - pins each proxy (one worker / one thread) to CPU 1, wrk / rate / origin to CPU 0;
#   - wrk -t1 -c50 --latency, REPS rounds interleaved over the targets -> median req/s,
#     p50, p99, and the proxy's CPU time per request;
#   - rate.c at 1,000 req/s -> median p50/p99 and each proxy's added p99; again with the
#     proxy moved to CPU 0, and a no-proxy control with the origin on CPU 1;
#   - VmRSS idle after start and mid-run under wrk -c1000; stripped size of ./mesh;
#   - --syscalls: also counts each proxy's system calls per request (strace -c -f during
#     a short wrk run; strace slows the proxy, so only the counts mean anything);
# The routing suite: tests/bench/routes.sh writes one mesh config per case; each case is
# its own mesh on CPU 1, all up at once; wrk -t1 -c50 rounds interleaved over the cases
# -> median req/s, p99, and mesh CPU time per request, each against the 1-rule case.
# The lb suite: two fast origins and one slowed by BENCH_SLOW_US (origin.c's delay
# option, default 10000 us); one mesh per algorithm; rate.c at a fixed rate, rounds
# interleaved -> median p50/p99/p99.9 and the share of requests the slow one got.
# It prints a table per suite, ratios, and last the key=value figures of every suite.
# Everything it started is killed on exit, failure included.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
MESH=${MESH:-$ROOT/mesh}

ARGS=("$@")
QUICK=0 KEEP=0 SYSCALLS=0
TARGETS="direct mesh haproxy nginx"
SUITES=all
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) QUICK=1 ;;
	--keep) KEEP=1 ;;
	--syscalls) SYSCALLS=1 ;;
	--targets) TARGETS=$2; shift ;;
	--suite | --suites) SUITES=$2; shift ;;
	-h | --help) sed -n '2,44p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
	esac
	shift
done
DO_PROXY=0 DO_ROUTING=0 DO_LB=0 DO_MTLS=0 DO_CONTROL=0 DO_TRACING=0
for suite in ${SUITES//,/ }; do
	case "$suite" in
	all) DO_PROXY=1 DO_ROUTING=1 DO_LB=1 DO_MTLS=1 DO_CONTROL=1 DO_TRACING=1 ;;
	proxy) DO_PROXY=1 ;;
	routing) DO_ROUTING=1 ;;
	lb) DO_LB=1 ;;
	mtls) DO_MTLS=1 ;;
	control) DO_CONTROL=1 ;;
	tracing) DO_TRACING=1 ;;
	*) echo "run.sh: unknown suite '$suite' (all proxy routing lb mtls control tracing)" >&2; exit 2 ;;
	esac
done
[ "$DO_PROXY" = 1 ] || TARGETS=""   # --targets is the proxy suite's

# durations in seconds; all suites take about 8 minutes (proxy alone about 4.5;
# --quick: about 3)
if [ "$QUICK" = 1 ]; then
	REPS=1 DUR=3 WARM=1 RATE_DUR=3 RATE_WARM=1 RSS_DUR=5
	RT_DUR=2 LB_DUR=2 LB_WARM=1
else
	REPS=3 DUR=10 WARM=1 RATE_DUR=4 RATE_WARM=0.5 RSS_DUR=5
	RT_DUR=4 LB_DUR=4 LB_WARM=1
fi
# routing: the cases (KIND then N, see tests/bench/routes.sh); rules1 is the baseline.
# BENCH_RT_CASES / BENCH_RT_REPS narrow the suite to some cases with more rounds, e.g.
# "rules1 rules1000" and 10: paired rounds, alternating which of the two goes first.
RT_CASES=${BENCH_RT_CASES:-rules1 rules100 rules1000 walk1000 hosts1000 lit1000 regex100}
in_rt_cases() { case " $RT_CASES " in *" $1 "*) return 0 ;; esac; return 1; }
in_rt_cases rules1 || RT_CASES="rules1 $RT_CASES"
RT_REPS=${BENCH_RT_REPS:-$REPS}
# lb: one mesh per case; floor = round robin over the two fast endpoints only
LB_CASES="ewma rr lr floor"
declare -A LB_ALGO=([ewma]=peak_ewma [rr]=round_robin [lr]=least_request [floor]=round_robin)
LB_RATE=1000                          # req/s, as the proxy suite's fixed-rate runs
LB_SLOW_US=${BENCH_SLOW_US:-10000}    # the slow endpoint's added latency
CONNS=50          # wrk connections for the throughput runs
RATE=1000         # fixed rate for the latency runs (req/s)
RATE_CONNS=20     # rate.c keep-alive connections
BIG_CONNS=1000    # connections for the RSS-under-load run
CPU_LOAD=0        # wrk, rate.c, origin
CPU_PROXY=1       # the proxy under test
# Everything the bench starts runs at the same raised priority, so a compiler running
# beside it on a shared machine takes less from the measured processes (BENCH_NICE=0: off).
NICE=${BENCH_NICE:--10}
# With autogroup scheduling (the default) niceness only counts inside a session, so the
# bench re-runs itself in a session of its own and lowers that group's nice value.
if [ "$NICE" != 0 ] && [ "${BENCH_SESSION:-}" != 1 ] && command -v setsid >/dev/null 2>&1 \
	&& [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
	BENCH_SESSION=1 setsid -w bash "$ROOT/tests/bench/run.sh" "${ARGS[@]}" &
	child=$!
	trap 'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 130' INT TERM
	wait "$child"
	exit $?
fi
[ "${BENCH_SESSION:-}" = 1 ] && { echo "$NICE" >/proc/self/autogroup; } 2>/dev/null || true
# command prefixes; nice and taskset exec, so $! of a background job is the process itself
ON_LOAD=(nice -n "$NICE" taskset -c "$CPU_LOAD")
ON_PROXY=(nice -n "$NICE" taskset -c "$CPU_PROXY")
TICK=$(getconf CLK_TCK)

say() { printf '==> %s\n' "$*"; }
die() { printf 'run.sh: error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
need_tools() { # cmd:package ...
	local missing=() t pkg
	for t in "$@"; do
		pkg=${t#*:}; t=${t%%:*}
		command -v "$t" >/dev/null 2>&1 || missing+=("$pkg")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	say "installing Debian packages: ${missing[*]}"
	[ "$(id -u)" -eq 0 ] || die "need root to apt-get install ${missing[*]} (or install them yourself)"
	apt-get update -qq || die "apt-get update failed: check the machine's apt sources"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
		|| die "apt-get install ${missing[*]} failed"
}
need_tools wrk:wrk gcc:gcc taskset:util-linux strip:binutils curl:curl
[ "$DO_PROXY" = 1 ] || [ "$DO_MTLS" = 1 ] && need_tools haproxy:haproxy
if [ "$DO_PROXY" = 1 ] && ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
	need_tools nginx:nginx-light
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need_tools nginx:nginx
fi
PATH=$PATH:/usr/sbin
[ "$(nproc)" -ge 2 ] || die "needs 2 CPUs (proxy on CPU 1, load on CPU 0); nproc says $(nproc)"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---------------------------------------------------------------- temp dir, cleanup
TMP=$(mktemp -d /tmp/mesh-bench.XXXXXX)
PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	sleep 0.3
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$KEEP" = 1 ]; then echo "(kept $TMP)" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- ports
# ports handed out so far, in a file: free_port runs in $(...) subshells, which could
# not update a shell variable
: >"$TMP/ports"
port_busy() { # any local TCP socket (v4 or v6) on port $1?
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h=":$hex" 'NR > 1 && substr($2, length($2) - 4) == h { f = 1 } END { exit !f }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}
free_port() { # below the ephemeral range, so our own client sockets never take it
	local p i
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 12000))
		grep -qx "$p" "$TMP/ports" && continue
		port_busy "$p" && continue
		echo "$p" >>"$TMP/ports"
		echo "$p"; return 0
	done
	die "no free loopback port found"
}

wait_port() { # port, pid, name
	local i
	for i in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- /proc helpers
pids_of() { # target -> pids whose RSS/CPU count (nginx: master and worker)
	case "$1" in
	direct) echo "$ORIGIN_PID" ;;
	nginx) echo "$NGINX_PID $(pgrep -P "$NGINX_PID" 2>/dev/null | tr '\n' ' ')" ;;
	*) eval echo "\$${1^^}_PID" ;;
	esac
}
rss_kb() { # sum of VmRSS over pids
	local p s=0 v
	for p in "$@"; do
		v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$p/status" 2>/dev/null || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
cpu_ticks() { # utime + stime over pids
	local p s=0 v
	for p in "$@"; do
		v=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{ print $12 + $13 }' || echo 0)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
sock_count() { # sockets open in pids
	local p s=0 v
	for p in "$@"; do
		v=$(find "/proc/$p/fd" -lname 'socket:*' 2>/dev/null | wc -l)
		s=$((s + v))
	done
	echo "$s"
}
cpu_stat() { # "busy steal total" jiffies of CPU $1
	awk -v c="cpu$1" '$1 == c { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, $9, t }' /proc/stat
}
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f", (b > 0 ? 100 * a / b : 0) }'; }
median() { # numbers on stdin -> median ("na" if none)
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "na"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
to_us() { # wrk latency "601.00us" / "0.90ms" / "1.20s" -> microseconds
	awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1000; else if (v ~ /s$/) m = 1000000; else m = 1; printf "%.0f", n * m }'
}
med() { echo "$1" | tr ' ' '\n' | awk NF | median; }   # "1 2 3 " -> median
in_list() { case " $2 " in *" $1 "*) return 0 ;; esac; return 1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "na" || b == "na" || b == 0) print "na"; else printf "%.2f", a / b }'; }
diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "na" || b == "na") print "na"; else printf "%.0f", a - b }'; }

# ---------------------------------------------------------------- build helpers
say "building origin and rate client into $TMP"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$TMP/origin" tests/bench/origin.c || die "cannot build origin.c"
gcc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$TMP/rate" tests/bench/rate.c || die "cannot build rate.c"

P_ORIGIN=$(free_port)
declare -A PORT
for t in $TARGETS; do
	case "$t" in
	direct) PORT[direct]=$P_ORIGIN ;;
	mesh | haproxy | nginx) PORT[$t]=$(free_port) ;;
	*) die "unknown target '$t' (direct mesh haproxy nginx)" ;;
	esac
done

# ---------------------------------------------------------------- configs
write_haproxy() {
	cat >"$TMP/haproxy.cfg" <<EOF
# written by tests/bench/run.sh
global
	nbthread 1
	maxconn 4000
	# no logging at all: the same as access_log = off

defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 60s
	option http-keep-alive
	http-reuse always
	option forwardfor

frontend bench
	bind 127.0.0.1:${PORT[haproxy]}
	default_backend origin

backend origin
	server origin1 127.0.0.1:$P_ORIGIN
EOF
}

write_nginx() {
	mkdir -p "$TMP/nginx/tmp"
	cat >"$TMP/nginx/nginx.conf" <<EOF
# written by tests/bench/run.sh
worker_processes 1;
daemon off;
master_process on;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log warn;
worker_rlimit_nofile 16384;
events {
	worker_connections 8000;
	use epoll;
}
http {
	access_log off;
	client_body_temp_path $TMP/nginx/tmp/body;
	proxy_temp_path $TMP/nginx/tmp/proxy;
	fastcgi_temp_path $TMP/nginx/tmp/fastcgi;
	uwsgi_temp_path $TMP/nginx/tmp/uwsgi;
	scgi_temp_path $TMP/nginx/tmp/scgi;
	upstream origin {
		server 127.0.0.1:$P_ORIGIN;
		keepalive 1024;
		keepalive_requests 1000000;
		keepalive_timeout 60s;
	}
	server {
		listen 127.0.0.1:${PORT[nginx]} backlog=4096;
		keepalive_requests 1000000;
		keepalive_timeout 60s;
		location / {
			proxy_pass http://origin;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
		}
	}
}
EOF
}

write_mesh() {
	P_OUTBOUND=$(free_port)
	P_ADMIN=$(free_port)
	cat >"$TMP/proxy.ini" <<EOF
; written by tests/bench/run.sh
[listen]
outbound = 127.0.0.1:$P_OUTBOUND
admin = 127.0.0.1:$P_ADMIN
service.origin = 127.0.0.1:${PORT[mesh]}

[proxy]
; the same idle upstream pool as nginx's "keepalive 1024" (HAProxy keeps all)
max_idle_per_endpoint = 1024

[log]
access_log = off

[service origin]
port = 80
endpoint = 127.0.0.1:$P_ORIGIN
EOF
}

# ---------------------------------------------------------------- start
declare -A RSS_IDLE RSS_BIG SOCKS_BIG RPS_BIG RSS_AFTER NOTE
say "origin on 127.0.0.1:$P_ORIGIN (CPU $CPU_LOAD)"
"${ON_LOAD[@]}" "$TMP/origin" "$P_ORIGIN" >"$TMP/origin.log" 2>&1 &
ORIGIN_PID=$!; PIDS+=("$ORIGIN_PID")
wait_port "$P_ORIGIN" "$ORIGIN_PID" || die "origin did not start: $(cat "$TMP/origin.log")"

LIVE=""
start_target() { # target -> 0 when it answers 200 on its port
	local t=$1 pid code
	case "$t" in
	direct) LIVE="$LIVE direct"; return 0 ;;
	haproxy)
		write_haproxy
		haproxy -c -q -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 || { NOTE[$t]="config rejected: $(head -3 "$TMP/haproxy.log")"; return 1; }
		"${ON_PROXY[@]}" haproxy -db -f "$TMP/haproxy.cfg" >>"$TMP/haproxy.log" 2>&1 &
		pid=$!; HAPROXY_PID=$pid ;;
	nginx)
		write_nginx
		"${ON_PROXY[@]}" nginx -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" >"$TMP/nginx.log" 2>&1 &
		pid=$!; NGINX_PID=$pid ;;
	mesh)
		if [ ! -x "$MESH" ]; then NOTE[$t]="no binary at $MESH (./build.sh first)"; return 1; fi
		write_mesh
		"${ON_PROXY[@]}" "$MESH" proxy -c "$TMP/proxy.ini" >"$TMP/mesh.log" 2>&1 &
		pid=$!; MESH_PID=$pid ;;
	esac
	PIDS+=("$pid")
	if ! wait_port "${PORT[$t]}" "$pid"; then
		NOTE[$t]="did not start: $(tail -3 "$TMP/$t.log" 2>/dev/null | tr '\n' ' ')"
		return 1
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: origin' "http://127.0.0.1:${PORT[$t]}/" || true)
	if [ "$code" != 200 ]; then
		NOTE[$t]="answers $code instead of 200: $(tail -3 "$TMP/$t.log" 2>/dev/null | tr '\n' ' ')"
		return 1
	fi
	LIVE="$LIVE $t"
}
for t in $TARGETS; do
	if start_target "$t"; then
		sleep 0.5   # settle before the idle reading
		[ "$t" = direct ] || RSS_IDLE[$t]=$(rss_kb $(pids_of "$t"))
		say "$t on 127.0.0.1:${PORT[$t]}${RSS_IDLE[$t]:+, idle RSS ${RSS_IDLE[$t]} kB}"
	else
		say "$t: NOT MEASURED - ${NOTE[$t]}"
	fi
done
LIVE=${LIVE# }
[ -n "$LIVE" ] || [ "$DO_PROXY" = 0 ] || die "no target could be started"
N_LIVE=$(echo "$LIVE" | wc -w)

# ================================================================ suite: proxy
# (not re-indented: everything down to "suite: routing" runs only with the proxy suite)
if [ "$DO_PROXY" = 1 ]; then
T_SUITE=$SECONDS
# ---------------------------------------------------------------- wrk rounds
URL_PATH=/
run_wrk() { # target conns secs outfile -> wrk output in outfile, "user sys" in outfile.time
	local TIMEFORMAT='%U %S'
	{ time "${ON_LOAD[@]}" wrk -t1 -c"$2" -d"${3}s" --latency -H 'Host: origin' \
		"http://127.0.0.1:${PORT[$1]}$URL_PATH" >"$4" 2>&1; } 2>"$4.time" || true
}

say "warm-up: wrk ${WARM}s per target"
for t in $LIVE; do run_wrk "$t" "$CONNS" "$WARM" "$TMP/warm-$t.txt"; done

say "throughput: wrk -t1 -c$CONNS -d${DUR}s --latency, $REPS round(s) interleaved over: $LIVE"
declare -A RPS P50 P99 ERRS CPU_P CPU_W CPU_O CPU0 CPU1 STEAL OTHER
rot=0
for r in $(seq 1 "$REPS"); do
	# rotate the order each round so no target always follows the same one
	order=$(echo "$LIVE" | tr ' ' '\n' | awk -v k="$rot" -v n="$N_LIVE" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	rot=$((rot + 1))
	for t in $order; do
		out=$TMP/wrk-$t-$r.txt
		ppids=$(pids_of "$t")
		p0=$(cpu_ticks $ppids); o0=$(cpu_ticks "$ORIGIN_PID")
		read -r b0 s0 t0 < <(cpu_stat "$CPU_LOAD"); read -r b1 s1 u1 < <(cpu_stat "$CPU_PROXY")
		run_wrk "$t" "$CONNS" "$DUR" "$out"
		p1=$(cpu_ticks $ppids); o1=$(cpu_ticks "$ORIGIN_PID")
		read -r b0e s0e t0e < <(cpu_stat "$CPU_LOAD"); read -r b1e s1e u1e < <(cpu_stat "$CPU_PROXY")
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		p50=$(awk '$1 == "50%" { print $2 }' "$out"); p99=$(awk '$1 == "99%" { print $2 }' "$out")
		errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } END { print e + 0 }' "$out")
		wcpu=$(awk -v d="$DUR" '{ printf "%.0f", 100 * ($1 + $2) / d }' "$out.time")
		RPS[$t]+="${rps:-0} "; P50[$t]+="$(to_us "${p50:-0}") "; P99[$t]+="$(to_us "${p99:-0}") "
		ERRS[$t]=$(( ${ERRS[$t]:-0} + errs ))
		CPU_W[$t]+="$wcpu "
		CPU_P[$t]+="$(pct $((p1 - p0)) $((DUR * TICK))) "
		CPU_O[$t]+="$(pct $((o1 - o0)) $((DUR * TICK))) "
		CPU0[$t]+="$(pct $((b0e - b0)) $((t0e - t0))) "; CPU1[$t]+="$(pct $((b1e - b1)) $((u1e - u1))) "
		STEAL[$t]+="$(pct $((s0e - s0 + s1e - s1)) $((t0e - t0 + u1e - u1))) "
		# CPU used by anything else on the machine (other users' builds, kernel threads)
		other=$(( $(pct $((b0e - b0)) $((t0e - t0))) + $(pct $((b1e - b1)) $((u1e - u1))) - wcpu \
			- $(pct $((o1 - o0)) $((DUR * TICK))) - $( [ "$t" = direct ] && echo 0 || pct $((p1 - p0)) $((DUR * TICK))) ))
		[ "$other" -ge 0 ] || other=0
		OTHER[$t]+="$other "
		printf '    round %d %-8s %10s req/s  p50 %6s us  p99 %6s us  errors %s  cpu: wrk %s%% origin %s%% proxy %s%% other %s%%\n' \
			"$r" "$t" "${rps:-?}" "$(to_us "${p50:-0}")" "$(to_us "${p99:-0}")" "$errs" "$wcpu" \
			"$(pct $((o1 - o0)) $((DUR * TICK)))" "$( [ "$t" = direct ] && echo - || pct $((p1 - p0)) $((DUR * TICK)))" "$other"
	done
done

# ---------------------------------------------------------------- fixed rate
# Two placements. As pinned above (proxy on CPU 1): every hop crosses CPUs, and on a
# VM an idle vCPU's wake-up goes through the hypervisor, which is most of what a proxy
# seems to add at a low rate. Then with the proxy moved onto CPU 0 beside rate.c and
# the origin: no cross-CPU wake-ups, so the difference to direct is the proxy's own
# work plus two loopback hops. Direct is the same in both (client and origin on CPU 0).
declare -A FP50 FP99 FMAX FERR FLATE SP50 SP99
XP50="" XP99=""
is_live() { case " $LIVE " in *" $1 "*) return 0 ;; esac; return 1; }
rate_round() { # target outfile -> "p50 p99 max errors" or "" on failure
	"${ON_LOAD[@]}" "$TMP/rate" -p "${PORT[$1]}" -H origin -r "$RATE" -d "$RATE_DUR" \
		-w "$RATE_WARM" -c "$RATE_CONNS" >"$2" 2>&1 || true
	tail -1 "$2" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END { if ("sent" in v) print v["p50_us"], v["p99_us"], v["max_us"], v["errors"] }'
}
pin() { # cpu target
	local p
	for p in $(pids_of "$2"); do taskset -a -p -c "$1" "$p" >/dev/null 2>&1 || true; done
}
say "latency at a fixed $RATE req/s: rate.c, $RATE_CONNS connections, ${RATE_DUR}s (+${RATE_WARM}s warm-up), $REPS round(s)"
rot=0
for r in $(seq 1 "$REPS"); do
	order=$(echo "$LIVE" | tr ' ' '\n' | awk -v k="$rot" -v n="$N_LIVE" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	rot=$((rot + 1))
	for t in $order; do
		out=$TMP/rate-$t-$r.txt
		res=$(rate_round "$t" "$out")
		if [ -z "$res" ]; then echo "    rate.c failed for $t: $(tail -1 "$out")"; continue; fi
		read -r a b c d <<<"$res"
		FP50[$t]+="$a "; FP99[$t]+="$b "; FMAX[$t]+="$c "; FERR[$t]=$(( ${FERR[$t]:-0} + d ))
		FLATE[$t]+="$(awk '/lateness/ { sub("p99=", "", $5); print $5 }' "$out") "
		printf '    round %d %-8s p50 %7s us  p99 %7s us  max %8s us  errors %s\n' "$r" "$t" "$a" "$b" "$c" "$d"
	done
done
say "the same with the proxy moved to CPU $CPU_LOAD (no cross-CPU wake-ups), direct measured again as its baseline"
rot=0
for r in $(seq 1 "$REPS"); do
	order=$(echo "$LIVE" | tr ' ' '\n' | awk -v k="$rot" -v n="$N_LIVE" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
	rot=$((rot + 1))
	for t in $order; do
		# direct again too: its figures in the same minutes are the baseline here
		out=$TMP/rate-same-$t-$r.txt
		[ "$t" = direct ] || pin "$CPU_LOAD" "$t"
		res=$(rate_round "$t" "$out")
		[ "$t" = direct ] || pin "$CPU_PROXY" "$t"
		if [ -z "$res" ]; then echo "    rate.c failed for $t: $(tail -1 "$out")"; continue; fi
		read -r a b c d <<<"$res"
		SP50[$t]+="$a "; SP99[$t]+="$b "; FERR[$t]=$(( ${FERR[$t]:-0} + d ))
		printf '    round %d %-8s p50 %7s us  p99 %7s us  max %8s us  errors %s\n' "$r" "$t" "$a" "$b" "$c" "$d"
	done
done
# The control: no proxy at all, only the origin moved to CPU 1. What this adds over
# direct is the price of crossing CPUs on this machine, the floor under any proxy's
# "added" latency as pinned above.
if is_live direct; then
	say "control: direct with the origin moved to CPU $CPU_PROXY (the cost of crossing CPUs, no proxy)"
	for r in $(seq 1 "$REPS"); do
		pin "$CPU_PROXY" direct
		res=$(rate_round direct "$TMP/rate-xcpu-$r.txt")
		pin "$CPU_LOAD" direct
		[ -n "$res" ] || { echo "    rate.c failed: $(tail -1 "$TMP/rate-xcpu-$r.txt")"; continue; }
		read -r a b c d <<<"$res"
		XP50+="$a "; XP99+="$b "
		printf '    round %d %-8s p50 %7s us  p99 %7s us  max %8s us  errors %s\n' "$r" "direct" "$a" "$b" "$c" "$d"
	done
fi

# ---------------------------------------------------------------- RSS under 1000 connections
say "RSS under $BIG_CONNS keep-alive connections: wrk -t1 -c$BIG_CONNS -d${RSS_DUR}s, VmRSS read mid-run"
for t in $LIVE; do
	[ "$t" = direct ] && continue
	out=$TMP/big-$t.txt
	"${ON_LOAD[@]}" wrk -t1 -c"$BIG_CONNS" -d"${RSS_DUR}s" -H 'Host: origin' \
		"http://127.0.0.1:${PORT[$t]}/" >"$out" 2>&1 &
	wpid=$!; PIDS+=("$wpid")
	sleep "$(awk -v d="$RSS_DUR" 'BEGIN { print d * 0.6 }')"
	RSS_BIG[$t]=$(rss_kb $(pids_of "$t"))
	SOCKS_BIG[$t]=$(sock_count $(pids_of "$t"))
	wait "$wpid" || true
	RPS_BIG[$t]=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
	sleep 0.5
	RSS_AFTER[$t]=$(rss_kb $(pids_of "$t"))
	printf '    %-8s RSS %6s kB with %s sockets open (%s req/s at %s conns); idle again after: %s kB\n' \
		"$t" "${RSS_BIG[$t]}" "${SOCKS_BIG[$t]}" "${RPS_BIG[$t]:-?}" "$BIG_CONNS" "${RSS_AFTER[$t]}"
done

# ---------------------------------------------------------------- syscalls per request
declare -A SYSC
if [ "$SYSCALLS" = 1 ]; then
	need_tools strace:strace
	say "system calls per request: strace -c -f on the proxy during wrk -t1 -c$CONNS -d3s"
	for t in $LIVE; do
		[ "$t" = direct ] && continue
		args=()
		for p in $(pids_of "$t"); do args+=(-p "$p"); done
		strace -c -f -o "$TMP/strace-$t.txt" "${args[@]}" 2>/dev/null &
		spid=$!; PIDS+=("$spid")
		sleep 0.5
		run_wrk "$t" "$CONNS" 3 "$TMP/strace-wrk-$t.txt"
		kill -INT "$spid" 2>/dev/null || true
		wait "$spid" 2>/dev/null || true
		reqs=$(awk '/requests in/ { print $1 }' "$TMP/strace-wrk-$t.txt")
		[ -n "$reqs" ] && [ "$reqs" -gt 0 ] || { echo "    $t: no requests completed under strace"; continue; }
		SYSC[$t]=$(awk -v n="$reqs" '$NF == "total" { printf "%.2f", $4 / n }' "$TMP/strace-$t.txt")
		printf '    %-8s %s syscalls/request over %s requests: %s\n' "$t" "${SYSC[$t]:-?}" "$reqs" \
			"$(awk -v n="$reqs" '$1 ~ /^[0-9.]+$/ && $NF != "total" && $4 / n >= 0.01 {
				printf "%s %.2f%s  ", $NF, $4 / n, (NF == 6 && $5 > 0 ? sprintf(" (%.2f failed)", $5 / n) : "") }' "$TMP/strace-$t.txt")"
	done
fi

say "proxy suite took $((SECONDS - T_SUITE)) s"
fi   # suite: proxy

# ================================================================ suite: routing
# One mesh per case (tests/bench/routes.sh writes its config), all up at once on CPU 1,
# idle except the one being measured. Every request walks the case's rules to the last
# one, which matches; a response header it sets is checked before anything is measured.
declare -A RT_PORT RT_PID RT_HOST RT_NOTE RT_RSS RT_RPS RT_P50 RT_P99 RT_US RT_ERRS RT_OTHER RT_NRULES RT_LOOK
RT_LIVE="" RT_LOOKUP_NOTE=""
RT_HDRS=(-H 'end-user: bench' -H 'accept: */*')
RT_PATH=/api/v1/items
rt_wrk() { # case secs outfile -> wrk output in outfile, "user sys" in outfile.time
	local TIMEFORMAT='%U %S'
	{ time "${ON_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${2}s" --latency -H "Host: ${RT_HOST[$1]}" "${RT_HDRS[@]}" \
		"http://127.0.0.1:${RT_PORT[$1]}$RT_PATH" >"$3" 2>&1; } 2>"$3.time" || true
}
if [ "$DO_ROUTING" = 1 ]; then
	T_SUITE=$SECONDS
	[ -x "$MESH" ] || die "no binary at $MESH (./build.sh first)"
	say "routing cost: one mesh per case on CPU $CPU_PROXY, configs from tests/bench/routes.sh"
	for c in $RT_CASES; do
		kind=${c%%[0-9]*}; n=${c#"$kind"}
		RT_PORT[$c]=$(free_port)
		bash tests/bench/routes.sh "$kind" "$n" "$P_ORIGIN" "${RT_PORT[$c]}" "$(free_port)" >"$TMP/route-$c.ini" \
			|| die "routes.sh $kind $n failed"
		RT_NRULES[$c]=$(grep -c '^\[route ' "$TMP/route-$c.ini")
		if [ "$kind" = lit ]; then RT_HOST[$c]=origin.bench.test; else RT_HOST[$c]=origin; fi
		"${ON_PROXY[@]}" "$MESH" proxy -c "$TMP/route-$c.ini" >"$TMP/route-$c.log" 2>&1 &
		RT_PID[$c]=$!; PIDS+=("${RT_PID[$c]}")
		if ! wait_port "${RT_PORT[$c]}" "${RT_PID[$c]}"; then
			RT_NOTE[$c]="did not start: $(tail -3 "$TMP/route-$c.log" | tr '\n' ' ')"
			say "$c: NOT MEASURED - ${RT_NOTE[$c]}"; continue
		fi
		head=$(curl -s -D - -o /dev/null -H "Host: ${RT_HOST[$c]}" "${RT_HDRS[@]}" \
			"http://127.0.0.1:${RT_PORT[$c]}$RT_PATH" | tr -d '\r' || true)
		if ! echo "$head" | head -1 | grep -q ' 200' || ! echo "$head" | grep -qi '^x-bench-rule: hit$'; then
			RT_NOTE[$c]="the last rule did not match: $(echo "$head" | head -1) $(tail -2 "$TMP/route-$c.log" | tr '\n' ' ')"
			say "$c: NOT MEASURED - ${RT_NOTE[$c]}"; continue
		fi
		sleep 0.3
		RT_RSS[$c]=$(rss_kb "${RT_PID[$c]}")
		RT_LIVE="$RT_LIVE $c"
		say "$c: ${RT_NRULES[$c]} rules, $(grep -c '^\[service ' "$TMP/route-$c.ini") services, port ${RT_PORT[$c]}, Host ${RT_HOST[$c]}, idle RSS ${RT_RSS[$c]} kB"
	done
	RT_LIVE=${RT_LIVE# }
	RT_N=$(echo "$RT_LIVE" | wc -w)
	say "warm-up: wrk ${WARM}s per case"
	for c in $RT_LIVE; do rt_wrk "$c" "$WARM" "$TMP/rt-warm-$c.txt"; done
	say "throughput: wrk -t1 -c$CONNS -d${RT_DUR}s --latency GET $RT_PATH, $RT_REPS round(s) interleaved over: $RT_LIVE"
	rot=0
	for r in $(seq 1 "$RT_REPS"); do
		order=$(echo "$RT_LIVE" | tr ' ' '\n' | awk -v k="$rot" -v n="$RT_N" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
		rot=$((rot + 1))
		for c in $order; do
			out=$TMP/rt-$c-$r.txt
			p0=$(cpu_ticks "${RT_PID[$c]}"); o0=$(cpu_ticks "$ORIGIN_PID")
			read -r b0 s0 t0 < <(cpu_stat "$CPU_LOAD"); read -r b1 s1 u1 < <(cpu_stat "$CPU_PROXY")
			rt_wrk "$c" "$RT_DUR" "$out"
			p1=$(cpu_ticks "${RT_PID[$c]}"); o1=$(cpu_ticks "$ORIGIN_PID")
			read -r b0e s0e t0e < <(cpu_stat "$CPU_LOAD"); read -r b1e s1e u1e < <(cpu_stat "$CPU_PROXY")
			rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
			reqs=$(awk '/requests in/ { print $1 }' "$out")
			p50=$(awk '$1 == "50%" { print $2 }' "$out"); p99=$(awk '$1 == "99%" { print $2 }' "$out")
			errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } END { print e + 0 }' "$out")
			# mesh CPU time per request, this run: ticks -> us, over the requests wrk completed
			us=$(awk -v t=$((p1 - p0)) -v hz="$TICK" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "na" }')
			wcpu=$(awk -v d="$RT_DUR" '{ printf "%.0f", 100 * ($1 + $2) / d }' "$out.time")
			other=$(( $(pct $((b0e - b0)) $((t0e - t0))) + $(pct $((b1e - b1)) $((u1e - u1))) - wcpu \
				- $(pct $((o1 - o0)) $((RT_DUR * TICK))) - $(pct $((p1 - p0)) $((RT_DUR * TICK))) ))
			[ "$other" -ge 0 ] || other=0
			RT_RPS[$c]+="${rps:-0} "; RT_P50[$c]+="$(to_us "${p50:-0}") "; RT_P99[$c]+="$(to_us "${p99:-0}") "
			[ "$us" = na ] || RT_US[$c]+="$us "
			RT_ERRS[$c]=$(( ${RT_ERRS[$c]:-0} + errs ))
			RT_OTHER[$c]+="$other "
			printf '    round %d %-10s %10s req/s  p99 %6s us  mesh %5s us/req (%s%% of CPU %s)  errors %s  other %s%%\n' \
				"$r" "$c" "${rps:-?}" "$(to_us "${p99:-0}")" "$us" "$(pct $((p1 - p0)) $((RT_DUR * TICK)))" \
				"$CPU_PROXY" "$errs" "$other"
		done
	done
	for c in $RT_LIVE; do
		kill -0 "${RT_PID[$c]}" 2>/dev/null || RT_NOTE[$c]="exited during the run: $(tail -3 "$TMP/route-$c.log" | tr '\n' ' ')"
	done
	# The lookup alone, in-process (tests/bench/route_lookup.c): what the rules cost without
	# the network, steady where CPU time per request moves with outside load. Built from
	# this tree's modules/ with the compiler, C library and defines ./mesh is built with.
	if command -v musl-gcc >/dev/null 2>&1 && [ -f .cache/musl/lib/libinih.a ] \
		&& eval "$(sed -n '/^DEP_DEFS=/,/"$/p' build.sh)" && [ -n "${DEP_DEFS:-}" ]; then
		# shellcheck disable=SC2086
		musl-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE \
			$DEP_DEFS -I.cache/musl/include -Imodules -static -o "$TMP/route_lookup" tests/bench/route_lookup.c \
			modules/conf.c modules/route.c modules/http1.c .cache/musl/lib/libinih.a >"$TMP/route_lookup.log" 2>&1 \
			|| RT_LOOKUP_NOTE="route_lookup.c did not build: $(head -3 "$TMP/route_lookup.log" | tr '\n' ' ')"
	else
		RT_LOOKUP_NOTE="no musl-gcc or no .cache/musl (run ./build.sh first): lookup not measured"
	fi
	if [ -z "$RT_LOOKUP_NOTE" ]; then
		say "the lookup alone: route_lookup (conf_find_service + route_match in-process) on CPU $CPU_PROXY, $RT_REPS round(s)"
		for r in $(seq 1 "$RT_REPS"); do
			line=""
			for c in $RT_LIVE; do
				res=$("${ON_PROXY[@]}" "$TMP/route_lookup" "$TMP/route-$c.ini" "${RT_HOST[$c]}" 2>&1 | tail -1)
				ns=$(echo "$res" | tr ' ' '\n' | awk -F= '$1 == "lookup_ns" { print $2 }')
				case "$res" in
				*"rule=${RT_HOST[$c]}/hit") RT_LOOK[$c]+="$ns "; line+="$c $ns  " ;;
				*) echo "    route_lookup $c: $res (expected rule=${RT_HOST[$c]}/hit)" ;;
				esac
			done
			echo "    round $r  ns per lookup: $line"
		done
	else
		say "$RT_LOOKUP_NOTE"
	fi
	say "routing suite took $((SECONDS - T_SUITE)) s"
fi

# ================================================================ suite: lb
# Three endpoints, one slow (origin.c with a delay), the same fixed-rate load through
# one mesh per algorithm. The slow origin counts what it served (SIGUSR1 prints it).
declare -A LB_PORT LB_PID LB_NOTE LB_P50 LB_P99 LB_P999 LB_MAX LB_SHARE LB_ERRS LB_LATE
LB_LIVE=""
slow_served() { # -> requests the slow origin has served so far
	local n0 i
	n0=$(grep -c '^served=' "$TMP/slow.log" 2>/dev/null || true)
	kill -USR1 "$SLOW_PID" 2>/dev/null || { echo na; return; }
	for i in $(seq 1 100); do
		[ "$(grep -c '^served=' "$TMP/slow.log" 2>/dev/null || true)" -gt "${n0:-0}" ] && break
		sleep 0.01
	done
	awk -F= '/^served=/ { v = $2 } END { print (v == "" ? "na" : v) }' "$TMP/slow.log"
}
if [ "$DO_LB" = 1 ]; then
	T_SUITE=$SECONDS
	[ -x "$MESH" ] || die "no binary at $MESH (./build.sh first)"
	P_FAST1=$(free_port); P_FAST2=$(free_port); P_SLOW=$(free_port)
	"${ON_LOAD[@]}" "$TMP/origin" "$P_FAST1" >"$TMP/fast1.log" 2>&1 &
	FAST1_PID=$!; PIDS+=("$FAST1_PID")
	"${ON_LOAD[@]}" "$TMP/origin" "$P_FAST2" >"$TMP/fast2.log" 2>&1 &
	FAST2_PID=$!; PIDS+=("$FAST2_PID")
	"${ON_LOAD[@]}" "$TMP/origin" "$P_SLOW" 13 "$LB_SLOW_US" >"$TMP/slow.log" 2>&1 &
	SLOW_PID=$!; PIDS+=("$SLOW_PID")
	for p in "$P_FAST1:$FAST1_PID" "$P_FAST2:$FAST2_PID" "$P_SLOW:$SLOW_PID"; do
		wait_port "${p%:*}" "${p#*:}" || die "an lb origin did not start (port ${p%:*})"
	done
	say "lb: origins on CPU $CPU_LOAD: fast 127.0.0.1:$P_FAST1, slow (+${LB_SLOW_US} us) 127.0.0.1:$P_SLOW, fast 127.0.0.1:$P_FAST2"
	for c in $LB_CASES; do
		LB_PORT[$c]=$(free_port)
		{
			echo "; written by tests/bench/run.sh (lb suite, case $c)"
			printf '[listen]\noutbound = 127.0.0.1:%s\nadmin = 127.0.0.1:%s\nservice.lb = 127.0.0.1:%s\n\n' \
				"$(free_port)" "$(free_port)" "${LB_PORT[$c]}"
			printf '[proxy]\nmax_idle_per_endpoint = 1024\n\n[log]\naccess_log = off\n\n'
			printf '[service lb]\nport = 80\nendpoint = 127.0.0.1:%s\n' "$P_FAST1"
			[ "$c" = floor ] || printf 'endpoint = 127.0.0.1:%s\n' "$P_SLOW"
			printf 'endpoint = 127.0.0.1:%s\n\n' "$P_FAST2"
			printf '[destination lb]\nload_balancer = %s\n' "${LB_ALGO[$c]}"
		} >"$TMP/lb-$c.ini"
		"${ON_PROXY[@]}" "$MESH" proxy -c "$TMP/lb-$c.ini" >"$TMP/lb-$c.log" 2>&1 &
		LB_PID[$c]=$!; PIDS+=("${LB_PID[$c]}")
		if ! wait_port "${LB_PORT[$c]}" "${LB_PID[$c]}"; then
			LB_NOTE[$c]="did not start: $(tail -3 "$TMP/lb-$c.log" | tr '\n' ' ')"
			say "$c: NOT MEASURED - ${LB_NOTE[$c]}"; continue
		fi
		code=$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: lb' "http://127.0.0.1:${LB_PORT[$c]}/" || true)
		if [ "$code" != 200 ]; then
			LB_NOTE[$c]="answers $code instead of 200: $(tail -2 "$TMP/lb-$c.log" | tr '\n' ' ')"
			say "$c: NOT MEASURED - ${LB_NOTE[$c]}"; continue
		fi
		LB_LIVE="$LB_LIVE $c"
		say "$c: mesh with load_balancer = ${LB_ALGO[$c]} on 127.0.0.1:${LB_PORT[$c]}$([ "$c" = floor ] && echo ' (the two fast endpoints only)')"
	done
	LB_LIVE=${LB_LIVE# }
	LB_N=$(echo "$LB_LIVE" | wc -w)
	say "latency with one slow endpoint: rate.c $LB_RATE req/s, $RATE_CONNS connections, ${LB_DUR}s (+${LB_WARM}s warm-up), $REPS round(s) interleaved"
	rot=0
	for r in $(seq 1 "$REPS"); do
		order=$(echo "$LB_LIVE" | tr ' ' '\n' | awk -v k="$rot" -v n="$LB_N" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }')
		rot=$((rot + 1))
		for c in $order; do
			out=$TMP/lb-rate-$c-$r.txt
			s0=$(slow_served)
			"${ON_LOAD[@]}" "$TMP/rate" -p "${LB_PORT[$c]}" -H lb -r "$LB_RATE" -d "$LB_DUR" \
				-w "$LB_WARM" -c "$RATE_CONNS" >"$out" 2>&1 || true
			s1=$(slow_served)
			# every request rate.c sent, warm-up included, against what the slow one served
			total=$(awk -v r="$LB_RATE" -v d="$LB_DUR" -v w="$LB_WARM" 'BEGIN { printf "%.0f", r * (d + w) }')
			share=$(awk -v a="$s0" -v b="$s1" -v n="$total" 'BEGIN { if (a == "na" || b == "na") print "na"; else printf "%.2f", 100 * (b - a) / n }')
			read -r a50 a99 a999 amax < <(awk '/^latency_us/ { for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
				print v["p50"], v["p99"], v["p999"], v["max"] }' "$out")
			errs=$(tail -1 "$out" | tr ' ' '\n' | awk -F= '$1 == "errors" { print $2 }')
			if [ -z "${a99:-}" ] || [ -z "$errs" ]; then echo "    rate.c failed for $c: $(tail -1 "$out")"; continue; fi
			LB_P50[$c]+="$a50 "; LB_P99[$c]+="$a99 "; LB_P999[$c]+="$a999 "; LB_MAX[$c]+="$amax "
			[ "$share" = na ] || LB_SHARE[$c]+="$share "
			LB_ERRS[$c]=$(( ${LB_ERRS[$c]:-0} + errs ))
			LB_LATE[$c]+="$(awk '/lateness/ { sub("p99=", "", $5); print $5 }' "$out") "
			printf '    round %d %-6s p50 %8s us  p99 %8s us  p99.9 %8s us  max %8s us  to slow %6s%%  errors %s\n' \
				"$r" "$c" "$a50" "$a99" "$a999" "$amax" "$share" "$errs"
		done
	done
	for c in $LB_LIVE; do
		kill -0 "${LB_PID[$c]}" 2>/dev/null || LB_NOTE[$c]="exited during the run: $(tail -3 "$TMP/lb-$c.log" | tr '\n' ' ')"
	done
	say "lb suite took $((SECONDS - T_SUITE)) s"
fi

# ================================================================ suite: mtls
# In its own file: tests/bench/mtls.sh (sourced: it shares everything above).
if [ "$DO_MTLS" = 1 ]; then
	[ -x "$MESH" ] || die "no binary at $MESH (./build.sh first)"
	. tests/bench/mtls.sh
fi

# ================================================================ suite: control
# In its own file: tests/bench/control.sh (sourced, as mtls.sh).
if [ "$DO_CONTROL" = 1 ]; then
	[ -x "$MESH" ] || die "no binary at $MESH (./build.sh first)"
	. tests/bench/control.sh
fi

# ================================================================ suite: tracing
# In its own file: tests/bench/tracing.sh (sourced, as mtls.sh).
if [ "$DO_TRACING" = 1 ]; then
	[ -x "$MESH" ] || die "no binary at $MESH (./build.sh first)"
	. tests/bench/tracing.sh
fi

# ---------------------------------------------------------------- binary size
BIN_BYTES=na
if [ -x "$MESH" ]; then
	strip -o "$TMP/mesh.stripped" "$MESH" && BIN_BYTES=$(stat -c %s "$TMP/mesh.stripped")
fi

# ---------------------------------------------------------------- report
get() { # array-name target -> value or na
	local -n a=$1
	if [ -n "${a[$2]+x}" ] && [ -n "${a[$2]}" ]; then echo "${a[$2]}"; else echo na; fi
}
mget() { local -n a=$1; if [ -n "${a[$2]+x}" ]; then med "${a[$2]}"; else echo na; fi; }
errs_of() { echo $(( $(get ERRS "$1" | sed 's/na/0/') + $(get FERR "$1" | sed 's/na/0/') )); }
# proxy CPU time per request in microseconds: (proxy CPU %) / (req/s), both medians
us_per_req() { awk -v c="$(mget CPU_P "$1")" -v r="$(mget RPS "$1")" 'BEGIN { if (c == "na" || r == "na" || r == 0) print "na"; else printf "%.1f", c / 100 / r * 1e6 }'; }

echo
echo "mesh benchmark $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(. /etc/os-release && echo "$PRETTY_NAME")"
echo "suites: $([ "$DO_PROXY" = 1 ] && printf 'proxy ')$([ "$DO_ROUTING" = 1 ] && printf 'routing ')$([ "$DO_LB" = 1 ] && printf 'lb ')$([ "$DO_MTLS" = 1 ] && printf 'mtls ')$([ "$DO_CONTROL" = 1 ] && printf 'control ')$([ "$DO_TRACING" = 1 ] && printf 'tracing ')(${SECONDS} s); mesh $("$MESH" version 2>/dev/null | head -1)"
if [ "$DO_PROXY" = 1 ]; then   # (not re-indented) the proxy suite's tables and ratios
echo "wrk -t1 -c$CONNS ${DUR}s x $REPS; rate.c $RATE req/s ${RATE_DUR}s x $REPS; medians; proxy on CPU $CPU_PROXY, wrk/rate.c/origin on CPU $CPU_LOAD"
echo
echo "throughput (wrk)                              | CPU busy during the wrk runs, %"
printf '%-8s %9s %7s %7s %6s %6s | %5s %5s | %5s %5s %5s | %5s\n' target "req/s" p50_us p99_us errors "us/req" cpu1 proxy cpu0 wrk origin other
for t in $TARGETS; do
	if ! is_live "$t"; then printf '%-8s not measured: %s\n' "$t" "$(get NOTE "$t")"; continue; fi
	printf '%-8s %9.0f %7s %7s %6s %6s | %5s %5s | %5s %5s %5s | %5s\n' "$t" \
		"$(mget RPS "$t")" "$(mget P50 "$t")" "$(mget P99 "$t")" "$(get ERRS "$t")" "$(us_per_req "$t")" \
		"$(mget CPU1 "$t")" "$( [ "$t" = direct ] && echo - || mget CPU_P "$t")" \
		"$(mget CPU0 "$t")" "$(mget CPU_W "$t")" "$(mget CPU_O "$t")" "$(mget OTHER "$t")"
done
echo "(us/req: the proxy's CPU time per request, user + kernel; cpu0/cpu1: whole CPU busy;"
echo " other: CPU used by processes not in the bench, summed over both CPUs: noise when not ~0)"
echo
echo "latency at $RATE req/s (rate.c), us     | memory, kB (VmRSS)"
printf '%-8s %7s %7s %7s %7s %6s | %8s %8s %7s\n' target p50 p99 p50_1cpu p99_1cpu errors idle "${BIG_CONNS}conn" sockets
for t in $TARGETS; do
	is_live "$t" || continue
	if [ "$t" = direct ]; then
		printf '%-8s %7s %7s %7s %7s %6s | %8s %8s %7s\n' "$t" "$(mget FP50 "$t")" "$(mget FP99 "$t")" \
			"$(mget SP50 "$t")" "$(mget SP99 "$t")" "$(get FERR "$t")" - - -
	else
		printf '%-8s %7s %7s %7s %7s %6s | %8s %8s %7s\n' "$t" "$(mget FP50 "$t")" "$(mget FP99 "$t")" \
			"$(mget SP50 "$t")" "$(mget SP99 "$t")" "$(get FERR "$t")" \
			"$(get RSS_IDLE "$t")" "$(get RSS_BIG "$t")" "$(get SOCKS_BIG "$t")"
	fi
done
echo "(p50/p99: proxy on CPU $CPU_PROXY; *_1cpu: proxy moved to CPU $CPU_LOAD; rss: nginx = master + worker,"
echo " haproxy and mesh = their one process; sockets: held by the proxy mid-run at $BIG_CONNS conns)"
printf 'client send lateness p99 (rate.c timer wake-up, not counted in latency): %s\n' \
	"$(for t in $LIVE; do printf '%s %s us  ' "$t" "$(mget FLATE "$t")"; done)"
printf 'CPU steal during the wrk runs (both CPUs): %s\n' "$(for t in $LIVE; do printf '%s %s%%  ' "$t" "$(mget STEAL "$t")"; done)"

for t in $LIVE; do
	[ "$t" = direct ] && p=$ORIGIN_PID || p=$(pids_of "$t" | awk '{ print $1 }')
	if ! kill -0 "$p" 2>/dev/null; then
		echo "WARNING: $t (pid $p) exited during the run; the last lines of its log:"
		tail -5 "$TMP/$t.log" 2>/dev/null | sed 's/^/    /'
	fi
done
echo
echo "ratios and differences (of medians):"
RD=$(mget RPS direct); RM=$(mget RPS mesh); RH=$(mget RPS haproxy); RN=$(mget RPS nginx)
FD=$(mget FP99 direct); FD50=$(mget FP50 direct); SD=$(mget SP99 direct); SD50=$(mget SP50 direct)
added() { diff_us "$(mget "$1" "$2")" "$3"; }
printf '  req/s         mesh/haproxy %s   mesh/nginx %s   mesh/direct %s   haproxy/direct %s   nginx/direct %s\n' \
	"$(ratio "$RM" "$RH")" "$(ratio "$RM" "$RN")" "$(ratio "$RM" "$RD")" "$(ratio "$RH" "$RD")" "$(ratio "$RN" "$RD")"
printf '  CPU us/req    mesh %s   haproxy %s   nginx %s   (mesh/haproxy %s, mesh/nginx %s; below 1: mesh is cheaper)\n' \
	"$(us_per_req mesh)" "$(us_per_req haproxy)" "$(us_per_req nginx)" \
	"$(ratio "$(us_per_req mesh)" "$(us_per_req haproxy)")" "$(ratio "$(us_per_req mesh)" "$(us_per_req nginx)")"
printf '  added p99 at %s req/s vs direct, us:   mesh %s   haproxy %s   nginx %s\n' "$RATE" \
	"$(added FP99 mesh "$FD")" "$(added FP99 haproxy "$FD")" "$(added FP99 nginx "$FD")"
printf '  added p50 at %s req/s vs direct, us:   mesh %s   haproxy %s   nginx %s\n' "$RATE" \
	"$(added FP50 mesh "$FD50")" "$(added FP50 haproxy "$FD50")" "$(added FP50 nginx "$FD50")"
printf '  control, no proxy, origin on CPU %s: added p50 %s  p99 %s  (the cost of crossing CPUs here)\n' "$CPU_PROXY" \
	"$(diff_us "$(med "$XP50")" "$FD50")" "$(diff_us "$(med "$XP99")" "$FD")"
printf '  same, proxy on CPU %s: added p99   mesh %s   haproxy %s   nginx %s\n' "$CPU_LOAD" \
	"$(added SP99 mesh "$SD")" "$(added SP99 haproxy "$SD")" "$(added SP99 nginx "$SD")"
printf '  same, proxy on CPU %s: added p50   mesh %s   haproxy %s   nginx %s\n' "$CPU_LOAD" \
	"$(added SP50 mesh "$SD50")" "$(added SP50 haproxy "$SD50")" "$(added SP50 nginx "$SD50")"
fi   # the proxy suite's tables
# ---------------------------------------------------------------- report: routing
rmed() { local -n a=$1; if [ -n "${a[$2]+x}" ] && [ -n "${a[$2]}" ]; then med "${a[$2]}"; else echo na; fi; }
rt_ratio() { ratio "$(rmed "$1" "$2")" "$(rmed "$1" rules1)"; }
# extra mesh CPU per rule walked, ns: (us/req of the case - us/req of rules1) / extra rules
rt_ns_per_rule() { awk -v a="$(rmed RT_US "$1")" -v b="$(rmed RT_US rules1)" -v n="$2" \
	'BEGIN { if (a == "na" || b == "na" || n <= 0) print "na"; else printf "%.0f", (a - b) * 1000 / n }'; }
# the ratios round by round (values are appended one per round, in round order)
rt_rounds() { local -n a=$1; [ -n "${a[$2]:-}" ] || { echo "na "; return; }; paste -d' ' <(echo "${a[$2]:-}" | tr ' ' '\n' | awk NF) <(echo "${a[rules1]:-}" | tr ' ' '\n' | awk NF) \
	| awk '{ printf "%.2f ", ($2 > 0 ? $1 / $2 : 0) }'; }
# the same from the in-process lookup times
rt_look_per() { awk -v a="$(rmed RT_LOOK "$1")" -v b="$(rmed RT_LOOK rules1)" -v n="$2" \
	'BEGIN { if (a == "na" || b == "na" || n <= 0) print "na"; else printf "%.1f", (a - b) / n }'; }
# req/s ratio to rules1 when mesh's CPU is the only limit: us1 / (us1 + extra lookup us)
rt_predict() { awk -v u="$(rmed RT_US rules1)" -v a="$(rmed RT_LOOK "$1")" -v b="$(rmed RT_LOOK rules1)" \
	'BEGIN { if (u == "na" || a == "na" || b == "na" || u <= 0) print "na"; else printf "%.2f", u / (u + (a - b) / 1000) }'; }
rt_desc() {
	case "$1" in
	rules1) echo "1 rule on host origin, it matches" ;;
	rules*) echo "${1#rules} rules on host origin, the last matches" ;;
	regex*) echo "${1#regex} rules on origin, $((${1#regex} - 1)) whole-path regexes miss" ;;
	walk*) echo "${1#walk} rules on origin, $((${1#walk} - 1)) not indexable, all walked" ;;
	hosts*) echo "${1#hosts} services, 1 rule each; origin's is last" ;;
	lit*) echo "${1#lit} literal hosts, 1 rule each; ours is last" ;;
	esac
}
if [ "$DO_ROUTING" = 1 ]; then
	echo
	echo "routing cost (wrk -t1 -c$CONNS ${RT_DUR}s x $RT_REPS, GET $RT_PATH via the outbound listener; medians; mesh on CPU $CPU_PROXY)"
	printf '%-10s %9s %7s %7s %6s %7s %6s %9s %8s | %5s  %s\n' case "req/s" p50_us p99_us errors "us/req" "vs 1" lookup_ns rss_kb other what
	for c in $RT_CASES; do
		if ! in_list "$c" "$RT_LIVE"; then
			printf '%-10s not measured: %s\n' "$c" "${RT_NOTE[$c]}"; continue
		fi
		printf '%-10s %9.0f %7s %7s %6s %7s %6s %9s %8s | %5s  %s\n' "$c" "$(rmed RT_RPS "$c")" "$(rmed RT_P50 "$c")" \
			"$(rmed RT_P99 "$c")" "${RT_ERRS[$c]:-na}" "$(rmed RT_US "$c")" "$(rt_ratio RT_US "$c")" \
			"$(rmed RT_LOOK "$c")" "${RT_RSS[$c]:-na}" "$(rmed RT_OTHER "$c")" "$(rt_desc "$c")"
		[ -z "${RT_NOTE[$c]+x}" ] || echo "    WARNING: $c ${RT_NOTE[$c]}"
	done
	echo "(us/req: mesh CPU time per request, user + kernel, median of the rounds; vs 1: that over rules1's;"
	echo " lookup_ns: conf_find_service + route_match alone, in-process (route_lookup.c), median;"
	echo " rss_kb: idle VmRSS with that config loaded; other: CPU used outside the bench, % of a CPU)"
	[ -z "$RT_LOOKUP_NOTE" ] || echo "($RT_LOOKUP_NOTE)"
	echo
	echo "ratios to the 1-rule case (of medians; req/s target from issue 3: 1,000 rules >= 0.90):"
	printf '  req/s        100 rules %s   1000 rules %s   1000 walked %s   1000 hosts %s   1000 literal hosts %s   100 regex %s\n' \
		"$(rt_ratio RT_RPS rules100)" "$(rt_ratio RT_RPS rules1000)" "$(rt_ratio RT_RPS walk1000)" "$(rt_ratio RT_RPS hosts1000)" \
		"$(rt_ratio RT_RPS lit1000)" "$(rt_ratio RT_RPS regex100)"
	printf '  p99          100 rules %s   1000 rules %s   1000 walked %s   1000 hosts %s   1000 literal hosts %s   100 regex %s\n' \
		"$(rt_ratio RT_P99 rules100)" "$(rt_ratio RT_P99 rules1000)" "$(rt_ratio RT_P99 walk1000)" "$(rt_ratio RT_P99 hosts1000)" \
		"$(rt_ratio RT_P99 lit1000)" "$(rt_ratio RT_P99 regex100)"
	printf '  CPU us/req   100 rules %s   1000 rules %s   1000 walked %s   1000 hosts %s   1000 literal hosts %s   100 regex %s\n' \
		"$(rt_ratio RT_US rules100)" "$(rt_ratio RT_US rules1000)" "$(rt_ratio RT_US walk1000)" "$(rt_ratio RT_US hosts1000)" \
		"$(rt_ratio RT_US lit1000)" "$(rt_ratio RT_US regex100)"
	printf '  per round, against rules1 in the same round: req/s 100 rules %s| 1000 rules %s| CPU 1000 rules %s\n' \
		"$(rt_rounds RT_RPS rules100)" "$(rt_rounds RT_RPS rules1000)" "$(rt_rounds RT_US rules1000)"
	printf '  mesh CPU per extra rule, ns: 1000 rules %s   1000 walked %s   per extra host: 1000 hosts %s, 1000 literal hosts %s   per regex rule: %s\n' \
		"$(rt_ns_per_rule rules1000 999)" "$(rt_ns_per_rule walk1000 999)" "$(rt_ns_per_rule hosts1000 999)" \
		"$(rt_ns_per_rule lit1000 999)" "$(rt_ns_per_rule regex100 99)"
	printf '  the lookup alone, ns per extra rule: 1000 rules %s   1000 walked %s   per extra host: 1000 hosts %s, 1000 literal hosts %s   per regex rule: %s\n' \
		"$(rt_look_per rules1000 999)" "$(rt_look_per walk1000 999)" "$(rt_look_per hosts1000 999)" "$(rt_look_per lit1000 999)" "$(rt_look_per regex100 99)"
	printf '  req/s ratio if mesh were the only limit (rules1 us/req + the extra lookup time): 100 rules %s   1000 rules %s   1000 walked %s   1000 hosts %s   100 regex %s\n' \
		"$(rt_predict rules100)" "$(rt_predict rules1000)" "$(rt_predict walk1000)" "$(rt_predict hosts1000)" "$(rt_predict regex100)"
fi

# ---------------------------------------------------------------- report: lb
lb_ratio() { ratio "$(rmed "$1" "$2")" "$(rmed "$1" "$3")"; }
if [ "$DO_LB" = 1 ]; then
	echo
	echo "load balancing, one slow endpoint of three (+${LB_SLOW_US} us; rate.c $LB_RATE req/s, $RATE_CONNS conns, ${LB_DUR}s x $REPS; medians; us)"
	printf '%-6s %-14s %8s %8s %8s %9s %8s %6s\n' case load_balancer p50 p99 p99.9 max to_slow errors
	for c in $LB_CASES; do
		if ! in_list "$c" "$LB_LIVE"; then
			printf '%-6s not measured: %s\n' "$c" "${LB_NOTE[$c]:-}"; continue
		fi
		printf '%-6s %-14s %8s %8s %8s %9s %7s%% %6s\n' "$c" "${LB_ALGO[$c]}" "$(rmed LB_P50 "$c")" "$(rmed LB_P99 "$c")" \
			"$(rmed LB_P999 "$c")" "$(rmed LB_MAX "$c")" "$(rmed LB_SHARE "$c")" "${LB_ERRS[$c]:-na}"
		[ -z "${LB_NOTE[$c]+x}" ] || echo "    WARNING: $c ${LB_NOTE[$c]}"
	done
	echo "(to_slow: share of all requests of a run, warm-up included, that the slow endpoint served; round robin"
	echo " gives it 33.3%. floor: round robin over the two fast endpoints only, no slow one: this machine's floor)"
	printf 'client send lateness p99 (not counted in latency): %s\n' \
		"$(for c in $LB_LIVE; do printf '%s %s us  ' "$c" "$(rmed LB_LATE "$c")"; done)"
	printf '  p99   ewma/rr %s (target from issue 3: <= 0.5)   lr/rr %s   ewma/floor %s\n' \
		"$(lb_ratio LB_P99 ewma rr)" "$(lb_ratio LB_P99 lr rr)" "$(lb_ratio LB_P99 ewma floor)"
	printf '  p50   ewma/rr %s   lr/rr %s   ewma/floor %s\n' \
		"$(lb_ratio LB_P50 ewma rr)" "$(lb_ratio LB_P50 lr rr)" "$(lb_ratio LB_P50 ewma floor)"
fi

[ "$DO_MTLS" = 1 ] && mtls_report
[ "$DO_CONTROL" = 1 ] && control_report
[ "$DO_TRACING" = 1 ] && tracing_report

# ---------------------------------------------------------------- key=value figures, every suite
echo
if [ "$DO_PROXY" = 1 ]; then   # (not re-indented)
for t in direct mesh haproxy nginx; do
	printf 'rps_%s=%s\n' "$t" "$(mget RPS "$t" | awk '{ if ($1 == "na") print "na"; else printf "%.0f\n", $1 }')"
done
for t in direct mesh haproxy nginx; do printf 'p50_us_%s=%s\np99_us_%s=%s\n' "$t" "$(mget P50 "$t")" "$t" "$(mget P99 "$t")"; done
for t in mesh haproxy nginx; do printf 'cpu_us_per_req_%s=%s\n' "$t" "$(us_per_req "$t")"; done
for t in direct mesh haproxy nginx; do printf 'fixed_rate_p99_us_%s=%s\n' "$t" "$(mget FP99 "$t")"; done
for t in haproxy nginx; do
	printf 'added_p99_us_fixed_rate_%s=%s\n' "$t" "$(added FP99 "$t" "$FD")"
	printf 'added_p99_us_fixed_rate_1cpu_%s=%s\n' "$t" "$(added SP99 "$t" "$SD")"
	printf 'rss_idle_kb_%s=%s\nrss_1000conn_kb_%s=%s\n' "$t" "$(get RSS_IDLE "$t")" "$t" "$(get RSS_BIG "$t")"
done
printf 'added_p99_us_fixed_rate_1cpu=%s\n' "$(added SP99 mesh "$SD")"
printf 'added_p99_us_cross_cpu_control=%s\n' "$(diff_us "$(med "$XP99")" "$FD")"
if [ "$SYSCALLS" = 1 ]; then for t in mesh haproxy nginx; do printf 'syscalls_per_req_%s=%s\n' "$t" "$(get SYSC "$t")"; done; fi
fi
# errors of every suite that ran
printf 'errors_total=%s\n' "$( { for t in $LIVE; do errs_of "$t"; done
	for c in $RT_LIVE; do echo "${RT_ERRS[$c]:-0}"; done
	for c in $LB_LIVE; do echo "${LB_ERRS[$c]:-0}"; done
	if [ "$DO_MTLS" = 1 ]; then mt_errors; fi
	if [ "$DO_CONTROL" = 1 ]; then ct_errors; fi
	if [ "$DO_TRACING" = 1 ]; then tr_errors; fi; } | awk '{ s += $1 } END { print s + 0 }')"
if [ "$DO_PROXY" = 1 ]; then
printf 'cpu_per_req_ratio_haproxy=%s\n' "$(ratio "$(us_per_req mesh)" "$(us_per_req haproxy)")"
printf 'cpu_per_req_ratio_nginx=%s\n' "$(ratio "$(us_per_req mesh)" "$(us_per_req nginx)")"
printf 'rps_ratio_haproxy=%s\n' "$(ratio "$RM" "$RH")"
printf 'rps_ratio_nginx=%s\n' "$(ratio "$RM" "$RN")"
printf 'p99_us_mesh=%s\n' "$(mget P99 mesh)"
printf 'added_p99_us_fixed_rate=%s\n' "$(added FP99 mesh "$FD")"
printf 'rss_idle_kb=%s\n' "$(get RSS_IDLE mesh)"
printf 'rss_1000conn_kb=%s\n' "$(get RSS_BIG mesh)"
printf 'binary_bytes=%s\n' "$BIN_BYTES"
fi   # the proxy suite's figures
if [ "$DO_ROUTING" = 1 ]; then
	for c in $RT_CASES; do
		case "$c" in rules*) sfx=${c#rules} ;; *) sfx=$c ;; esac
		printf 'route_rps_%s=%s\n' "$sfx" "$(rmed RT_RPS "$c" | awk '{ if ($1 == "na") print "na"; else printf "%.0f\n", $1 }')"
		printf 'route_p99_us_%s=%s\n' "$sfx" "$(rmed RT_P99 "$c")"
		printf 'route_cpu_us_per_req_%s=%s\n' "$sfx" "$(rmed RT_US "$c")"
		printf 'route_rss_kb_%s=%s\n' "$sfx" "${RT_RSS[$c]:-na}"
		printf 'route_lookup_ns_%s=%s\n' "$sfx" "$(rmed RT_LOOK "$c")"
	done
	for c in rules100 rules1000 walk1000 hosts1000 lit1000 regex100; do
		case "$c" in rules*) sfx=${c#rules} ;; *) sfx=$c ;; esac
		printf 'route_p99_ratio_%s=%s\n' "$sfx" "$(rt_ratio RT_P99 "$c")"
		printf 'route_cpu_ratio_%s=%s\n' "$sfx" "$(rt_ratio RT_US "$c")"
		[ "$c" = rules1000 ] || printf 'route_rps_ratio_%s=%s\n' "$sfx" "$(rt_ratio RT_RPS "$c")"
	done
	printf 'route_ns_per_rule=%s\n' "$(rt_ns_per_rule rules1000 999)"
	printf 'route_ns_per_walked_rule=%s\n' "$(rt_ns_per_rule walk1000 999)"
	printf 'route_ns_per_service=%s\n' "$(rt_ns_per_rule hosts1000 999)"
	printf 'route_ns_per_literal_host=%s\n' "$(rt_ns_per_rule lit1000 999)"
	printf 'route_ns_per_regex_rule=%s\n' "$(rt_ns_per_rule regex100 99)"
	printf 'route_lookup_ns_per_rule=%s\n' "$(rt_look_per rules1000 999)"
	printf 'route_lookup_ns_per_walked_rule=%s\n' "$(rt_look_per walk1000 999)"
	printf 'route_lookup_ns_per_service=%s\n' "$(rt_look_per hosts1000 999)"
	printf 'route_lookup_ns_per_literal_host=%s\n' "$(rt_look_per lit1000 999)"
	printf 'route_lookup_ns_per_regex_rule=%s\n' "$(rt_look_per regex100 99)"
	printf 'route_rps_ratio_1000_cpu_bound=%s\n' "$(rt_predict rules1000)"
	printf 'route_errors=%s\n' "$(for c in $RT_LIVE; do echo "${RT_ERRS[$c]:-0}"; done | awk '{ s += $1 } END { print s + 0 }')"
	printf 'route_rps_ratio_1000=%s\n' "$(rt_ratio RT_RPS rules1000)"
fi
if [ "$DO_LB" = 1 ]; then
	printf 'lb_slow_us=%s\n' "$LB_SLOW_US"
	for c in $LB_CASES; do
		printf '%s_p50_us=%s\n%s_p99_us=%s\n%s_slow_share_pct=%s\n' "$c" "$(rmed LB_P50 "$c")" \
			"$c" "$(rmed LB_P99 "$c")" "$c" "$(rmed LB_SHARE "$c")"
	done
	printf 'lr_rr_p99_ratio=%s\n' "$(lb_ratio LB_P99 lr rr)"
	printf 'lb_errors=%s\n' "$(for c in $LB_LIVE; do echo "${LB_ERRS[$c]:-0}"; done | awk '{ s += $1 } END { print s + 0 }')"
	printf 'ewma_rr_p99_ratio=%s\n' "$(lb_ratio LB_P99 ewma rr)"
fi
[ "$DO_MTLS" = 1 ] && mtls_figures
[ "$DO_CONTROL" = 1 ] && control_figures
[ "$DO_TRACING" = 1 ] && tracing_figures
exit 0
