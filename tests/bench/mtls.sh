# tests/bench/mtls.sh - the mtls suite of tests/bench/run.sh (issue 4), sourced by it:
# it uses run.sh's helpers, temp dir, origin, pinning and cleanup. docs/benchmarks.md,
# "mTLS", says why it measures what it does.
#
# Two hops, four ways, each pair of proxies on CPU 1 (one worker each), load and the
# origin on CPU 0:
#   mesh       client -> mesh (outbound) -> mTLS -> mesh (inbound, STRICT) -> origin
#   meshplain  the same two mesh proxies without identities: plaintext between them
#   haproxy    client -> HAProxy A -> TLS 1.3, client certificate, verified both ways
#              -> HAProxy B -> origin (the certificates come from the same `mesh ca`)
#   haproxyplain  the same two HAProxy instances, plaintext between them
#   direct     client -> origin
# Measured, rounds interleaved over the targets:
#   1. req/s: wrk -t1 -c50, 1 KiB POST bodies, reused connections; the pair's CPU/req;
#      latency: rate.c at 1,000 req/s with 1 KiB bodies -> p50/p99, added p99 vs direct,
#      in three placements: everything on CPU 0 (the target figure), each proxy beside
#      its application, and both proxies on CPU 1 (see "fixed rate" below);
#   2. full handshakes/s: tests/bench/tlsload.c `hs` (mbedTLS client, no resumption,
#      one request per connection) against mesh's inbound port and HAProxy B's;
#      the server's CPU time per handshake;
#   3. signatures/s: tlsload `sign`, concurrent POST /v1/sign to `mesh ca` (CPU 1)
#      over kept-alive TLS connections;
#   4. memory per idle connection: tlsload `idle` opens MT_IDLE_N client connections
#      and sends one request on each while the origin is stopped (SIGSTOP), so every
#      request needs its own hop connection; the origin resumes, all answer, all sit
#      idle; (RSS after - RSS before) / hop connections opened, for each proxy.

MT_TARGETS="direct mesh meshplain haproxy haproxyplain"
MT_PAIRS="mesh meshplain haproxy haproxyplain"
MT_BODY=1024        # request body bytes, throughput and fixed-rate runs
MT_IDLE_N=${BENCH_IDLE_CONNS:-1000}
MT_HS_CONNS=8       # tlsload hs / sign concurrency
MT_TD=cluster.local
if [ "$QUICK" = 1 ]; then MT_DUR=3 MT_HS_DUR=2; else MT_DUR=8 MT_HS_DUR=4; fi
T_SUITE=$SECONDS
MT=$TMP/mtls
mkdir -p "$MT"
declare -A MT_PORT MT_HOP MT_PIDS MT_NOTE MT_RPS MT_P50 MT_P99 MT_ERRS MT_US MT_FERR MT_LATE
declare -A MT_LP50 MT_LP99   # latency p50 / p99 rounds by "placement target"
declare -A MT_HS MT_HS_CPU MT_HS_P99 MT_HS_ERRS MT_IDLE_KB MT_IDLE_CONNS MT_IDLE_RSS0 MT_IDLE_RSS1 MT_IDLE_NOTE
MT_LIVE="" MT_SIGN="" MT_SIGN_CPU="" MT_SIGN_P99="" MT_SIGN_ERRS=0 MT_NOTE_ALL=""

mt_note() { MT_NOTE[$1]=$2; say "mtls: $1: NOT MEASURED - $2"; }
mt_pids() { [ "$1" = direct ] && echo "$ORIGIN_PID" || echo "${MT_PIDS[$1]:-}"; }
mt_conns_to() { # port -> established TCP connections whose remote end is 127.0.0.1:port
	local hex
	hex=$(printf '%04X' "$1")
	awk -v h=":$hex" 'NR > 1 && $4 == "01" && substr($3, length($3) - 4) == h { n++ } END { print n + 0 }' /proc/net/tcp
}

# ---------------------------------------------------------------- the CA, identities, certificates
P_CA=$(free_port)
"$MESH" ca init --dir "$MT/ca" >"$MT/ca-init.log" 2>&1 || die "mesh ca init failed: $(tail -2 "$MT/ca-init.log")"
sed -i "s/^listen = .*/listen = 127.0.0.1:$P_CA/" "$MT/ca/ca.ini"
grep -q "^listen = 127.0.0.1:$P_CA" "$MT/ca/ca.ini" || printf 'listen = 127.0.0.1:%s\n' "$P_CA" >>"$MT/ca/ca.ini"
"${ON_PROXY[@]}" "$MESH" ca -c "$MT/ca/ca.ini" >"$MT/ca.log" 2>&1 &
CA_PID=$!; PIDS+=("$CA_PID")
wait_port "$P_CA" "$CA_PID" || die "mesh ca did not start: $(tail -3 "$MT/ca.log")"
for sa in client hello bench haproxy-a haproxy-b; do
	"$MESH" ca token --dir "$MT/ca" --ns default --sa "$sa" >"$MT/$sa.token" 2>/dev/null || die "mesh ca token failed"
