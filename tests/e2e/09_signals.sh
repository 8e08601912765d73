#!/usr/bin/env bash
# 09_signals: SIGHUP reloads the config under load without failing a request
# (and the new endpoint gets traffic); an invalid config on SIGHUP keeps the old
# one and logs file:line; SIGTERM stops accepting, lets the in-flight request
# finish, and exits 0 within drain_timeout.
. "$(dirname "$0")/lib.sh"

ports B1 B2 OUT ADM
export OUT

write_mesh() { # write_mesh ENDPOINT_PORT... : the mesh file, atomically
	{
		echo "[mesh]"
		echo "domain = cluster.local"
		echo
		echo "[service hello]"
		echo "port = 80"
		local p
		for p in "$@"; do echo "endpoint = 127.0.0.1:$p"; done
		echo "[destination hello]"            # the checks count endpoints in turn
		echo "load_balancer = round_robin"
	} >"$ART/mesh.ini.tmp"
	mv "$ART/mesh.ini.tmp" "$ART/mesh.ini"
}
write_mesh "$B1"
cat >"$ART/proxy.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 3s

[log]
access_log = off

[control]
mesh = mesh.ini
EOF

start_backend b1 "$B1"
start_backend b2 "$B2"
start_mesh proxy proxy -c "$ART/proxy.ini"
PROXY=$MESH_PID
wait_ready "$ADM" 10 || { fail "proxy starts" "/ready did not answer 200"; exit 1; }
expect_eq "before the reload only b1 serves" b1 "$(body "http://127.0.0.1:$OUT/" -H 'Host: hello')"

