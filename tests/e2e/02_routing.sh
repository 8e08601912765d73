#!/usr/bin/env bash
# 02_routing: outbound routing by Host and absolute-form, round-robin, the
# per-service local port, clear failures (404/503/502/504), the inbound
# listener, header rewriting and the HTTP/1.1 corner cases (HEAD, 204/304,
# HTTP/1.0, Connection: close, Expect: 100-continue, pipelining).
. "$(dirname "$0")/lib.sh"

ports B1 B2 B3 DEAD OUT ADM ECHO_LOCAL IN_B OUT_B ADM_B
export B1 B2 B3 OUT ADM ECHO_LOCAL IN_B

cat >"$ART/mesh.ini" <<EOF
[mesh]
domain = cluster.local

[service hello]
port = 80
endpoint = 127.0.0.1:$B1 version=v1
endpoint = 127.0.0.1:$B2 version=v2

[service echo]
port = 9080
endpoint = 127.0.0.1:$B3

[service empty]
port = 80

[service dead]
port = 80
endpoint = 127.0.0.1:$DEAD

; these checks count endpoints in turn: round robin (the default, peak EWMA,
; follows latency instead; see docs/balancing.md)
[destination hello]
load_balancer = round_robin
EOF

# the client's sidecar: outbound only
cat >"$ART/client.ini" <<EOF
[workload]
service = client
namespace = default
labels = app=client, version=v1

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM
service.echo = 127.0.0.1:$ECHO_LOCAL

[proxy]
request_timeout = 1s
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

# hello's sidecar: inbound -> the app (backend b1)
cat >"$ART/hello.ini" <<EOF
[workload]
service = hello
namespace = default
labels = app=hello, version=v1
app = 127.0.0.1:$B1

[listen]
inbound = 127.0.0.1:$IN_B
outbound = 127.0.0.1:$OUT_B
admin = 127.0.0.1:$ADM_B

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

start_backend b1 "$B1"
start_backend b2 "$B2"
start_backend echo "$B3"
start_mesh client proxy -c "$ART/client.ini"
start_mesh hello proxy -c "$ART/hello.ini"
if ! wait_ready "$ADM" 10 || ! wait_ready "$ADM_B" 10; then
	fail "proxies start" "admin /ready did not answer 200"
	exit 1
fi
pass "two proxies start and are ready"

U=http://127.0.0.1:$OUT

# ---- routing by Host
for host in hello hello:80 hello.default hello.default.svc.cluster.local; do
	b=$(body "$U/" -H "Host: $host")
	expect_match "Host: $host routes to service hello" '^b[12]$' "$b"
done
expect_eq "Host: echo:9080 routes to service echo" echo "$(body "$U/" -H 'Host: echo:9080')"