done
for sa in bench haproxy-a haproxy-b; do   # PEM files for HAProxy and tlsload
	"$MESH" cert request --ca "127.0.0.1:$P_CA" --trust-bundle "$MT/ca/root.crt" --ns default --sa "$sa" \
		--token-file "$MT/$sa.token" --out "$MT/$sa" >"$MT/cert-$sa.log" 2>&1 \
		|| die "mesh cert request for $sa failed: $(tail -2 "$MT/cert-$sa.log")"
	cat "$MT/$sa.crt" "$MT/$sa.key" >"$MT/$sa.pem"
done

# ---------------------------------------------------------------- tlsload (mbedTLS client)
MT_TLSLOAD_NOTE=""
if command -v musl-gcc >/dev/null 2>&1 && [ -f .cache/musl/lib/libmbedtls.a ] \
	&& eval "$(sed -n '/^DEP_DEFS=/,/"$/p' build.sh)" && [ -n "${DEP_DEFS:-}" ]; then
	# shellcheck disable=SC2086
	musl-gcc -std=gnu11 -O2 -Wall -Wextra -Werror -Wno-unused-parameter -fno-strict-aliasing -D_GNU_SOURCE \
		$DEP_DEFS -I.cache/musl/include -Imodules -static -o "$MT/tlsload" tests/bench/tlsload.c modules/tls.c \
		.cache/musl/lib/libmbedtls.a .cache/musl/lib/libmbedx509.a .cache/musl/lib/libmbedcrypto.a \
		>"$MT/tlsload.log" 2>&1 || MT_TLSLOAD_NOTE="tlsload.c did not build: $(head -3 "$MT/tlsload.log" | tr '\n' ' ')"
else
	MT_TLSLOAD_NOTE="no musl-gcc or no .cache/musl (run ./build.sh first): handshakes, signatures and idle memory not measured"
fi
[ -z "$MT_TLSLOAD_NOTE" ] || say "mtls: $MT_TLSLOAD_NOTE"

# ---------------------------------------------------------------- configs
# mesh: one mesh.ini per pair (the registry); per proxy a config with its listeners
mt_mesh_write() { # pair(mesh|meshplain) -> configs in $MT; sets MT_PORT/MT_HOP
	local p=$1 out in adm_c adm_s
	out=$(free_port); in=$(free_port); adm_c=$(free_port); adm_s=$(free_port)
	MT_PORT[$p]=$out; MT_HOP[$p]=$in
	eval "MT_ADM_${p}_c=$adm_c MT_ADM_${p}_s=$adm_s"
	{
		printf '; written by tests/bench/mtls.sh\n[service hello]\nport = 80\nendpoint = 127.0.0.1:%s\n' "$in"
		[ "$p" = mesh ] && printf '\n[peer_authentication default]\nmode = STRICT\n'
	} >"$MT/$p-mesh.ini"
	mt_control() { # pair sa
		local p=$1
		printf '[control]\nmesh = %s\n' "$MT/$p-mesh.ini"
		[ "$p" = mesh ] && printf 'ca = 127.0.0.1:%s\ntoken_file = %s\ntrust_bundle = %s\n' \
			"$P_CA" "$MT/$2.token" "$MT/ca/root.crt"
		printf '\n[proxy]\nmax_idle_per_endpoint = 1024\n\n[log]\naccess_log = off\n'
	}
	{
		printf '; written by tests/bench/mtls.sh: the caller side\n[workload]\nservice_account = client\n\n'
		printf '[listen]\noutbound = 127.0.0.1:%s\nadmin = 127.0.0.1:%s\n\n' "$out" "$adm_c"
		mt_control "$p" client
	} >"$MT/$p-client.ini"
	{
		printf '; written by tests/bench/mtls.sh: the sidecar of service hello\n[workload]\nservice_account = hello\n'
		printf 'service = hello\nlabels = app=hello\napp = 127.0.0.1:%s\n\n' "$P_ORIGIN"
		printf '[listen]\ninbound = 127.0.0.1:%s\noutbound = off\nadmin = 127.0.0.1:%s\n\n' "$in" "$adm_s"
		mt_control "$p" hello
	} >"$MT/$p-server.ini"
}

# HAProxy: A (plain in, to B) and B (to the origin); tls=1: A -> B is TLS 1.3 with
# client certificates verified both ways (ECDSA P-256, AES-128-GCM as mesh negotiates)
mt_haproxy_write() { # pair(haproxy|haproxyplain)
	local p=$1 a b tls=0 common
	a=$(free_port); b=$(free_port)
	MT_PORT[$p]=$a; MT_HOP[$p]=$b
	[ "$p" = haproxy ] && tls=1
	common="global
	nbthread 1
	maxconn 8000
	ssl-default-bind-options ssl-min-ver TLSv1.3
	ssl-default-server-options ssl-min-ver TLSv1.3
	ssl-default-bind-ciphersuites TLS_AES_128_GCM_SHA256
	ssl-default-server-ciphersuites TLS_AES_128_GCM_SHA256

defaults
	mode http
	maxconn 8000
	timeout connect 5s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 60s
	option http-keep-alive
	http-reuse always
	option forwardfor
"
	{
		echo "# written by tests/bench/mtls.sh: hop A"
		echo "$common"
		printf 'frontend a\n\tbind 127.0.0.1:%s\n\tdefault_backend b\n\nbackend b\n' "$a"
		if [ "$tls" = 1 ]; then
			printf '\tserver b 127.0.0.1:%s ssl crt %s ca-file %s verify required pool-purge-delay 60s\n' \
				"$b" "$MT/haproxy-a.pem" "$MT/ca/root.crt"
		else
			printf '\tserver b 127.0.0.1:%s pool-purge-delay 60s\n' "$b"
		fi
	} >"$MT/$p-a.cfg"
	{
		echo "# written by tests/bench/mtls.sh: hop B"
		echo "$common"
		if [ "$tls" = 1 ]; then
			# HAProxy 2.6 has no "curves" for servers: A offers X25519 first and B asks again
			# for P-256 (HelloRetryRequest) on each new A -> B connection
			printf 'frontend b\n\tbind 127.0.0.1:%s ssl crt %s ca-file %s verify required curves P-256\n' \
				"$b" "$MT/haproxy-b.pem" "$MT/ca/root.crt"
		else
			printf 'frontend b\n\tbind 127.0.0.1:%s\n' "$b"
		fi
		printf '\tdefault_backend origin\n\nbackend origin\n\tserver o 127.0.0.1:%s pool-purge-delay 60s\n' "$P_ORIGIN"
	} >"$MT/$p-b.cfg"
}

