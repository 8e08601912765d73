#!/usr/bin/env bash
# 06_smuggling: strict parsing. Every ambiguous or malformed request gets a
# 4xx/5xx with a short reason, the connection is closed, and nothing reaches
# the backend (its request counter does not move). Each case also carries a
# second, smuggled request after the bad one.
. "$(dirname "$0")/lib.sh"

ports B1 OUT ADM
export B1 OUT

cat >"$ART/proxy.ini" <<EOF
[workload]
service = client

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
max_request_line = 2k
max_header_size = 8k
drain_timeout = 1s

[mesh]
domain = cluster.local

[service hello]
port = 80
endpoint = 127.0.0.1:$B1
EOF

start_backend hello "$B1"
start_mesh proxy proxy -c "$ART/proxy.ini"
wait_ready "$ADM" 10 || { fail "proxy starts" "/ready did not answer 200"; exit 1; }

py <<'PY'
import re
from rawhttp import *
STATUS_LINE = re.compile(rb"(?:^|\n)HTTP/1\.[01] (\d{3}) ")
B1, OUT = env_port("B1"), env_port("OUT")
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: hello\r\n\r\n"

def case(name, req, want, forwarded_max=0):
    """want: allowed statuses. forwarded_max: requests the backend may see
    (1 only where the head is valid and the error is in the body)."""
    before = stats(B1)
    try:
        data, closed = exchange(OUT, req, timeout=3)
    except Exception as e:
        bad(name, "exchange: %r" % e)
        return
    after = stats(B1)
    status = parse_status(data)
    head, _, body = data.partition(b"\r\n\r\n")
    seen = after["requests"] - before["requests"]
    problems = []
    if status not in want:
        problems.append("status %d, want %s" % (status, "/".join(map(str, want))))
    if status and not body.strip():
        problems.append("no reason in the body")
    if len(STATUS_LINE.findall(data)) > 1:
        problems.append("more than one response: %r" % data[:300])
    if not closed:
        problems.append("connection not closed")
    if b"\r\nx-backend:" in head.lower():
        problems.append("answered by the backend")
    if seen > forwarded_max:
        problems.append("backend saw %d request(s)" % seen)
    if problems:
        bad(name, "; ".join(problems) + " | got %r" % data[:200])
    else:
        ok("%s -> %d %s, closed, backend saw %d" % (name, status, body.strip()[:60].decode("latin-1"), seen))

H = b"Host: hello\r\n"
case("both Content-Length and Transfer-Encoding",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [400])
case("Transfer-Encoding then Content-Length",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 40\r\n\r\n0\r\n\r\n" + SMUGGLED, [400])
case("conflicting Content-Length fields",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello" + SMUGGLED, [400])
case("conflicting Content-Length list",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5, 6\r\n\r\nhello" + SMUGGLED, [400])
for v in (b"+5", b"5 5", b"0x5", b"-5", b"", b"5a", b"99999999999999999999999"):
    case("bad Content-Length %r" % v.decode(),
         b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: " + v + b"\r\n\r\nhello" + SMUGGLED, [400])
case("Transfer-Encoding: gzip",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n" + SMUGGLED, [501, 400])
case("Transfer-Encoding: gzip, chunked",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [501, 400])
case("Transfer-Encoding: chunked, chunked",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [501, 400])
case("two Transfer-Encoding fields",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n" + SMUGGLED, [501, 400])
case("Transfer-Encoding: xchunked",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [501, 400])
case("Transfer-Encoding in HTTP/1.0",
     b"POST /echo HTTP/1.0\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [400])
# the head is valid here, so the proxy may have started forwarding it: the
# backend may see that one (truncated) request, never the smuggled one
for size in (b"zz", b"-5", b"fffffffffffffffff1", b"5 ", b"0x5"):
    case("bad chunk size %r" % size.decode(),
         b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n" + SMUGGLED,
         [400], forwarded_max=1)
case("chunk data not followed by CRLF",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" + SMUGGLED,
     [400], forwarded_max=1)
case("obs-fold",
     b"GET / HTTP/1.1\r\n" + H + b"X-Folded: a\r\n b\r\n\r\n" + SMUGGLED, [400])
case("obs-fold of Transfer-Encoding",
     b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + SMUGGLED, [400])
case("NUL in a header value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n" + SMUGGLED, [400])
case("CR in a header value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n" + SMUGGLED, [400])
case("LF in a header value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\nContent-Length: 5\r\n\r\nhello" + SMUGGLED, [400])
case("bare LF line endings", b"GET / HTTP/1.1\n" + b"Host: hello\n\n" + SMUGGLED, [400])
case("space before the colon", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length : 5\r\n\r\nhello" + SMUGGLED, [400])
case("HTTP/1.1 without Host", b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n" + SMUGGLED, [400])
case("two Host fields", b"GET / HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n" + SMUGGLED, [400])
case("Host with a space", b"GET / HTTP/1.1\r\nHost: hel lo\r\n\r\n" + SMUGGLED, [400])
case("space in the request-target", b"GET /a b HTTP/1.1\r\n" + H + b"\r\n" + SMUGGLED, [400])
case("unknown HTTP version", b"GET / HTTP/2.7\r\n" + H + b"\r\n" + SMUGGLED, [505, 400])
case("request line over max_request_line (2k)", b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n" + H + b"\r\n", [414])
case("head over max_header_size (8k)", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 9000 + b"\r\n\r\n", [431])
case("more than max_headers (100) fields",
     b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-N%d: v\r\n" % i for i in range(120)) + b"\r\n", [431])
case("head over max_header_size in many fields",
     b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 90) for i in range(120)) + b"\r\n", [431])

# just under the limits: forwarded normally
def fine(name, req):
    before = stats(B1)
    resp, (rest, closed) = request(OUT, req, timeout=3)
    seen = stats(B1)["requests"] - before["requests"]
    expect(name, resp is not None and resp.status == 200 and seen == 1, "%r, backend saw %d" % (resp, seen))
fine("request line just under max_request_line is forwarded",
     b"GET /?" + b"a" * 1900 + b" HTTP/1.1\r\n" + H + b"Connection: close\r\n\r\n")
fine("head just under max_header_size is forwarded",
     b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 6000 + b"\r\nConnection: close\r\n\r\n")
fine("identical duplicate Content-Length is accepted (RFC 9112 6.3)",
     b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")

# a valid request, then a bad one, on one connection: the first is answered,
# the second rejected, nothing smuggled through
before = stats(B1)
data, closed = exchange(OUT, b"GET / HTTP/1.1\r\n" + H + b"\r\n"
                        + b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                        + SMUGGLED, timeout=3)
seen = stats(B1)["requests"] - before["requests"]
statuses = [int(x) for x in STATUS_LINE.findall(data)]
expect("good then bad on one connection: 200 then 400, close, backend saw 1",
       statuses == [200, 400] and closed and seen == 1, "statuses %r closed=%s backend saw %d" % (statuses, closed, seen))
PY
exit 0
