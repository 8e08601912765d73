#!/usr/bin/env bash
# 56_tap: live requests (issue #6's `mesh tap` / `mesh top`). A client sidecar
# and a server sidecar with [proxy] tap = on, a third proxy with tap off. Checked:
# /tap streams one line per finished request with the fields mesh tap shows, on
# both sides of a hop (same request id); --path and --method filter; a proxy
# with tap off answers 403 with what to set; the per-stream rate limit drops the
# excess; `mesh top` groups by path with counts and success rates; a client that
# goes away frees its stream slot.
. "$(dirname "$0")/lib.sh"

ports B1 OUT ADM IN_S ADM_S ADM_OFF
cat >"$ART/mesh.ini" <<EOF
[service hello]
port = 80
endpoint = 127.0.0.1:$IN_S version=v1
EOF
cat >"$ART/client.ini" <<EOF
[workload]
service = client
[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM
[proxy]
tap = on
[control]
mesh = mesh.ini
EOF
cat >"$ART/server.ini" <<EOF
[workload]
service = hello
labels = app=hello, version=v1
app = 127.0.0.1:$B1
[listen]
inbound = 127.0.0.1:$IN_S
admin = 127.0.0.1:$ADM_S
outbound = off
[proxy]
tap = yes
[control]
mesh = mesh.ini
EOF
cat >"$ART/off.ini" <<EOF
[workload]
service = other
[listen]
outbound = off
admin = 127.0.0.1:$ADM_OFF
[control]
mesh = mesh.ini
EOF
start_backend b1 "$B1"
start_mesh server proxy -c "$ART/server.ini"
wait_ready "$ADM_S" || fail "server" "not ready"
start_mesh client proxy -c "$ART/client.ini"
wait_ready "$ADM" || fail "client" "not ready"
start_mesh off proxy -c "$ART/off.ini"
wait_ready "$ADM_OFF" || fail "off" "not ready"

# traffic: 20 x GET /, 10 x POST /echo, 5 x GET /status/503, spread over ~4 s
traffic() {
	local i
	for ((i = 0; i < 5; i++)); do
		curl -s -x "127.0.0.1:$OUT" http://hello/ http://hello/ http://hello/ http://hello/ >/dev/null
		curl -s -x "127.0.0.1:$OUT" -d x http://hello/echo http://hello/echo >/dev/null
		curl -s -x "127.0.0.1:$OUT" http://hello/status/503 >/dev/null
		sleep 0.6
	done
}

"$MESH" tap hello --admin "127.0.0.1:$ADM" --admin "127.0.0.1:$ADM_S" --duration 60 >"$ART/tap.out" 2>"$ART/tap.err" &
TAP=$!
PIDS+=("$TAP")
"$MESH" tap hello --admin "127.0.0.1:$ADM" --path /echo --method post --duration 60 >"$ART/tap-b.out" 2>&1 &
TAPB=$!
PIDS+=("$TAPB")
"$MESH" top hello --admin "127.0.0.1:$ADM_S" --duration 60 >"$ART/top.out" 2>&1 &
TOP=$!
PIDS+=("$TOP")
sleep 0.8
traffic
sleep 1                      # the last lines reach the clients; then Ctrl-C stops them
kill -INT "$TAP" "$TAPB" "$TOP"
wait "$TAP"; rc=$?
wait "$TAPB"
wait "$TOP"
expect_eq "mesh tap: Ctrl-C, exit 0" 0 "$rc"
out=$(cat "$ART/tap.out")
expect_eq "outbound lines: 35 requests" 35 "$(grep -c "^127.0.0.1:$ADM dir=outbound " <<<"$out")"
expect_eq "inbound lines: 35 requests" 35 "$(grep -c "^127.0.0.1:$ADM_S dir=inbound " <<<"$out")"
line=$(grep -m1 "dir=outbound .*:path=/ " <<<"$out")
expect_match "a line has the fields" "id=[0-9a-f-]{36} src=127.0.0.1 src_id=- dst=127.0.0.1:$IN_S dst_id=- svc=hello :method=GET :authority=hello :path=/ :status=200 latency_ms=[0-9.]+ flags=- bytes_in=0 bytes_out=[0-9]+" "$line"
id=$(sed -n 's/.* id=\([^ ]*\) .*/\1/p' <<<"$line")
expect_eq "the same request on both sides of the hop" 2 "$(grep -c " id=$id " <<<"$out")"
expect_eq "503s are shown with their status" 10 "$(grep -c ':status=503 ' <<<"$out")"
b=$(cat "$ART/tap-b.out")
expect_eq "--path /echo --method post: only those" "10 10" "$(grep -c . <<<"$b") $(grep -c ':method=POST :authority=hello :path=/echo ' <<<"$b")"

top=$(cat "$ART/top.out")
expect_match "top: header" "DIR +METHOD +PATH +COUNT +SUCCESS +BEST +WORST +LAST" "$top"
expect_match "top: / counted, all successful" "inbound +GET +/ +20 +100.0%" "$top"
expect_match "top: POST /echo" "inbound +POST +/echo +10 +100.0%" "$top"
expect_match "top: /status/503 counted as failures" "inbound +GET +/status/503 +5 +0.0%" "$top"

# tap off: 403 with what to do; mesh tap says so and exits 1
expect_eq "tap off: 403" 403 "$(code "http://127.0.0.1:$ADM_OFF/tap")"
msg=$("$MESH" tap hello --admin "127.0.0.1:$ADM_OFF" --duration 2 2>&1); rc=$?
expect_eq "mesh tap on a proxy with tap off exits 1" 1 "$rc"
expect_match "... and says what to set" "tap is off on this proxy: set \[proxy\] tap = on" "$msg"

# the rate limit: rps=2 lets about 2 per second through
"$MESH" tap hello --admin "127.0.0.1:$ADM" --rps 2 --duration 3 >"$ART/tap-rps.out" 2>&1 &
TAPR=$!
PIDS+=("$TAPR")
sleep 0.3
for ((i = 0; i < 4; i++)); do
	# shellcheck disable=SC2046
	curl -s -x "127.0.0.1:$OUT" $(for j in 1 2 3 4 5 6 7 8 9 10; do printf 'http://hello/ '; done) >/dev/null
	sleep 0.5
done
wait "$TAPR"
n=$(grep -c dir=outbound "$ART/tap-rps.out")
if [ "$n" -ge 2 ] && [ "$n" -le 8 ]; then pass "rps=2: $n of 40 lines in ~2.5 s"; else fail "rate limit" "$n lines"; fi
expect_eq "bad rps: 400" 400 "$(code "http://127.0.0.1:$ADM/tap?rps=0")"

# nine streams: the ninth is refused (8 at most); closing them frees the slots
for ((i = 0; i < 8; i++)); do bg curl -s -N --max-time 20 "http://127.0.0.1:$ADM/tap" -o /dev/null; S[i]=$BG_PID; done
sleep 0.5
expect_eq "a ninth stream: 429" 429 "$(code "http://127.0.0.1:$ADM/tap")"
for ((i = 0; i < 8; i++)); do kill "${S[i]}" 2>/dev/null; done
sleep 0.5
st=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "http://127.0.0.1:$ADM/tap")
expect_eq "closed streams free their slots" 200 "$st"
check "the proxies still serve" test "$(code -x "127.0.0.1:$OUT" http://hello/)" = 200
exit 0