mt_start_pair() { # pair -> 0 when a request through it answers 200
	local p=$1 pid1 pid2 code
	case "$p" in
	mesh | meshplain)
		mt_mesh_write "$p"
		"${ON_PROXY[@]}" "$MESH" proxy -c "$MT/$p-server.ini" >"$MT/$p-server.log" 2>&1 &
		pid2=$!; PIDS+=("$pid2")
		"${ON_PROXY[@]}" "$MESH" proxy -c "$MT/$p-client.ini" >"$MT/$p-client.log" 2>&1 &
		pid1=$!; PIDS+=("$pid1")
		;;
	haproxy | haproxyplain)
		mt_haproxy_write "$p"
		for h in a b; do
			haproxy -c -q -f "$MT/$p-$h.cfg" >"$MT/$p-$h.log" 2>&1 \
				|| { mt_note "$p" "HAProxy $h config rejected: $(head -3 "$MT/$p-$h.log" | tr '\n' ' ')"; return 1; }
		done
		"${ON_PROXY[@]}" haproxy -db -f "$MT/$p-b.cfg" >>"$MT/$p-b.log" 2>&1 &
		pid2=$!; PIDS+=("$pid2")
		"${ON_PROXY[@]}" haproxy -db -f "$MT/$p-a.cfg" >>"$MT/$p-a.log" 2>&1 &
		pid1=$!; PIDS+=("$pid1")
		;;
	esac
	MT_PIDS[$p]="$pid1 $pid2"
	# mesh proxies with an identity listen only once the CA has signed their certificate
	if ! wait_port "${MT_HOP[$p]}" "$pid2" || ! wait_port "${MT_PORT[$p]}" "$pid1"; then
		sleep 2
		if ! wait_port "${MT_HOP[$p]}" "$pid2" || ! wait_port "${MT_PORT[$p]}" "$pid1"; then
			mt_note "$p" "did not start: $(tail -2 "$MT/$p"-*.log | tr '\n' ' ')"; return 1
		fi
	fi
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Host: hello' "http://127.0.0.1:${MT_PORT[$p]}/" || true)
	if [ "$code" != 200 ]; then
		mt_note "$p" "answers $code instead of 200: $(tail -2 "$MT/$p"-*.log | tr '\n' ' ')"; return 1
	fi
	MT_LIVE="$MT_LIVE $p"
}

MT_PORT[direct]=$P_ORIGIN
MT_LIVE="direct"
for p in $MT_PAIRS; do
	mt_start_pair "$p" && say "mtls: $p: 127.0.0.1:${MT_PORT[$p]} -> 127.0.0.1:${MT_HOP[$p]} -> origin (pids ${MT_PIDS[$p]})"
done
MT_N=$(echo "$MT_LIVE" | wc -w)
# the hop is really mTLS: the server side saw the client's identity
if in_list mesh "$MT_LIVE"; then
	hs=$(curl -s "http://127.0.0.1:${MT_ADM_mesh_s}/metrics" | awk '/^mesh_tls_handshakes_total\{.*side="server".*result="ok"/ { s += $NF } END { print s + 0 }')
	say "mtls: mesh server side: $hs mTLS handshake(s) so far (mesh_tls_handshakes_total)"
	[ "$hs" -ge 1 ] || MT_NOTE_ALL="mesh: no server-side mTLS handshake counted: the hop may not be mTLS"
fi

# ---------------------------------------------------------------- throughput, 1 KiB bodies
printf 'wrk.method = "POST"\nwrk.body = string.rep("x", %d)\nwrk.headers["Content-Type"] = "application/octet-stream"\n' \
	"$MT_BODY" >"$MT/post.lua"
