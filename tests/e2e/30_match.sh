#!/usr/bin/env bash
# 30_match: VirtualService matching ([route HOST/NAME], issue #3). Every match
# kind (path exact / prefix / regex; header exact / prefix / regex / present /
# absent; method; query exact / regex / present / absent; source labels of the
# calling workload), all conditions of a block ANDed, several blocks ORed,
# rules tried in file order with the first match winning (the proxy file's
# rules before the mesh file's), hosts given as a service in any of its
# forms, as a wildcard (*.shop.example) and as a literal host (bookinfo.com,
# the seed's VirtualService) routed to a service, and requests that no rule
# matches - or for a service without rules - going to the whole service.
#
# Most rules answer with direct_response and a body naming the rule, so a
# response tells exactly which rule matched; requests that match nothing reach
# the backends (flaky b1/b2/b3, subsets v1/v2/v3 of service web), whose body
# names the endpoint.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/tm.sh"

ports B1 B2 B3 P1 P2 OUT ADM OUT2 ADM2
export OUT OUT2 B1 B2 B3

cat >"$ART/mesh.ini" <<EOF
[service web]
port = 80
endpoint = 127.0.0.1:$B1 version=v1
endpoint = 127.0.0.1:$B2 version=v2
endpoint = 127.0.0.1:$B3 version=v3

[service plain]
port = 80
endpoint = 127.0.0.1:$P1
endpoint = 127.0.0.1:$P2

[destination web]
load_balancer = round_robin   ; so "the whole service" shows as b1, b2, b3 in turn
subset.v1 = version=v1
subset.v2 = version=v2
subset.v3 = version=v3

[destination plain]
load_balancer = round_robin

; ---- one rule per match kind, host web, in this order
[route web/path-exact]
match.path = /exact
direct_response = 200
direct_response.body = path-exact

[route web/path-prefix]
match.path = prefix:/api/
direct_response = 200
direct_response.body = path-prefix

[route web/path-regex]
match.path = regex:/items/[0-9]+
direct_response = 200
direct_response.body = path-regex

[route web/hdr-exact]
match.header.X-Exact = jason       ; the name in any case
direct_response = 200
direct_response.body = hdr-exact

[route web/hdr-exact-literal]
match.header.x-literal = exact:present
direct_response = 200
direct_response.body = hdr-exact-literal

[route web/hdr-prefix]
match.header.x-prefix = prefix:beta-
direct_response = 200
direct_response.body = hdr-prefix

[route web/hdr-regex]
match.header.x-regex = regex:v[12]
direct_response = 200
direct_response.body = hdr-regex

[route web/hdr-present]
match.header.x-present = present
direct_response = 200
direct_response.body = hdr-present

; absent, ANDed with a path: only /absent without x-token
[route web/hdr-absent]
match.path = /absent
match.header.x-token = absent
direct_response = 200
direct_response.body = hdr-absent

[route web/absent-with-token]
match.path = /absent
direct_response = 200
direct_response.body = absent-with-token

[route web/method]
match.method = delete              ; stored uppercase
match.path = prefix:/m/
direct_response = 200
direct_response.body = method

[route web/query-exact]
match.query.color = exact:blue
direct_response = 200
direct_response.body = query-exact

[route web/query-plain]
match.query.shape = round
direct_response = 200
direct_response.body = query-plain

[route web/query-regex]
match.query.size = regex:[0-9]+
direct_response = 200
direct_response.body = query-regex

[route web/query-absent]
match.path = /qa
match.query.debug = absent
direct_response = 200
direct_response.body = query-absent

[route web/query-present]
match.path = /qa
match.query.debug = present
direct_response = 200
direct_response.body = query-present

[route web/source]
match.path = /src
match.source = app=client, version=v1
direct_response = 200
direct_response.body = source

; three blocks: any of them
[route web/or]
match.header.x-or = yes
match.2.path = /or-path
match.3.method = PUT
match.3.path = /or3
direct_response = 200
direct_response.body = or

; file order: both match /order/x, the first wins
[route web/order-1]
match.path = prefix:/order
direct_response = 200
direct_response.body = order-1

[route web/order-2]
match.path = prefix:/ord
direct_response = 200
direct_response.body = order-2

; forwarding rules (the body then names the endpoint)
[route web/to-v2]
match.header.x-version = v2
to = v2