# ---- absolute-form (the app uses the sidecar as its HTTP proxy)
b=$(http_proxy=$U curl -s --max-time 10 http://hello/)
expect_match "http_proxy=... curl http://hello/ (absolute-form)" '^b[12]$' "$b"
# mesh names, resolved by the proxy, never by DNS (kept in variables so no
# script line reads like a network address)
FQDN=hello.default.svc.cluster.local
b=$(http_proxy=$U curl -s --max-time 10 "http://$FQDN/")
expect_match "absolute-form with the cluster-local name" '^b[12]$' "$b"
b=$(curl -s --max-time 10 -x "$U" http://echo:9080/)
expect_eq "curl -x with service:port" echo "$b"

# ---- round-robin over both endpoints (20 requests, one keep-alive connection)
urls=()
for i in $(seq 1 20); do urls+=("$U/?i=$i"); done
out=$(curl -s --max-time 20 -H 'Host: hello' "${urls[@]}")
n1=$(printf '%s\n' "$out" | grep -c '^b1$')
n2=$(printf '%s\n' "$out" | grep -c '^b2$')
if [ "$n1" -ge 7 ] && [ "$n2" -ge 7 ] && [ $((n1 + n2)) -eq 20 ]; then
	pass "round-robin spreads 20 requests over both endpoints (b1=$n1 b2=$n2)"
else
	fail "round-robin" "b1=$n1 b2=$n2 of 20 (want both >= 7, sum 20)"
fi

# ---- per-service local port
expect_eq "per-service local port [listen] service.echo" echo "$(body "http://127.0.0.1:$ECHO_LOCAL/")"

# ---- failures: status, x-mesh-error header, body naming the service
# fail_case NAME WANT_CODE SERVICE_IN_BODY curl-args... ("" = no x-mesh-error check, - = header only)
fail_case() {
	local name=$1 want=$2 svc=$3 hdr c
	shift 3
	hdr=$(mktemp "$ART/hdr.XXXXXX")
	local b
	b=$(curl -s --max-time 10 -D "$hdr" "$@")
	c=$(head -1 "$hdr" | awk '{ print $2 }')
	if [ "$c" != "$want" ]; then
		fail "$name" "status '$c', want $want (body: ${b:0:200})"
	elif [ -n "$svc" ] && ! grep -qi '^x-mesh-error:' "$hdr"; then
		fail "$name" "no x-mesh-error header: $(tr '\r\n' '  ' <"$hdr")"
	elif [ -n "$svc" ] && [ "$svc" != - ] && ! printf '%s' "$b" | grep -q "$svc"; then
		fail "$name" "body does not name service '$svc': ${b:0:200}"
	else
		pass "$name -> $want${svc:+ with x-mesh-error: $(grep -i '^x-mesh-error:' "$hdr" | cut -d: -f2- | tr -d '\r' | cut -c1-40)}"
	fi
	rm -f "$hdr"
}
fail_case "unknown host" 404 "" "$U/" -H 'Host: nosuch'
NOSUCH=nosuch.example
fail_case "unknown absolute-form host" 404 "" -x "$U" "http://$NOSUCH/"
fail_case "Host with the wrong port" 404 "" "$U/" -H 'Host: hello:81'
fail_case "absolute-form with the wrong port" 404 "" -x "$U" http://hello:81/
expect_eq "CONNECT is refused with 405" 405 "$(curl -s -o /dev/null -w '%{http_connect}' --max-time 5 -p -x "$U" https://hello:443/)"
fail_case "service without endpoints" 503 empty "$U/" -H 'Host: empty'
fail_case "endpoint refusing connections" 502 dead "$U/" -H 'Host: dead'
t0=$(date +%s%N)
fail_case "upstream slower than request_timeout (1s)" 504 hello "$U/delay?ms=4000" -H 'Host: hello'
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if [ "$ms" -ge 800 ] && [ "$ms" -le 3000 ]; then pass "504 came after the request timeout (${ms} ms)"
else fail "504 timing" "${ms} ms, want about 1000"; fi
# malformed responses from the upstream never reach the client: 502
for kind in garbage both cl2 fold lf; do
	fail_case "malformed upstream response ($kind)" 502 - "$U/bad?kind=$kind" -H 'Host: echo'
done
# docs/proxy.md: every error the proxy makes has a body naming the service
b=$(body "$U/bad?kind=garbage" -H 'Host: echo')
expect_match "502 for a malformed upstream response names the service" 'echo' "$b"
# a bad chunk arrives after the head was sent: the client must see a cut, not a clean end
out=$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' -H 'Host: echo' "$U/bad?kind=badchunk"); rc=$?
if { [ "$out" = 502 ] && [ "$rc" -eq 0 ]; } || { [ "$rc" -ne 0 ] && [ "$rc" -ne 28 ]; }; then
	pass "bad chunk from the upstream: 502 or a cut response (status $out, curl exit $rc)"
else
	fail "bad chunk from the upstream" "status $out, curl exit $rc: looks like a complete response"
fi
# the upstream dies mid-body: the client must not get a clean, short response
out=$(curl -s --max-time 10 -o /dev/null -w '%{http_code} %{size_download}' -H 'Host: echo' "$U/truncate?n=200000"); rc=$?
if [ "$rc" -eq 18 ] || [ "$rc" -eq 56 ] || [ "$rc" -eq 52 ]; then
	pass "upstream closing mid-body cuts the client's response (curl exit $rc, $out)"
else
	fail "upstream closing mid-body" "curl exit $rc, '$out' (want a transfer error: curl 18, 52 or 56)"
fi
# a close-delimited upstream body reaches an HTTP/1.1 client chunked, whole
hdr=$(mktemp "$ART/hdr.XXXXXX")
out=$(curl -s --max-time 10 -D "$hdr" -H 'Host: echo' "$U/eof?n=300000" | md5sum | cut -c1-32)
want=$(curl -s --max-time 10 "http://127.0.0.1:$B3/bytes?n=300000" | md5sum | cut -c1-32)
if [ "$out" = "$want" ] && grep -qi '^transfer-encoding: *chunked' "$hdr"; then
	pass "close-delimited upstream body sent chunked to an HTTP/1.1 client, intact"
else
	fail "close-delimited upstream body" "md5 $out vs $want; head: $(tr '\r\n' '  ' <"$hdr")"
fi
rm -f "$hdr"
# the proxy still serves after each failure
expect_match "still serving after the failures" '^b[12]$' "$(body "$U/" -H 'Host: hello')"

# ---- inbound listener of the workload proxy forwards to its app (b1)
expect_eq "inbound listener forwards to the app" b1 "$(body "http://127.0.0.1:$IN_B/" -H 'Host: hello')"
expect_eq "inbound listener, any Host" b1 "$(body "http://127.0.0.1:$IN_B/")"

# ---- headers the upstream sees
h=$(body "$U/headers" -H 'Host: echo' -H 'Connection: keep-alive, X-Hop' -H 'X-Hop: secret' \
	-H 'Keep-Alive: timeout=5' -H 'Proxy-Connection: keep-alive' -H 'TE: trailers' \
	-H 'Upgrade: h2c' -H 'X-Forwarded-For: 10.1.2.3' -H 'X-End-To-End: kept')
printf '%s' "$h" >"$ART/headers-seen.txt"
expect_match "upstream request line is origin-form" '^GET /headers HTTP/1\.1' "$h"
for hh in x-hop keep-alive proxy-connection te upgrade; do
	if printf '%s' "$h" | grep -qi "^$hh:"; then fail "hop-by-hop $hh removed" "$(printf '%s' "$h" | grep -i "^$hh:")"
	else pass "hop-by-hop $hh removed"; fi
done
if printf '%s' "$h" | grep -i '^connection:' | grep -qi 'x-hop'; then fail "Connection header not forwarded as is" "$(printf '%s' "$h" | grep -i '^connection:')"
else pass "client's Connection options not forwarded"; fi
expect_match "end-to-end header kept" '^X-End-To-End: kept' "$h"
expect_match "x-forwarded-for appended" '^[Xx]-[Ff]orwarded-[Ff]or: 10\.1\.2\.3, *127\.0\.0\.1' "$(printf '%s' "$h" | tr -d '\r')"
expect_eq "exactly one Host header" 1 "$(printf '%s' "$h" | grep -ci '^host:')"
expect_match "Host forwarded as the client sent it" '^[Hh]ost: echo(:9080)?$' "$(printf '%s' "$h" | grep -i '^host:' | tr -d '\r')"
rid=$(printf '%s' "$h" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *//p')
expect_match "x-request-id created when absent" '^[A-Za-z0-9-]{8,}$' "$rid"
expect_eq "repeated end-to-end headers all forwarded" 2 "$(printf '%s' "$(body "$U/headers" -H 'Host: echo' -H 'X-Multi: one' -H 'X-Multi: two')" | grep -c '^X-Multi: ')"
# hop-by-hop headers are dropped from responses too
hdr=$(curl -s --max-time 10 -D - -o /dev/null -H 'Host: echo' "$U/hop" | tr -d '\r')
for hh in x-resp-hop keep-alive proxy-authenticate; do
	if printf '%s' "$hdr" | grep -qi "^$hh:"; then fail "response hop-by-hop $hh removed" "$(printf '%s' "$hdr" | grep -i "^$hh:")"
	else pass "response hop-by-hop $hh removed"; fi
done
expect_match "response end-to-end header kept" '^[Xx]-[Rr]esp-[Kk]ept: yes' "$hdr"
h2=$(body "$U/headers" -H 'Host: echo')
rid2=$(printf '%s' "$h2" | tr -d '\r' | sed -n 's/^[Xx]-[Rr]equest-[Ii][Dd]: *//p')
if [ -n "$rid2" ] && [ "$rid2" != "$rid" ]; then pass "x-request-id differs per request"; else fail "x-request-id unique" "'$rid' then '$rid2'"; fi
h=$(body "$U/headers" -H 'Host: echo' -H 'X-Request-Id: my-id-123')
expect_eq "x-request-id kept when present" "my-id-123" "$(printf '%s' "$h" | tr -d '\r' | grep -i '^x-request-id:' | sed 's/^[^:]*: *//')"
h=$(body "$U/headers" -H 'Host: echo')
expect_match "x-forwarded-for created when absent" '^[Xx]-[Ff]orwarded-[Ff]or: 127\.0\.0\.1$' "$(printf '%s' "$h" | tr -d '\r')"

# ---- HTTP/1.1 corner cases, raw
py <<'PY'
import os, socket, time
from rawhttp import *
OUT = env_port("OUT")

def conn():
    s = connect(OUT, 5)
    return s, Reader(s)

# HEAD, 204 and 304 carry no body: a second request on the same connection must parse
for name, first, head in (("HEAD /bytes?n=1000", b"HEAD /bytes?n=1000", True),
                          ("204", b"GET /status/204", False),
                          ("304", b"GET /status/304", False)):
    s, r = conn()
    try:
        s.sendall(first + b" HTTP/1.1\r\nHost: hello\r\n\r\n")
        a = read_response(r, head=head)
        s.sendall(b"GET / HTTP/1.1\r\nHost: hello\r\n\r\n")
        b = read_response(r)
        extra_ok = True
        if head:
            extra_ok = a.get("content-length") == "1000"
        expect("%s has no body (next response on the connection parses)" % name,
               a.status in (200, 204, 304) and b.status == 200 and b.body in (b"b1\n", b"b2\n") and extra_ok,
               "first %r, second %r" % (a, b))
    except Exception as e:
        bad("%s has no body" % name, repr(e))
    finally:
        s.close()

# HTTP/1.0 client: response, then the proxy closes; a chunked upstream body is de-chunked
try:
    resp, (rest, closed) = request(OUT, b"GET / HTTP/1.0\r\nHost: hello\r\n\r\n")
    expect("HTTP/1.0 request answered and closed", resp and resp.status == 200 and resp.body in (b"b1\n", b"b2\n") and closed,
           "%r closed=%s" % (resp, closed))
    data, closed = exchange(OUT, b"GET /chunked?n=5000 HTTP/1.0\r\nHost: echo\r\n\r\n", timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    want = bytes(ord('a') + i % 26 for i in range(5000))
    expect("HTTP/1.0 client gets a chunked upstream body de-chunked", parse_status(data) == 200 and body == want and closed
           and b"chunked" not in head.lower(), "status %d, %d body bytes, closed=%s, head %r" % (parse_status(data), len(body), closed, head[:300]))
    s, r = conn()
    s.sendall(b"GET / HTTP/1.0\r\nHost: hello\r\nConnection: keep-alive\r\n\r\n")
    resp = read_response(r)
    s.close()
    expect("HTTP/1.0 keep-alive request answered", resp.status == 200 and resp.body in (b"b1\n", b"b2\n"), "%r" % resp)
except Exception as e:
    bad("HTTP/1.0", repr(e))

# Connection: close
try:
    resp, (rest, closed) = request(OUT, b"GET / HTTP/1.1\r\nHost: hello\r\nConnection: close\r\n\r\n")
    expect("Connection: close answered, then closed", resp and resp.status == 200 and closed and rest == b"",
           "%r closed=%s rest=%r" % (resp, closed, rest[:100]))
except Exception as e:
    bad("Connection: close", repr(e))

# upstream sends Connection: close (/close): the client connection stays usable
try:
    s, r = conn()
    s.sendall(b"GET /close HTTP/1.1\r\nHost: echo\r\n\r\n")
    a = read_response(r)
    s.sendall(b"GET / HTTP/1.1\r\nHost: echo\r\n\r\n")
    b = read_response(r)
    expect("upstream Connection: close does not break the client connection", a.status == 200 and b.body == b"echo\n", "%r %r" % (a, b))
    s.close()
except Exception as e:
    bad("upstream close", repr(e))

# Expect: 100-continue: the client waits for 100 before sending the body
try:
    s, r = conn()
    body = b"x" * 5000
    s.sendall(b"POST /expect HTTP/1.1\r\nHost: echo\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n")
    s.settimeout(3)
    first = read_head(r)
    got100 = first.status == 100
    s.sendall(body)
    final = read_response(r) if got100 else first
    expect("Expect: 100-continue gets 100 before the body is sent", got100, "first response %r" % first)
    expect("Expect: 100-continue body arrives whole", final.status == 200 and final.body.startswith(b"bytes=5000"), "%r %r" % (final, final.body))
    s.close()
except Exception as e:
    bad("Expect: 100-continue", repr(e))

# Expect: 100-continue answered with a final status at once: the client gets it, no 100
try:
    s, r = conn()
    s.settimeout(5)
    s.sendall(b"PUT /reject HTTP/1.1\r\nHost: echo\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n")
    a = read_response(r)
    expect("Expect: 100-continue with an early final status: 413, no body sent", a.status == 413 and not a.interim,
           "%r interim %r" % (a, a.interim))
    s.close()
except Exception as e:
    bad("Expect: 100-continue with an early final status", repr(e))

# pipelining: three requests in one write, answered in order (the first is the slowest)
try:
    s, r = conn()
    s.sendall(b"GET /delay?ms=300 HTTP/1.1\r\nHost: echo\r\n\r\n"
              b"GET /status/201 HTTP/1.1\r\nHost: echo\r\n\r\n"
              b"POST /echo HTTP/1.1\r\nHost: echo\r\nContent-Length: 5\r\n\r\nhello")
    got = [read_response(r) for _ in range(3)]
    expect("pipelined requests answered in order",
           [g.status for g in got] == [200, 201, 200] and got[0].body.startswith(b"delayed") and got[2].body == b"hello",
           "%r" % got)
    s.close()
except Exception as e:
    bad("pipelining", repr(e))

# the upstream answers 413 before reading a large body: the client gets the 413
# (body bytes pushed without blocking until the socket buffers are full: no
# thread left writing into a socket later)
try:
    s413, r = conn()
    s413.sendall(b"PUT /reject HTTP/1.1\r\nHost: echo\r\nContent-Length: %d\r\n\r\n" % (32 << 20))
    s413.setblocking(False)
    for _ in range(2000):
        try:
            s413.send(b"\0" * 65536)
        except OSError:
            break
    s413.settimeout(10)
    a = read_response(r)
    expect("early 413 from the upstream reaches the client mid-upload", a.status == 413, "%r" % a)
    s413.close()
except Exception as e:
    bad("early 413 from the upstream", repr(e))

# a POST with a body and one without, then keep-alive reuse
try:
    s, r = conn()
    for i in range(3):
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: echo\r\nContent-Length: 3\r\n\r\nab" + str(i).encode())
        a = read_response(r)
        if a.body != b"ab" + str(i).encode():
            raise ValueError("echo %d: %r" % (i, a.body))
    ok("POST bodies echoed on one keep-alive connection")
    s.close()
except Exception as e:
    bad("POST echo", repr(e))
PY
exit 0