mt_wrk() { # target secs outfile
	"${ON_LOAD[@]}" wrk -t1 -c"$CONNS" -d"${2}s" --latency -s "$MT/post.lua" -H 'Host: hello' \
		"http://127.0.0.1:${MT_PORT[$1]}/" >"$3" 2>&1 || true
}
mt_order() { echo "$MT_LIVE" | tr ' ' '\n' | awk NF | awk -v k="$1" -v n="$MT_N" '{ a[NR - 1] = $0 } END { for (i = 0; i < n; i++) print a[(i + k) % n] }'; }
say "mtls: warm-up, wrk ${WARM}s per target"
for t in $MT_LIVE; do mt_wrk "$t" "$WARM" "$MT/warm-$t.txt"; done
say "mtls: throughput, wrk -t1 -c$CONNS -d${MT_DUR}s, POST $MT_BODY bytes, $REPS round(s) interleaved over:$MT_LIVE"
for r in $(seq 1 "$REPS"); do
	for t in $(mt_order "$r"); do
		out=$MT/wrk-$t-$r.txt
		ppids=$(mt_pids "$t")
		c0=$(cpu_ticks $ppids)
		mt_wrk "$t" "$MT_DUR" "$out"
		c1=$(cpu_ticks $ppids)
		rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
		reqs=$(awk '/requests in/ { print $1 }' "$out")
		p50=$(awk '$1 == "50%" { print $2 }' "$out"); p99=$(awk '$1 == "99%" { print $2 }' "$out")
		errs=$(awk '/Non-2xx/ { e += $NF } /Socket errors/ { gsub(/,/, ""); e += $4 + $6 + $8 + $10 } END { print e + 0 }' "$out")
		us=$(awk -v t=$((c1 - c0)) -v hz="$TICK" -v n="${reqs:-0}" 'BEGIN { if (n > 0) printf "%.1f", t / hz * 1e6 / n; else print "na" }')
		MT_RPS[$t]+="${rps:-0} "; MT_P50[$t]+="$(to_us "${p50:-0}") "; MT_P99[$t]+="$(to_us "${p99:-0}") "
		[ "$us" = na ] || MT_US[$t]+="$us "
		MT_ERRS[$t]=$(( ${MT_ERRS[$t]:-0} + errs ))
		printf '    round %d %-13s %10s req/s  p50 %6s us  p99 %6s us  errors %s  CPU %s us/req (%s)\n' "$r" "$t" \
			"${rps:-?}" "$(to_us "${p50:-0}")" "$(to_us "${p99:-0}")" "$errs" "$us" "$([ "$t" = direct ] && echo origin || echo both hops)"
	done
done