[route web/to-v3]
match.path = prefix:/v3/
to = web/v3

; a host given in another form of the same service
[route alias/x]
hosts = web.default.svc.cluster.local
match.path = /alias
direct_response = 200
direct_response.body = alias

; ---- hosts that are not services
[route shop/wild]
hosts = *.shop.example
to = web/v3

; the seed's VirtualService bookinfo: host bookinfo.com, jason to v2, else v1
[route bookinfo.com/jason]
match.header.end-user = jason
to = web/v2

[route bookinfo.com/default]
to = web/v1
EOF

# the caller: labels for match.source; one rule of its own, read before the mesh file's
cat >"$ART/client.ini" <<EOF
[workload]
labels = app=client, version=v1, zone=a

[listen]
outbound = 127.0.0.1:$OUT
admin = 127.0.0.1:$ADM

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini

; also matches /order/first, like web/order-1 in the mesh file: this one comes first
[route web/proxy-file]
match.path = /order/first
direct_response = 200
direct_response.body = proxy-file
EOF

# another caller, other labels (match.source must not match it)
cat >"$ART/other.ini" <<EOF
[workload]
labels = app=other, version=v1

[listen]
outbound = 127.0.0.1:$OUT2
admin = 127.0.0.1:$ADM2

[proxy]
drain_timeout = 1s

[control]
mesh = mesh.ini
EOF

for b in b1:$B1 b2:$B2 b3:$B3 p1:$P1 p2:$P2; do start_flaky "${b%%:*}" "${b#*:}" || exit 1; done
start_proxy client "$ART/client.ini" "$ADM" || exit 1
start_proxy other "$ART/other.ini" "$ADM2" || exit 1
pass "backends and two proxies ready"
if grep -q 'warning' "$ART/client.log"; then
	fail "the rules load without warnings" "$(grep warning "$ART/client.log" | head -3)"
else
	pass "the rules load without warnings"
fi

py <<'PY'
from rawhttp import ok, bad, expect
from tmhttp import Client, env

OUT, OUT2 = env("OUT"), env("OUT2")
cli, oth = Client(OUT), Client(OUT2)
DEFAULT = {"b1", "b2", "b3"}   # no rule matched: the whole service web

def got(r):
    if r.status == 200 and r.first in DEFAULT:
        return "default"
    if r.status == 200:
        return r.body.decode("latin-1")
    return "status %d" % r.status

