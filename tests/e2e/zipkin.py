#!/usr/bin/env python3
"""zipkin.py - a tiny Zipkin v2 collector for the tracing scenarios.

  python3 zipkin.py PORT SPANS_FILE

POST /api/v2/spans (Content-Type application/json, a JSON array of spans, as
Zipkin and Jaeger accept it): every span is appended to SPANS_FILE as one JSON
line, answer 202. Anything that is not a JSON array of objects gets 400 and is
logged on stderr, so a scenario can tell that the proxies sent valid JSON.
GET /api/v2/spans returns every span received so far (a JSON array);
GET /bad returns the number of rejected posts; GET /conns returns "POSTS
CONNECTIONS CUT": posts answered, the connections they came on, and posts
cut off. After GET /flaky/on, the second and later posts on a connection are
read and then answered by closing it (as a collector that closed an idle
kept-alive connection just when the post went out); GET /flaky/off ends
that. Only the standard library.
"""
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
OUT = sys.argv[2]
lock = threading.Lock()
spans = []
bad = [0]
posts_on = {}   # client (address, port) -> posts seen on that connection
flaky = [False]
cut = [0]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def answer(self, code, body=b"", ctype="text/plain"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(n)
        if self.path != "/api/v2/spans":
            return self.answer(404)
        with lock:
            k = self.client_address
            posts_on[k] = posts_on.get(k, 0) + 1
            if flaky[0] and posts_on[k] >= 2:
                cut[0] += 1
                self.close_connection = True
                return
        try:
            if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
                raise ValueError("content-type %r" % self.headers.get("Content-Type"))
            got = json.loads(data.decode("utf-8"))
            if not isinstance(got, list) or not all(isinstance(s, dict) for s in got):
                raise ValueError("not an array of span objects")
        except Exception as e:  # noqa: BLE001 - anything wrong is a 400
            with lock:
                bad[0] += 1
            sys.stderr.write("rejected post: %s: %r\n" % (e, data[:200]))
            return self.answer(400, b"bad spans\n")
        with lock:
            spans.extend(got)
            with open(OUT, "a") as f:
                for s in got:
                    f.write(json.dumps(s) + "\n")
        self.answer(202)

    def do_GET(self):
        if self.path == "/api/v2/spans":
            with lock:
                body = json.dumps(spans).encode()
            return self.answer(200, body, "application/json")
        if self.path == "/bad":
            with lock:
                return self.answer(200, str(bad[0]).encode())
        if self.path == "/conns":
            with lock:
                posts = sum(posts_on.values()) - cut[0]
                return self.answer(200, ("%d %d %d" % (posts, len(posts_on), cut[0])).encode())
        if self.path in ("/flaky/on", "/flaky/off"):
            flaky[0] = self.path == "/flaky/on"
            return self.answer(200)
        self.answer(404)


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