# ---------------------------------------------------------------- fixed rate, 1 KiB bodies
# Three placements of the processes (docs/benchmarks.md, "Reading the latency figures"):
#   onecpu   everything on CPU 0: no cross-CPU wake-ups at all, so what the proxied path
#            takes beyond direct is the proxies' own work and their loopback hops, all
#            of it serialised on one CPU (the target figure);
#   sidecar  each proxy beside its application: A with rate.c on CPU 0, B with the origin
#            on CPU 1, and direct = rate.c on CPU 0 -> origin on CPU 1; both paths cross
#            between the vCPUs once each way, but on this VM a crossing costs 100-200 us
#            and its tail is the VM's, which makes the p99 difference mostly noise;
#   apart    both proxies on CPU 1, rate.c and the origin on CPU 0: the proxied path
#            crosses four times, direct never, so it mostly measures the VM's
#            cross-vCPU wake-ups (kept for comparison with earlier runs).
mt_layout() { # apart|sidecar|onecpu: pin each pair's first and second proxy and the origin
	local a b o t p1 p2
	case "$1" in
	apart) a=$CPU_PROXY b=$CPU_PROXY o=$CPU_LOAD ;;
	sidecar) a=$CPU_LOAD b=$CPU_PROXY o=$CPU_PROXY ;;
	onecpu) a=$CPU_LOAD b=$CPU_LOAD o=$CPU_LOAD ;;
	esac
	taskset -a -p -c "$o" "$ORIGIN_PID" >/dev/null 2>&1 || true
	for t in $MT_PAIRS; do
		in_list "$t" "$MT_LIVE" || continue
		read -r p1 p2 <<<"$(mt_pids "$t")"
		taskset -a -p -c "$a" "$p1" >/dev/null 2>&1 || true
		taskset -a -p -c "$b" "$p2" >/dev/null 2>&1 || true
	done
}
MT_LAYOUTS="onecpu sidecar apart"
if [ "$QUICK" = 1 ]; then MT_LAT_REPS=$REPS; else MT_LAT_REPS=${BENCH_LAT_REPS:-5}; fi
for lay in $MT_LAYOUTS; do
	mt_layout "$lay"
	case "$lay" in
	sidecar) what="each proxy beside its application: first proxy with rate.c on CPU $CPU_LOAD, second with the origin on CPU $CPU_PROXY; direct: origin on CPU $CPU_PROXY" ;;
	onecpu) what="everything on CPU $CPU_LOAD" ;;
	apart) what="both proxies on CPU $CPU_PROXY, rate.c and the origin on CPU $CPU_LOAD" ;;
	esac
	say "mtls: latency at $RATE req/s, POST $MT_BODY bytes, $lay ($what): rate.c, $RATE_CONNS connections, ${RATE_DUR}s (+${RATE_WARM}s warm-up), $MT_LAT_REPS round(s)"
	for r in $(seq 1 "$MT_LAT_REPS"); do
		for t in $(mt_order "$r"); do
			out=$MT/rate-$lay-$t-$r.txt
			"${ON_LOAD[@]}" "$TMP/rate" -p "${MT_PORT[$t]}" -H hello -r "$RATE" -d "$RATE_DUR" -w "$RATE_WARM" \
				-c "$RATE_CONNS" -b "$MT_BODY" >"$out" 2>&1 || true
			res=$(tail -1 "$out" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END { if ("sent" in v) print v["p50_us"], v["p99_us"], v["max_us"], v["errors"] }')
			if [ -z "$res" ]; then echo "    rate.c failed for $t: $(tail -1 "$out")"; continue; fi
			read -r a b c d <<<"$res"
			MT_LP50["$lay $t"]+="$a "; MT_LP99["$lay $t"]+="$b "; MT_FERR[$t]=$(( ${MT_FERR[$t]:-0} + d ))
			MT_LATE[$t]+="$(awk '/lateness/ { sub("p99=", "", $5); print $5 }' "$out") "
			printf '    round %d %-13s p50 %7s us  p99 %7s us  max %8s us  errors %s\n' "$r" "$t" "$a" "$b" "$c" "$d"
		done
	done
done
mt_layout apart   # as everything else in the suite runs

# ---------------------------------------------------------------- full handshakes
# tlsload on CPU 0 is the same mbedTLS client for both servers; the server's CPU time
# per handshake is the figure that does not depend on how fast that client is.
MT_HS_TARGETS=""
in_list mesh "$MT_LIVE" && MT_HS_TARGETS="mesh"
in_list haproxy "$MT_LIVE" && MT_HS_TARGETS="$MT_HS_TARGETS haproxy"
if [ -z "$MT_TLSLOAD_NOTE" ] && [ -n "$MT_HS_TARGETS" ]; then
	say "mtls: full mTLS handshakes (tlsload hs, $MT_HS_CONNS connections, one request each, no resumption) against the second hop, ${MT_HS_DUR}s x $REPS"
	for r in $(seq 1 "$REPS"); do
		for t in $MT_HS_TARGETS; do
			out=$MT/hs-$t-$r.txt
			spid=$(mt_pids "$t" | awk '{ print $2 }')
			c0=$(cpu_ticks "$spid")
			"${ON_LOAD[@]}" "$MT/tlsload" hs -p "${MT_HOP[$t]}" -H hello -c "$MT_HS_CONNS" -d "$MT_HS_DUR" -w 0.5 \
				--crt "$MT/bench.crt" --key "$MT/bench.key" --bundle "$MT/ca/root.crt" >"$out" 2>&1 || true
			c1=$(cpu_ticks "$spid")
			read -r n e ps p99 all < <(tail -1 "$out" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END { print v["done"], v["errors"], v["per_s"], v["p99_us"], v["total"] }')
			if [ -z "${ps:-}" ]; then echo "    tlsload failed for $t: $(tail -2 "$out" | tr '\n' ' ')"; continue; fi
			cpu=$(awk -v t=$((c1 - c0)) -v hz="$TICK" -v n="$all" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e3 / n; else print "na" }')
			MT_HS[$t]+="$ps "; MT_HS_P99[$t]+="$p99 "; [ "$cpu" = na ] || MT_HS_CPU[$t]+="$cpu "
			MT_HS_ERRS[$t]=$(( ${MT_HS_ERRS[$t]:-0} + e ))
			printf '    round %d %-8s %8s handshakes/s  p99 %7s us  server CPU %s ms/handshake  errors %s%s\n' "$r" "$t" "$ps" \
				"$p99" "$cpu" "$e" "$(grep -m1 '^first error' "$out" | sed 's/^/  /')"
		done
	done
fi

# ---------------------------------------------------------------- CA signatures
if [ -z "$MT_TLSLOAD_NOTE" ]; then
	say "mtls: CA signatures (tlsload sign, $MT_HS_CONNS kept-alive TLS connections, POST /v1/sign), ${MT_HS_DUR}s x $REPS"
	for r in $(seq 1 "$REPS"); do
		out=$MT/sign-$r.txt
		c0=$(cpu_ticks "$CA_PID")
		"${ON_LOAD[@]}" "$MT/tlsload" sign -p "$P_CA" -c "$MT_HS_CONNS" -d "$MT_HS_DUR" -w 0.5 \
			--bundle "$MT/ca/root.crt" --token "$MT/bench.token" --id "spiffe://$MT_TD/ns/default/sa/bench" >"$out" 2>&1 || true
		c1=$(cpu_ticks "$CA_PID")
		read -r n e ps p99 all < <(tail -1 "$out" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END { print v["done"], v["errors"], v["per_s"], v["p99_us"], v["total"] }')
		if [ -z "${ps:-}" ]; then echo "    tlsload sign failed: $(tail -2 "$out" | tr '\n' ' ')"; continue; fi
		cpu=$(awk -v t=$((c1 - c0)) -v hz="$TICK" -v n="$all" 'BEGIN { if (n > 0) printf "%.2f", t / hz * 1e3 / n; else print "na" }')
		MT_SIGN+="$ps "; MT_SIGN_P99+="$p99 "; [ "$cpu" = na ] || MT_SIGN_CPU+="$cpu "
		MT_SIGN_ERRS=$((MT_SIGN_ERRS + e))
		printf '    round %d %8s signatures/s  p99 %7s us  CA CPU %s ms/signature  errors %s%s\n' "$r" "$ps" "$p99" "$cpu" "$e" \
			"$(grep -m1 '^first error' "$out" | sed 's/^/  /')"
	done
fi

# ---------------------------------------------------------------- memory per idle connection
if [ -z "$MT_TLSLOAD_NOTE" ]; then
	say "mtls: memory per idle connection: $MT_IDLE_N clients, one request each while the origin is stopped, then idle"
	for t in $MT_PAIRS; do
		in_list "$t" "$MT_LIVE" || continue
		read -r pa pb <<<"$(mt_pids "$t")"
		sleep 1
		ra0=$(rss_kb "$pa"); rb0=$(rss_kb "$pb"); h0=$(mt_conns_to "${MT_HOP[$t]}"); o0=$(mt_conns_to "$P_ORIGIN")
		kill -STOP "$ORIGIN_PID"
		"${ON_LOAD[@]}" "$MT/tlsload" idle -p "${MT_PORT[$t]}" -H hello -n "$MT_IDLE_N" -t 60 >"$MT/idle-$t.txt" 2>&1 &
		ipid=$!; PIDS+=("$ipid")
		# every request has reached the origin's sockets once the proxy-to-origin count stops growing
		last=-1 same=0
		for i in $(seq 1 600); do
			o=$(mt_conns_to "$P_ORIGIN")
			if [ "$o" = "$last" ]; then same=$((same + 1)); else same=0; fi
			last=$o
			[ $((o - o0)) -ge "$MT_IDLE_N" ] && break
			[ "$same" -ge 30 ] && [ $((o - o0)) -gt 0 ] && break   # no growth for 3 s
			sleep 0.1
		done
		kill -CONT "$ORIGIN_PID"
		for i in $(seq 1 900); do grep -q '^ready' "$MT/idle-$t.txt" && break; sleep 0.1; done
		sleep 1   # settle: buffers released, pools idle
		ra1=$(rss_kb "$pa"); rb1=$(rss_kb "$pb"); h1=$(mt_conns_to "${MT_HOP[$t]}")
		nh=$((h1 - h0))
		MT_IDLE_CONNS[$t]=$nh
		MT_IDLE_RSS0[$t]="$ra0 $rb0"; MT_IDLE_RSS1[$t]="$ra1 $rb1"
		MT_IDLE_KB[$t]=$(awk -v a0="$ra0" -v a1="$ra1" -v b0="$rb0" -v b1="$rb1" -v n="$nh" \
			'BEGIN { if (n > 0) printf "%.1f %.1f", (a1 - a0) / n, (b1 - b0) / n; else print "na na" }')
		grep -q '^ready' "$MT/idle-$t.txt" || MT_IDLE_NOTE[$t]="the clients got no answer: $(tail -1 "$MT/idle-$t.txt")"
		printf '    %-13s %s; %s new hop connections (%s to the origin); RSS kB A %s -> %s, B %s -> %s: per hop connection A %s KiB, B %s KiB\n' \
			"$t" "$(grep -m1 '^ready' "$MT/idle-$t.txt" || echo 'no answers')" "$nh" "$(( $(mt_conns_to "$P_ORIGIN") - o0 ))" \
			"$ra0" "$ra1" "$rb0" "$rb1" $(echo "${MT_IDLE_KB[$t]}")
		kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null || true
	done
	kill -CONT "$ORIGIN_PID" 2>/dev/null || true
fi
for t in $MT_PAIRS; do
	in_list "$t" "$MT_LIVE" || continue
	for p in $(mt_pids "$t"); do
		kill -0 "$p" 2>/dev/null || MT_NOTE[$t]="a process (pid $p) exited during the run: $(tail -2 "$MT/$t"-*.log | tr '\n' ' ')"
	done
done
say "mtls suite took $((SECONDS - T_SUITE)) s"

# ---------------------------------------------------------------- report (called by run.sh)
mt_med() { local -n a=$1; if [ -n "${a[$2]+x}" ] && [ -n "${a[$2]}" ]; then med "${a[$2]}"; else echo na; fi; }
mt_ratio() { ratio "$(mt_med "$1" "$2")" "$(mt_med "$1" "$3")"; }
mt_added_l() { diff_us "$(mt_med MT_LP"$2" "$1 $3")" "$(mt_med MT_LP"$2" "$1 direct")"; }   # layout 50|99 target
mt_rounds() { local -n a=$1; paste -d' ' <(echo "${a[$2]:-}" | tr ' ' '\n' | awk NF) <(echo "${a[$3]:-}" | tr ' ' '\n' | awk NF) \
	| awk '{ printf "%.2f ", ($2 > 0 ? $1 / $2 : 0) }'; }
mt_desc() {
	case "$1" in
	direct) echo "no proxy" ;;
	mesh) echo "mesh -> mTLS -> mesh" ;;
	meshplain) echo "mesh -> plaintext -> mesh" ;;
	haproxy) echo "HAProxy -> TLS 1.3 + client cert -> HAProxy" ;;
	haproxyplain) echo "HAProxy -> plaintext -> HAProxy" ;;
	esac
}
mtls_report() {
	local t a b
	echo
	echo "mTLS, two hops (issue 4): for req/s both proxies of a pair on CPU $CPU_PROXY, load and origin on CPU $CPU_LOAD; POST $MT_BODY-byte bodies"
	echo "wrk -t1 -c$CONNS ${MT_DUR}s x $REPS, reused connections; rate.c $RATE req/s ${RATE_DUR}s x $MT_LAT_REPS per placement; medians"
	printf '%-13s %9s %7s %7s %7s | %7s %7s %7s %7s %7s %7s %6s | %s\n' target "req/s" p50_us p99_us "us/req" \
		p50_1c p99_1c p50_sc p99_sc p50_ap p99_ap errors what
	for t in $MT_TARGETS; do
		if ! in_list "$t" "$MT_LIVE"; then printf '%-13s not measured: %s\n' "$t" "${MT_NOTE[$t]:-}"; continue; fi
		printf '%-13s %9.0f %7s %7s %7s | %7s %7s %7s %7s %7s %7s %6s | %s\n' "$t" "$(mt_med MT_RPS "$t")" "$(mt_med MT_P50 "$t")" \
			"$(mt_med MT_P99 "$t")" "$(mt_med MT_US "$t")" \
			"$(mt_med MT_LP50 "onecpu $t")" "$(mt_med MT_LP99 "onecpu $t")" "$(mt_med MT_LP50 "sidecar $t")" \
			"$(mt_med MT_LP99 "sidecar $t")" "$(mt_med MT_LP50 "apart $t")" "$(mt_med MT_LP99 "apart $t")" \
			"$(( ${MT_ERRS[$t]:-0} + ${MT_FERR[$t]:-0} ))" "$(mt_desc "$t")"
		[ -z "${MT_NOTE[$t]+x}" ] || echo "    WARNING: $t ${MT_NOTE[$t]}"
	done
	[ -z "$MT_NOTE_ALL" ] || echo "    WARNING: $MT_NOTE_ALL"
	echo "(us/req: CPU time of both proxies of the pair per request (direct: the origin's); right of |: latency at $RATE req/s,"
	echo " _1c: everything on CPU $CPU_LOAD, _sc: each proxy beside its application (first with rate.c on CPU $CPU_LOAD,"
	echo " second with the origin on CPU $CPU_PROXY), _ap: both proxies on CPU $CPU_PROXY, rate.c and the origin on CPU $CPU_LOAD)"
	printf 'client send lateness p99 (rate.c timer wake-up, not counted in latency): %s\n' \
		"$(for t in $MT_LIVE; do printf '%s %s us  ' "$t" "$(mt_med MT_LATE "$t")"; done)"
	echo "ratios and differences (of medians):"
	printf '  req/s     mesh/haproxy %s (target >= 1.0)   plaintext: meshplain/haproxyplain %s   mTLS/plaintext: mesh %s, haproxy %s\n' \
		"$(mt_ratio MT_RPS mesh haproxy)" "$(mt_ratio MT_RPS meshplain haproxyplain)" \
		"$(mt_ratio MT_RPS mesh meshplain)" "$(mt_ratio MT_RPS haproxy haproxyplain)"
	printf '  req/s per round, mesh/haproxy: %s\n' "$(mt_rounds MT_RPS mesh haproxy)"
	printf '  CPU/req   mesh/haproxy %s   meshplain/haproxyplain %s   (below 1: mesh is cheaper)\n' \
		"$(mt_ratio MT_US mesh haproxy)" "$(mt_ratio MT_US meshplain haproxyplain)"
	for lay in $MT_LAYOUTS; do
		for q in 99 50; do
			printf '  added p%s at %s req/s vs direct, %-7s us: mesh %5s%s   haproxy %5s   meshplain %5s   haproxyplain %5s\n' \
				"$q" "$RATE" "$lay," "$(mt_added_l "$lay" "$q" mesh)" \
				"$([ "$lay$q" = onecpu99 ] && echo ' (target < 200)')" "$(mt_added_l "$lay" "$q" haproxy)" \
				"$(mt_added_l "$lay" "$q" meshplain)" "$(mt_added_l "$lay" "$q" haproxyplain)"
		done
	done
	printf '  the cost of crossing vCPUs, no proxy (direct p50 / p99, origin on CPU %s minus origin on CPU %s): %s / %s us\n' \
		"$CPU_PROXY" "$CPU_LOAD" \
		"$(diff_us "$(mt_med MT_LP50 "sidecar direct")" "$(mt_med MT_LP50 "onecpu direct")")" \
		"$(diff_us "$(mt_med MT_LP99 "sidecar direct")" "$(mt_med MT_LP99 "onecpu direct")")"
	[ -z "$MT_TLSLOAD_NOTE" ] || { echo "($MT_TLSLOAD_NOTE)"; return 0; }
	echo "full mTLS handshakes, tlsload hs ($MT_HS_CONNS connections, mbedTLS client on CPU $CPU_LOAD, one request per connection), medians:"
	for t in $MT_HS_TARGETS; do
		printf '  %-8s %8s handshakes/s  p99 %7s us  server CPU %5s ms/handshake (= %s/s per CPU)  errors %s\n' "$t" \
			"$(mt_med MT_HS "$t")" "$(mt_med MT_HS_P99 "$t")" "$(mt_med MT_HS_CPU "$t")" \
			"$(awk -v m="$(mt_med MT_HS_CPU "$t")" 'BEGIN { if (m == "na" || m <= 0) print "na"; else printf "%.0f", 1000 / m }')" \
			"${MT_HS_ERRS[$t]:-0}"
	done
	printf '  handshakes/s mesh/haproxy %s   server CPU per handshake mesh/haproxy %s\n' \
		"$(mt_ratio MT_HS mesh haproxy)" "$(mt_ratio MT_HS_CPU mesh haproxy)"
	printf 'CA signatures: %s/s (target >= 1000)  p99 %s us  CA CPU %s ms/signature  errors %s  (tlsload sign, %s connections)\n' \
		"$(med "$MT_SIGN")" "$(med "$MT_SIGN_P99")" "$(med "$MT_SIGN_CPU")" "$MT_SIGN_ERRS" "$MT_HS_CONNS"
	echo "memory per idle hop connection ($MT_IDLE_N clients; KiB = (RSS after - RSS before) / new hop connections):"
	for t in $MT_PAIRS; do
		in_list "$t" "$MT_LIVE" || continue
		[ -n "${MT_IDLE_KB[$t]+x}" ] || continue
		read -r a b <<<"${MT_IDLE_KB[$t]}"
		printf '  %-13s first hop %6s KiB  second hop %6s KiB  (%s hop connections)%s\n' "$t" "$a" "$b" "${MT_IDLE_CONNS[$t]}" \
			"${MT_IDLE_NOTE[$t]:+  WARNING: ${MT_IDLE_NOTE[$t]}}"
	done
	if [ -n "${MT_IDLE_KB[mesh]+x}" ] && [ -n "${MT_IDLE_KB[meshplain]+x}" ]; then
		printf '  the TLS share (mTLS - plaintext): mesh first hop %s KiB, second hop %s KiB; haproxy A %s KiB, B %s KiB\n' \
			"$(mt_idle_diff mesh meshplain 1)" "$(mt_idle_diff mesh meshplain 2)" \
			"$(mt_idle_diff haproxy haproxyplain 1)" "$(mt_idle_diff haproxy haproxyplain 2)"
	fi
	echo "  (each figure includes the plaintext connection on the proxy's other side; target: <= 48 KiB per idle mTLS connection)"
}
mt_idle_diff() { # tls plain field
	awk -v a="$(echo "${MT_IDLE_KB[$1]:-na na}" | cut -d' ' -f"$3")" -v b="$(echo "${MT_IDLE_KB[$2]:-na na}" | cut -d' ' -f"$3")" \
		'BEGIN { if (a == "na" || b == "na" || a == "" || b == "") print "na"; else printf "%.1f", a - b }'
}
mt_errors() {
	{ for t in $MT_LIVE; do echo "${MT_ERRS[$t]:-0}"; echo "${MT_FERR[$t]:-0}"; done
		for t in $MT_HS_TARGETS; do echo "${MT_HS_ERRS[$t]:-0}"; done; echo "$MT_SIGN_ERRS"; } | awk '{ s += $1 } END { print s + 0 }'
}
mtls_figures() {
	local t
	for t in $MT_TARGETS; do
		printf 'mtls_rps_%s=%s\n' "$t" "$(mt_med MT_RPS "$t" | awk '{ if ($1 == "na") print "na"; else printf "%.0f\n", $1 }')"
		printf 'mtls_fixed_rate_p99_us_%s=%s\n' "$t" "$(mt_med MT_LP99 "onecpu $t")"
	done
	for t in mesh haproxy meshplain haproxyplain; do
		printf 'mtls_added_p99_us_1cpu_%s=%s\n' "$t" "$(mt_added_l onecpu 99 "$t")"
		printf 'mtls_added_p99_us_sidecar_%s=%s\n' "$t" "$(mt_added_l sidecar 99 "$t")"
		printf 'mtls_added_p99_us_apart_%s=%s\n' "$t" "$(mt_added_l apart 99 "$t")"
	done
	printf 'mtls_cpu_us_per_req_mesh=%s\nmtls_cpu_us_per_req_haproxy=%s\n' "$(mt_med MT_US mesh)" "$(mt_med MT_US haproxy)"
	printf 'mtls_handshakes_per_s_mesh=%s\nmtls_handshakes_per_s_haproxy=%s\n' "$(mt_med MT_HS mesh)" "$(mt_med MT_HS haproxy)"
	printf 'mtls_handshake_cpu_ms_mesh=%s\nmtls_handshake_cpu_ms_haproxy=%s\n' "$(mt_med MT_HS_CPU mesh)" "$(mt_med MT_HS_CPU haproxy)"
	printf 'ca_signatures_per_s=%s\nca_cpu_ms_per_signature=%s\n' "$(med "$MT_SIGN")" "$(med "$MT_SIGN_CPU")"
	for t in $MT_PAIRS; do
		printf 'idle_kib_per_conn_%s=%s\n' "$t" "$(echo "${MT_IDLE_KB[$t]:-na na}" | tr ' ' '/')"
	done
	printf 'mtls_errors=%s\n' "$(mt_errors)"
	printf 'mtls_added_p99_us=%s\n' "$(mt_added_l onecpu 99 mesh)"
	printf 'mtls_rps_ratio_haproxy=%s\n' "$(mt_ratio MT_RPS mesh haproxy)"
}