# (what, host, method, path, headers, want). want "default" = the whole service.
cases = [
    ("path exact", "web", "GET", "/exact", {}, "path-exact"),
    ("path exact ignores the query", "web", "GET", "/exact?x=1", {}, "path-exact"),
    ("path exact: /exact/ differs", "web", "GET", "/exact/", {}, "default"),
    ("path exact: /exactly differs", "web", "GET", "/exactly", {}, "default"),
    ("path exact is case-sensitive", "web", "GET", "/EXACT", {}, "default"),
    ("path prefix", "web", "GET", "/api/v1/books", {}, "path-prefix"),
    ("path prefix: /api is shorter than prefix:/api/", "web", "GET", "/api", {}, "default"),
    ("path prefix: /apix", "web", "GET", "/apix", {}, "default"),
    ("path regex", "web", "GET", "/items/42", {}, "path-regex"),
    ("path regex matches the whole path (/items/42/x)", "web", "GET", "/items/42/x", {}, "default"),
    ("path regex: /xitems/42", "web", "GET", "/xitems/42", {}, "default"),
    ("path regex: /items/abc", "web", "GET", "/items/abc", {}, "default"),
    ("header exact", "web", "GET", "/h", {"x-exact": "jason"}, "hdr-exact"),
    ("header exact, name in other case", "web", "GET", "/h", {"X-EXACT": "jason"}, "hdr-exact"),
    ("header exact: value case matters", "web", "GET", "/h", {"x-exact": "Jason"}, "default"),
    ("header exact: jason2", "web", "GET", "/h", {"x-exact": "jason2"}, "default"),
    ("header exact:present is the literal 'present'", "web", "GET", "/h", {"x-literal": "present"}, "hdr-exact-literal"),
    ("header exact:present, other value", "web", "GET", "/h", {"x-literal": "yes"}, "default"),
    ("header prefix", "web", "GET", "/h", {"x-prefix": "beta-7"}, "hdr-prefix"),
    ("header prefix: not at the start", "web", "GET", "/h", {"x-prefix": "alpha-beta-"}, "default"),
    ("header prefix: shorter", "web", "GET", "/h", {"x-prefix": "beta"}, "default"),
    ("header regex", "web", "GET", "/h", {"x-regex": "v2"}, "hdr-regex"),
    ("header regex is whole-value (v10)", "web", "GET", "/h", {"x-regex": "v10"}, "default"),
    ("header regex is whole-value (xv1)", "web", "GET", "/h", {"x-regex": "xv1"}, "default"),
    ("header present", "web", "GET", "/h", {"x-present": "anything"}, "hdr-present"),
    ("header present with an empty value", "web", "GET", "/h", {"x-present": ""}, "hdr-present"),
    ("header absent (and path)", "web", "GET", "/absent", {}, "hdr-absent"),
    ("header absent: with the header the next rule matches", "web", "GET", "/absent", {"x-token": "t"}, "absent-with-token"),
    ("method (written lowercase in the rule)", "web", "DELETE", "/m/1", {}, "method"),
    ("method: GET does not match DELETE", "web", "GET", "/m/1", {}, "default"),
    ("method and path ANDed: DELETE elsewhere", "web", "DELETE", "/other", {}, "default"),
    ("query exact", "web", "GET", "/q?color=blue", {}, "query-exact"),
    ("query exact among other parameters", "web", "GET", "/q?a=1&color=blue&b=2", {}, "query-exact"),
    ("query exact: bluex", "web", "GET", "/q?color=bluex", {}, "default"),
    ("query names are case-sensitive", "web", "GET", "/q?Color=blue", {}, "default"),
    ("query plain value is exact", "web", "GET", "/q?shape=round", {}, "query-plain"),
    ("query regex", "web", "GET", "/q?size=12", {}, "query-regex"),
    ("query regex is whole-value", "web", "GET", "/q?size=12a", {}, "default"),
    ("query absent", "web", "GET", "/qa", {}, "query-absent"),
    ("query absent: other parameters", "web", "GET", "/qa?x=1", {}, "query-absent"),
    ("query present", "web", "GET", "/qa?debug=1", {}, "query-present"),
    ("block 1 of 3 (header)", "web", "GET", "/zzz", {"x-or": "yes"}, "or"),
    ("block 2 of 3 (path)", "web", "GET", "/or-path", {}, "or"),
    ("block 3 of 3 (method and path)", "web", "PUT", "/or3", {}, "or"),
    ("block 3 needs both conditions", "web", "GET", "/or3", {}, "default"),
    ("file order: first of two matching rules wins", "web", "GET", "/order/x", {}, "order-1"),
    ("file order: the second rule matches what the first does not", "web", "GET", "/ordinal", {}, "order-2"),
    ("the proxy file's rule comes before the mesh file's", "web", "GET", "/order/first", {}, "proxy-file"),
    ("first match wins across kinds (path-exact before hdr-exact)", "web", "GET", "/exact", {"x-exact": "jason"}, "path-exact"),
    ("first match wins across kinds (path-prefix before to-v2)", "web", "GET", "/api/x", {"x-version": "v2"}, "path-prefix"),
    ("host web:80 is service web", "web:80", "GET", "/exact", {}, "path-exact"),
    ("host web.default.svc.cluster.local is service web", "web.default.svc.cluster.local", "GET", "/items/7", {}, "path-regex"),
    ("rule for hosts = web.default.svc.cluster.local, request Host: web", "web", "GET", "/alias", {}, "alias"),
    ("rule for hosts = web.default.svc.cluster.local, request Host: web.default:80", "web.default:80", "GET", "/alias", {}, "alias"),
]
for what, host, method, path, hs, want in cases:
    try:
        r = cli.req(path, host=host, method=method, headers=hs)
        g = got(r)
        expect("%s: %s %s%s -> %s" % (what, method, host, path, want), g == want, "got %r (%r)" % (g, r))
    except Exception as e:
        bad(what, repr(e))

# source labels: the same request through a proxy whose workload has other labels
r = cli.req("/src", host="web")
expect("match.source: caller app=client, version=v1 matches", got(r) == "source", "%r" % r)
r = oth.req("/src", host="web")
expect("match.source: caller app=other does not match (goes to the whole service)", got(r) == "default", "%r" % r)
r = oth.req("/exact", host="web")
expect("the other caller's proxy applies the same mesh rules", got(r) == "path-exact", "%r" % r)