# ---- SIGHUP under load: 4 clients, new connection every 10 requests, ~4 s
load() { # load SECONDS OUTFILE : python keep-alive clients; prints "ok=N failed=M b1=X b2=Y"
	PYTHONPATH=$E2E timeout 60 python3 - "$1" >"$2" 2>&1 <<'PY'
import sys, threading, time, http.client, os
from collections import Counter
OUT, secs = int(os.environ["OUT"]), float(sys.argv[1])
c, errors, lock = Counter(), [], threading.Lock()
def worker():
    end = time.time() + secs
    n = 0
    while time.time() < end and n < 5000:
        conn = http.client.HTTPConnection("127.0.0.1", OUT, timeout=5)
        for _ in range(10):
            n += 1
            try:
                conn.request("GET", "/", headers={"Host": "hello"})
                r = conn.getresponse()
                body = r.read().decode().strip()
                with lock:
                    if r.status == 200:
                        c["ok"] += 1
                        c[body] += 1
                    else:
                        c["failed"] += 1
                        errors.append("status %d %s" % (r.status, body[:80]))
            except Exception as e:
                with lock:
                    c["failed"] += 1
                    errors.append(repr(e))
                break
            time.sleep(0.005)
        conn.close()
ts = [threading.Thread(target=worker) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print("ok=%d failed=%d b1=%d b2=%d" % (c["ok"], c["failed"], c["b1"], c["b2"]))
for e in errors[:5]: print("error:", e)
PY
}
bg load 4 "$ART/load1.txt"
LOAD=$BG_PID
sleep 1.5
write_mesh "$B1" "$B2"
kill -HUP "$PROXY"
wait "$LOAD"
res=$(head -1 "$ART/load1.txt")
note "load during SIGHUP: $(tr '\n' ' ' <"$ART/load1.txt")"
read -r okn failn b1n b2n <<<"$(printf '%s' "$res" | sed 's/[a-z0-9]*=//g')"
if [ -n "$okn" ] && [ "$okn" -ge 200 ] && [ "$failn" -eq 0 ]; then
	pass "SIGHUP under load: $okn requests, 0 failed"
else
	fail "SIGHUP under load" "$(tr '\n' ' ' <"$ART/load1.txt")"
fi
if [ -n "$b2n" ] && [ "$b2n" -ge 20 ]; then pass "the endpoint added by the reload gets traffic (b2=$b2n)"
else fail "new endpoint gets traffic" "$res"; fi
alive=0; _alive "$PROXY" && alive=1
expect_eq "proxy still running after SIGHUP" 1 "$alive"

# ---- invalid config + SIGHUP: old config keeps serving, the log names file:line
cp "$ART/mesh.ini" "$ART/mesh.ini.good"
{ cat "$ART/mesh.ini.good"; printf 'endpoint = 127.0.0.1:notaport\n'; } >"$ART/mesh.ini"
badline=$(wc -l <"$ART/mesh.ini")
kill -HUP "$PROXY"
found=
for i in $(seq 1 30); do
	if grep -q "mesh.ini:$badline: " "$ART/proxy.log"; then found=1; break; fi
	sleep 0.1
done
if [ -n "$found" ]; then pass "invalid config on SIGHUP is logged as mesh.ini:$badline: ($(grep -m1 "mesh.ini:$badline: " "$ART/proxy.log" | cut -c1-100))"
else fail "invalid config logged" "no 'mesh.ini:$badline: ' in the log: $(tail -3 "$ART/proxy.log")"; fi
out=$(curl -s --max-time 10 -H 'Host: hello' "http://127.0.0.1:$OUT/?[1-10]")
n1=$(printf '%s\n' "$out" | grep -c '^b1$'); n2=$(printf '%s\n' "$out" | grep -c '^b2$')
if [ $((n1 + n2)) -eq 10 ] && [ "$n2" -ge 3 ] && [ "$n1" -ge 3 ]; then pass "old config keeps serving after a bad reload (b1=$n1 b2=$n2)"
else fail "old config keeps serving" "b1=$n1 b2=$n2 of 10: ${out:0:200}"; fi
alive=0; _alive "$PROXY" && alive=1
expect_eq "proxy still running after a bad SIGHUP" 1 "$alive"
# a good config after the bad one is taken again
write_mesh "$B2"
kill -HUP "$PROXY"
got=
for i in $(seq 1 30); do
	out=$(curl -s --max-time 5 -H 'Host: hello' "http://127.0.0.1:$OUT/?[1-4]" | sort -u | tr '\n' ' ')
	[ "$out" = "b2 " ] && { got=1; break; }
	sleep 0.1
done
if [ -n "$got" ]; then pass "a good config after a bad one is applied (only b2 serves)"
else fail "good config after bad one" "responses: $out"; fi

# ---- SIGHUP moves the outbound listener: the new port serves, the old one refuses
ports OUT3
sed -i "s/^outbound = 127.0.0.1:$OUT\$/outbound = 127.0.0.1:$OUT3/" "$ART/proxy.ini"
kill -HUP "$PROXY"
moved=
for i in $(seq 1 30); do
	[ "$(body "http://127.0.0.1:$OUT3/" -H 'Host: hello' --max-time 2)" = b2 ] && { moved=1; break; }
	sleep 0.1
done
if [ -n "$moved" ] && wait_closed "$OUT" 3; then pass "SIGHUP moved the outbound listener ($OUT -> $OUT3)"
else fail "SIGHUP moves the outbound listener" "new port serves: ${moved:-no}; old port $OUT still accepts: $( (exec 3<>"/dev/tcp/127.0.0.1/$OUT") 2>/dev/null && echo yes || echo no)"; fi
sed -i "s/^outbound = 127.0.0.1:$OUT3\$/outbound = 127.0.0.1:$OUT/" "$ART/proxy.ini"
kill -HUP "$PROXY"
wait_port "$OUT" 3 || fail "SIGHUP moves the outbound listener back" "nothing listens on $OUT again"
# a listener that cannot be bound: the reload is rejected, the old listeners keep serving
bg "$BIN/backend" -p "$OUT3" -n squatter
wait_port "$OUT3" 3
cp "$ART/proxy.ini" "$ART/proxy.ini.good"
sed -i "s/^admin = 127.0.0.1:$ADM\$/admin = 127.0.0.1:$OUT3/" "$ART/proxy.ini"
kill -HUP "$PROXY"
sleep 0.5
if [ "$(body "http://127.0.0.1:$OUT/" -H 'Host: hello')" = b2 ] && [ "$(code "http://127.0.0.1:$ADM/ready")" = 200 ]; then
	pass "a reload whose listener cannot be bound keeps the running listeners"
else
	fail "unbindable listener on reload" "outbound or admin stopped serving: $(tail -2 "$ART/proxy.log")"
fi
cp "$ART/proxy.ini.good" "$ART/proxy.ini"
kill -HUP "$PROXY"
sleep 0.3

# ---- SIGTERM: in-flight request completes, new connections refused, exit 0 within drain_timeout
bg curl -s --max-time 10 -D "$ART/slow.head" -o "$ART/slow.body" -w '%{http_code}' -H 'Host: hello' "http://127.0.0.1:$OUT/delay?ms=2500" >"$ART/slow.code"
SLOW=$BG_PID
sleep 0.4
t0=$(date +%s%N)
kill -TERM "$PROXY"
refused=
for i in $(seq 1 20); do
	sleep 0.05
	if ! (exec 4<>"/dev/tcp/127.0.0.1/$OUT") 2>/dev/null; then refused=$(( ($(date +%s%N) - t0) / 1000000 )); break; fi
done
inflight=0; _alive "$SLOW" && inflight=1
if [ -n "$refused" ] && [ "$inflight" -eq 1 ]; then pass "after SIGTERM new connections are refused (${refused} ms) while a request is in flight"
elif [ -n "$refused" ]; then fail "SIGTERM refuses new connections during the drain" "refused only after the in-flight request ended"
else fail "SIGTERM refuses new connections" "the listener still accepts 1 s after SIGTERM"; fi
expect_eq "/ready answers 503 while draining" 503 "$(code "http://127.0.0.1:$ADM/ready" --max-time 2)"
wait "$SLOW"
if grep -qi '^connection: *close' "$ART/slow.head"; then pass "the drained response carries Connection: close"
else fail "drained response carries Connection: close" "$(tr '\r\n' '  ' <"$ART/slow.head")"; fi
expect_eq "the in-flight request completes with 200 after SIGTERM" "200 delayed 2500" \
	"$(cat "$ART/slow.code" 2>/dev/null) $(cat "$ART/slow.body" 2>/dev/null)"
for i in $(seq 1 60); do _alive "$PROXY" || break; sleep 0.1; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if _alive "$PROXY"; then
	fail "exits within drain_timeout (3s) after SIGTERM" "still running after ${ms} ms"
	kill -KILL "$PROXY"
else
	pass "exited ${ms} ms after SIGTERM (drain_timeout 3s, request done at ~2100 ms)"
fi
wait "$PROXY"
expect_eq "exit status 0 after SIGTERM" 0 "$?"

# ---- SIGTERM with a request longer than drain_timeout (1s): exit 0 at the deadline
ports OUT2 ADM2
sed -e "s/:$OUT\$/:$OUT2/" -e "s/:$ADM\$/:$ADM2/" -e 's/^drain_timeout = .*/drain_timeout = 1s/' \
	"$ART/proxy.ini" >"$ART/proxy2.ini"
start_mesh proxy2 proxy -c "$ART/proxy2.ini"
PROXY2=$MESH_PID
wait_ready "$ADM2" 10 || fail "second proxy starts" "/ready did not answer 200"
bg curl -s --max-time 20 -o /dev/null -w '%{http_code}' -H 'Host: hello' "http://127.0.0.1:$OUT2/delay?ms=8000" >"$ART/slow2.code"
SLOW=$BG_PID
sleep 0.4
t0=$(date +%s%N)
kill -TERM "$PROXY2"
for i in $(seq 1 60); do _alive "$PROXY2" || break; sleep 0.1; done
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if _alive "$PROXY2"; then
	fail "drain deadline" "still running ${ms} ms after SIGTERM with drain_timeout = 1s"
	kill -KILL "$PROXY2"
elif [ "$ms" -ge 800 ] && [ "$ms" -le 2500 ]; then
	pass "drain deadline: exited ${ms} ms after SIGTERM (drain_timeout 1s, request needed 8 s)"
else
	fail "drain deadline" "exited ${ms} ms after SIGTERM, want about 1000"
fi
wait "$PROXY2"
expect_eq "exit status 0 after the drain deadline" 0 "$?"
wait "$SLOW"
note "the request cut by the deadline got: '$(cat "$ART/slow2.code")'"
exit 0
