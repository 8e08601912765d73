"""tmhttp: keep-alive HTTP clients and statistics for the traffic-management
scenarios (30_match to 35_lab2). Imported by the python heredocs of lib.sh's
`py`, next to rawhttp (which reports PASS/FAIL with ok()/bad()/expect()).

Every socket has a timeout and every loop a bound.
"""
import http.client
import math
import os
import socket
import threading
import time


class Resp:
    def __init__(self, status, headers, body, secs):
        self.status = status
        self.headers = headers      # list of (lowercase name, value)
        self.body = body
        self.secs = secs

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def all(self, name):
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def first(self):
        """The first body line: a flaky's or backend's name."""
        return self.body.split(b"\n", 1)[0].decode("latin-1")

    def __repr__(self):
        return "<%d %s %r>" % (self.status, self.first[:40], self.headers[:6])


class Client:
    """One keep-alive connection to 127.0.0.1:port, reopened when it breaks
    (a proxy's 4xx/5xx may close it). source: a local address to bind."""

    def __init__(self, port, timeout=10.0, source=None):
        self.port = port
        self.timeout = timeout
        self.source = source
        self.conn = None

    def _open(self):
        self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout,
                                               source_address=(self.source, 0) if self.source else None)

    def req(self, path, host="localhost", method="GET", headers=None, body=None):
        hs = {"Host": host}
        if headers:
            hs.update(headers)
        last = None
        for attempt in range(2):
            if self.conn is None:
                self._open()
            t0 = time.monotonic()
            try:
                self.conn.request(method, path, body=body, headers=hs)
                r = self.conn.getresponse()
                data = r.read()
                out = Resp(r.status, [(k.lower(), v) for k, v in r.getheaders()], data, time.monotonic() - t0)
                if r.will_close:
                    self.close()
                return out
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError,
                    http.client.BadStatusLine) as e:
                # a kept-alive connection the other side had closed: once more on a new one
                last = e
                self.close()
                if attempt == 0 and body is None:
                    continue
                raise
            except Exception:
                self.close()   # never reuse a connection in an unknown state
                raise
        raise last

    def close(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except OSError:
                pass
        self.conn = None


def parallel(fn, n_items, workers):
    """Calls fn(client_index, item_index) for item 0..n_items-1 over `workers`
    threads (each thread takes the next item); returns the results in item order.
    An exception becomes the result."""
    out = [None] * n_items
    nxt = [0]
    lock = threading.Lock()

    def run(w):
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= n_items:
                return
            try:
                out[i] = fn(w, i)
            except Exception as e:  # recorded, judged by the caller
                out[i] = e

    ts = [threading.Thread(target=run, args=(w,), daemon=True) for w in range(workers)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(300)
    return out


def bounds(n, p, k=4.0):
    """The k-sigma interval of a Binomial(n, p) count, (lo, hi), clipped to [0, n].
    With k = 4 a correct implementation falls outside with probability ~6e-5."""
    sd = math.sqrt(n * p * (1.0 - p))
    return max(0, int(math.floor(n * p - k * sd))), min(n, int(math.ceil(n * p + k * sd)))


def within(name, count, n, p, k=4.0):
    """PASS when count is inside the k-sigma binomial bound of n trials at p."""
    from rawhttp import expect
    lo, hi = bounds(n, p, k)
    return expect("%s: %d of %d, want %d..%d (%.0f%% +- %g sigma)" % (name, count, n, lo, hi, p * 100, k),
                  lo <= count <= hi, "%d outside %d..%d" % (count, lo, hi))


def ctl(port, what):
    """A flaky's control URL; returns the body text."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/ctl/" + what)
        return c.getresponse().read().decode()
    finally:
        c.close()


def fstats(port):
    return {k: int(v) for k, v in (kv.split("=") for kv in ctl(port, "stats").split())}


def flog(port):
    """A flaky's request log as a list of dicts (id, host, method, target, bytes, sum, status)."""
    out = []
    for line in ctl(port, "log").splitlines():
        d = {}
        for kv in line.split(" "):
            k, _, v = kv.partition("=")
            d[k] = v
        out.append(d)
    return out


def metrics(port):
    """The proxy's /metrics as text."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


def metric_sum(port, *must):
    """Sum of the samples whose line contains every string in must."""
    s = 0.0
    for line in metrics(port).splitlines():
        if line.startswith("#"):
            continue
        if all(m in line for m in must):
            s += float(line.rsplit(" ", 1)[1])
    return int(s)


def env(name):
    return int(os.environ[name])