# forwarding rules: every request lands on the subset
firsts = [cli.req("/", host="web", headers={"x-version": "v2"}).first for _ in range(9)]
expect("to = v2 (header x-version: v2): 9 of 9 on b2", firsts == ["b2"] * 9, "%r" % firsts)
firsts = [cli.req("/v3/a", host="web").first for _ in range(9)]
expect("to = web/v3 (prefix /v3/): 9 of 9 on b3", firsts == ["b3"] * 9, "%r" % firsts)

# no rule matches: the whole service, round robin over all three endpoints
firsts = [cli.req("/nothing/%d" % i, host="web").first for i in range(9)]
expect("no rule matches: the whole service (round robin b1, b2, b3)",
       sorted(firsts) == ["b1"] * 3 + ["b2"] * 3 + ["b3"] * 3, "%r" % firsts)

# a service without any rule
firsts = [cli.req("/exact", host="plain").first for i in range(6)]
expect("a service without rules goes to its endpoints (p1, p2 in turn), web's rules do not apply",
       sorted(firsts) == ["p1"] * 3 + ["p2"] * 3, "%r" % firsts)

# wildcard host
for host in ("a.shop.example", "x.y.shop.example", "A.Shop.EXAMPLE", "a.shop.example:8080"):
    firsts = [cli.req("/", host=host).first for _ in range(3)]
    expect("hosts = *.shop.example: Host %s -> web/v3" % host, firsts == ["b3"] * 3, "%r" % firsts)
for host in ("shop.example", "a.shop.example.com", "ashop.example"):
    r = cli.req("/", host=host)
    expect("hosts = *.shop.example: Host %s is not covered (404)" % host, r.status == 404, "%r" % r)

# literal host, the seed's bookinfo VirtualService
firsts = [cli.req("/", host="bookinfo.com").first for _ in range(6)]
expect("Host bookinfo.com -> web/v1 (6 of 6)", firsts == ["b1"] * 6, "%r" % firsts)
firsts = [cli.req("/", host="bookinfo.com", headers={"end-user": "jason"}).first for _ in range(6)]
expect("Host bookinfo.com, end-user: jason -> web/v2 (6 of 6)", firsts == ["b2"] * 6, "%r" % firsts)
r = cli.req("/", host="BookInfo.COM:80")
expect("Host BookInfo.COM:80: case and port ignored", r.status == 200 and r.first == "b1", "%r" % r)
r = cli.req("/", host="www.bookinfo.com")
expect("Host www.bookinfo.com is not bookinfo.com (404)", r.status == 404, "%r" % r)
# the forwarded request keeps the literal Host
r = cli.req("/", host="bookinfo.com")
expect("the backend sees Host: bookinfo.com", b"\r\nhost: bookinfo.com\r\n" in r.body.lower(), "%r" % r.body[:300])
PY

# absolute-form (the app uses the sidecar as its http_proxy): the same rules
expect_eq "absolute-form request http://web/exact matches path-exact" path-exact \
	"$(curl -s --max-time 5 -x "http://127.0.0.1:$OUT" http://web/exact)"
BK=bookinfo.com   # a route host resolved by the proxy, never by DNS
expect_eq "absolute-form request for $BK with end-user: jason -> b2" b2 \
	"$(curl -s --max-time 5 -x "http://127.0.0.1:$OUT" -H 'end-user: jason' "http://$BK/" | head -1)"
# direct responses never reach a backend
web_total() { local t=0 p; for p in "$B1" "$B2" "$B3"; do t=$((t + $(fstat "$p" requests))); done; echo "$t"; }
before=$(web_total)
for i in 1 2 3 4 5; do curl -s -o /dev/null --max-time 5 -H 'Host: web' "http://127.0.0.1:$OUT/exact"; done
expect_eq "5 direct responses: no request reached web's endpoints" "$before" "$(web_total)"
sleep 1.2   # the access log is flushed every second
h=$(grep -c '"GET /exact HTTP/1.1" 200' "$ART/client.log")
if [ "$h" -ge 5 ]; then pass "direct responses are in the access log ($h for /exact)"; else fail "access log of direct responses" "$h lines"; fi
exit 0
