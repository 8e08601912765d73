"""rawhttp: raw-socket HTTP/1.1 and WebSocket helpers for the e2e scenarios.

Imported by the python heredocs that lib.sh's `py` runs. Report with ok(name)
and bad(name, reason): they print the PASS/FAIL lines build.sh counts. Every
socket operation has a timeout, every loop a bound.
"""
import base64
import hashlib
import os
import socket
import struct
import sys
import time

SCENARIO = os.environ.get("SCENARIO", "py")


def ok(name):
    print("PASS: %s: %s" % (SCENARIO, name), flush=True)
    return True


def bad(name, reason):
    print("FAIL: %s: %s: %s" % (SCENARIO, name, reason), flush=True)
    return False


def expect(name, cond, reason):
    return ok(name) if cond else bad(name, reason)


def env_port(name):
    return int(os.environ[name])


def connect(port, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    return s


class Closed(Exception):
    pass


class Reader:
    """Buffered reads from a socket; raises Closed at EOF, socket.timeout on timeout."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""
        self.eof = False

    def _more(self):
        if self.eof:
            raise Closed()
        d = self.s.recv(65536)
        if not d:
            self.eof = True
            raise Closed()
        self.buf += d

    def line(self, limit=65536):
        for _ in range(100000):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                ln, self.buf = self.buf[:i], self.buf[i + 2:]
                return ln
            if len(self.buf) > limit:
                raise ValueError("line too long")
            self._more()
        raise ValueError("line: too many reads")

    def exact(self, n):
        for _ in range(10000000):
            if len(self.buf) >= n:
                d, self.buf = self.buf[:n], self.buf[n:]
                return d
            self._more()
        raise ValueError("exact: too many reads")

    def until_close(self, limit=1 << 26):
        """Everything up to EOF; returns (data, closed) - closed False on timeout."""
        try:
            for _ in range(100000):
                if len(self.buf) > limit:
                    break
                self._more()
        except Closed:
            d, self.buf = self.buf, b""
            return d, True
        except (socket.timeout, TimeoutError):
            pass
        except (ConnectionResetError, BrokenPipeError):
            d, self.buf = self.buf, b""
            return d, True
        d, self.buf = self.buf, b""
        return d, False


class Response:
    def __init__(self):
        self.version = ""
        self.status = 0
        self.reason = ""
        self.headers = []  # (lowercase name, value)
        self.body = b""
        self.trailers = []
        self.chunked = False
        self.interim = []  # 1xx responses seen before this one

    def get(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    def __repr__(self):
        return "<%d %r %d bytes>" % (self.status, self.headers, len(self.body))


def read_head(r):
    line = r.line()
    parts = line.decode("latin-1").split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
        raise ValueError("bad status line %r" % line[:100])
    resp = Response()
    resp.version = parts[0]
    resp.status = int(parts[1])
    resp.reason = parts[2] if len(parts) > 2 else ""
    for _ in range(1000):
        h = r.line()
        if not h:
            return resp
        k, _, v = h.decode("latin-1").partition(":")
        resp.headers.append((k.strip().lower(), v.strip()))
    raise ValueError("too many headers")


def read_response(r, head=False, keep_interim=True):
    """Reads one response (skipping and recording 1xx) from a Reader."""
    interim = []
    for _ in range(10):
        resp = read_head(r)
        if 100 <= resp.status < 200 and resp.status != 101:
            interim.append(resp)
            continue
        break
    resp.interim = interim
    if head or resp.status in (204, 304) or resp.status == 101:
        return resp
    te = resp.get("transfer-encoding")
    cl = resp.get("content-length")
    if te is not None and "chunked" in te.lower():
        resp.chunked = True
        out = []
        for _ in range(10000000):
            size_line = r.line()
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            out.append(r.exact(size))
            if r.line() != b"":
                raise ValueError("chunk not followed by CRLF")
        for _ in range(1000):
            t = r.line()
            if not t:
                break
            k, _, v = t.decode("latin-1").partition(":")
            resp.trailers.append((k.strip().lower(), v.strip()))
        resp.body = b"".join(out)
    elif cl is not None:
        resp.body = r.exact(int(cl))
    else:
        resp.body, _ = r.until_close()
    return resp


def request(port, data, head=False, timeout=5.0):
    """Sends raw bytes on a new connection, reads one response.
    Returns (Response or None, rest_and_close) where rest_and_close is
    (bytes after the response until EOF/timeout, closed?)."""
    s = connect(port, timeout)
    try:
        s.sendall(data)
        r = Reader(s)
        try:
            resp = read_response(r, head=head)
        except (Closed, ConnectionResetError):
            return None, (r.buf, True)
        rest = r.until_close()
        return resp, rest
    finally:
        s.close()


def exchange(port, data, timeout=3.0):
    """Sends raw bytes, returns (everything received until close or timeout, closed?)."""
    s = connect(port, timeout)
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        return Reader(s).until_close()
    finally:
        s.close()


def parse_status(data):
    """Status code of the first response in raw bytes (0 if none)."""
    try:
        first = data.split(b"\r\n", 1)[0].split(b" ")
        return int(first[1])
    except (IndexError, ValueError):
        return 0


def get(port, path, host="localhost", headers=(), timeout=5.0):
    hs = "".join("%s: %s\r\n" % kv for kv in headers)
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\n%sConnection: close\r\n\r\n" % (path, host, hs)).encode()
    resp, _ = request(port, req, timeout=timeout)
    return resp


def stats(port):
    """The backend's /stats as a dict of ints."""
    resp = get(port, "/stats")
    return {k: int(v) for k, v in (kv.split("=") for kv in resp.body.decode().split())}


# ------------------------------------------------------------------ WebSocket

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_handshake(sock, reader, host, path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    req = ("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, host, key))
    sock.sendall(req.encode())
    resp = read_response(reader)
    want = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
    return resp, want


def ws_frame(opcode, payload, fin=True, mask=True):
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        hdr = struct.pack("!BB", b0, (0x80 if mask else 0) | n)
    elif n < 65536:
        hdr = struct.pack("!BBH", b0, (0x80 if mask else 0) | 126, n)
    else:
        hdr = struct.pack("!BBQ", b0, (0x80 if mask else 0) | 127, n)
    if not mask:
        return hdr + payload
    m = os.urandom(4)
    return hdr + m + bytes(b ^ m[i % 4] for i, b in enumerate(payload))


def ws_read(reader):
    """Returns (fin, opcode, payload) of one frame."""
    b0, b1 = reader.exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", reader.exact(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", reader.exact(8))[0]
    m = reader.exact(4) if b1 & 0x80 else None
    p = reader.exact(n)
    if m:
        p = bytes(b ^ m[i % 4] for i, b in enumerate(p))
    return bool(b0 & 0x80), b0 & 0x0F, p


def wait_until(fn, secs=5.0, step=0.1):
    """Polls fn() until it returns a true value or secs pass; returns the last value."""
    end = time.time() + secs
    v = fn()
    while not v and time.time() < end:
        time.sleep(step)
        v = fn()
    return v
