#!/usr/bin/env python3
"""battery.py - bad input and abusive load against a running mqgate.

Starts a private mosquitto and an mqgate through the integration harness
(tests/it/mqgatetest.py), then runs these stages one after the other and
prints figures for each (count sent, answers by kind, time taken, the
daemon's RSS before and after from /proc/PID/status, CPU seconds used):

  ws-frames   random and malformed WebSocket messages over a few
              connections (python3-websocket): random bytes, invalid
              UTF-8, truncated and broken JSON, deep nesting, huge ids,
              wrong types, unknown ops, binary frames, messages over
              max_message, fragmented messages. Every one must be answered
              with an `error` on a connection that stays open. Plus
              WebSocket protocol violations written as raw frames on their
              own connections (control frames with bad lengths, reserved
              opcodes and bits, unmasked frames, stray continuations...):
              how each connection ends is recorded.
  http        malformed HTTP requests, each on its own connection: the
              status (or close, or silence) per kind.
  slowloris   connections that send a header line every second and never
              finish, all held together: when the daemon closes them.
  flood       connect + WebSocket upgrade of many clients as fast as
              possible, then all closed.
  slow        slow consumers (never read, small SO_RCVBUF) beside fast
              ones on one fast topic with slow_client = drop_oldest: the
              fast ones must lose nothing (exact event-id continuity),
              drops show in /metrics.

Throughout, a control WebSocket client subscribed to a topic published
once a second must get every message without a disconnect, and /healthz
is polled every second. At the end the daemon's RSS is compared with its
baseline after a few seconds' rest.

Exit status: 0 when the daemon survived, the control client and every fast
consumer lost nothing, every bad frame was answered and /healthz always
said 200; 1 otherwise; 77 when mosquitto, python3-websocket or mqgate is
missing. Run by `make battery` (never by `make check`; see
tests/it/test_battery.py for the quick version) or by hand:

  MQGATE_BIN=/tmp/b/mqgate MQGATE_PLUGIN_DIR=/tmp/b/plugins/.libs \\
      /usr/bin/python3 tests/bench/battery.py [--quick] [--only STAGES]

The figures for one machine are in tests/bench/BATTERY.md.
"""

import argparse
import array
import base64
import collections
import concurrent.futures
import json
import multiprocessing
import os
import random
import resource
import selectors
import socket
import statistics
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "it"))
import mqgatetest as mt  # noqa: E402

CONTROL_TOPIC = "bat/control"
FAST_TOPIC = "bat/fast"
MAX_MESSAGE = 16 * 1024
# ws.c accepts a message of up to twice max_message plus 4 KB of JSON
# around the payload.
FRAME_LIMIT = MAX_MESSAGE * 2 + 4096

# queue_bytes is over 1,000 (queue) of the slow stage's messages: a fast
# consumer may lag 1,000 messages (5 s) behind, a slow one loses the
# oldest once the kernel's buffers and those 1,000 are full.
SERVER = {"max_message": "16K", "publish_rate": "100000/s",
          "keepalive": "30s", "history": "1000", "queue_bytes": "16M",
          "log_level": "notice"}
# Only bat/# reaches the broker: a garbage publish that happens to be
# well formed is refused (forbidden) at once, so every answer of the
# ws-frames stage comes back in order and no stray message disturbs the
# event ids the slow stage checks.
BROKER = {"topic": "bat/# both 1"}

FULL = {
    "ws_frames": 10000,     # all WebSocket messages, raw ones included
    "ws_raw": 500,          # of which protocol violations on raw sockets
    "ws_conns": 4,
    "http": 1000,
    "slowloris": 500,
    "slowloris_wait": 40.0,
    "flood": 5000,
    "slow": 100,
    "fast": 100,
    "fast_workers": 4,
    "fast_msgs": 6000,      # 6 MB for each slow consumer: over what the
    "fast_rate": 200,       # kernel and the queue hold (messages/s)
    "fast_size": 1024,      # payload bytes
    "fast_grace": 30.0,     # seconds the fast ones may lag at the end
    "settle": 5.0,          # seconds given to the allocator at the end
}

QUICK = {
    "ws_frames": 1000,
    "ws_raw": 60,
    "ws_conns": 2,
    "http": 200,
    "slowloris": 50,
    "slowloris_wait": 20.0,
    "flood": 500,
    "slow": 20,
    "fast": 20,
    "fast_workers": 2,
    "fast_msgs": 2000,
    "fast_rate": 200,
    "fast_size": 4096,      # 8 MB for each slow consumer
    "fast_grace": 15.0,
    "settle": 3.0,
}

STAGES = ("ws-frames", "http", "slowloris", "flood", "slow")


def say(text):
    print(text, flush=True)


# -- the daemon seen from /proc --------------------------------------------

def proc_rss_kb(pid):
    """VmRSS of pid in kB, None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_s(pid):
    """User + system CPU seconds of pid, None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_fd_limit(pid):
    """(soft, hard) open-files limit of pid."""
    try:
        with open("/proc/%d/limits" % pid) as f:
            for line in f:
                if line.startswith("Max open files"):
                    p = line.split()
                    return int(p[3]), int(p[4])
    except (OSError, ValueError):
        pass
    return None, None


def raise_nofile():
    """Soft open-files limit up to the hard one (inherited by the daemon
    the harness starts); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > 1 << 20:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# -- WebSocket on a plain socket --------------------------------------------

def ws_mask(data, key):
    """data XOR the 4-byte key repeated (RFC 6455 masking)."""
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(
        n, "big")


def ws_frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One frame as bytes; length= announces another payload length than
    the bytes that follow (a lie on purpose)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv & 7) << 4 | (opcode & 15)
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack("!H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack("!Q", n)
    if mask:
        key = os.urandom(4)
        return head + key + ws_mask(payload, key)
    return head + payload


def ws_parse(buf):
    """([(fin, opcode, payload)], rest) of the complete server frames at
    the start of buf (server frames are never masked)."""
    out = []
    pos = 0
    n = len(buf)
    while n - pos >= 2:
        b0, b1 = buf[pos], buf[pos + 1]
        ln = b1 & 0x7f
        p = pos + 2
        if ln == 126:
            if n - p < 2:
                break
            ln = struct.unpack_from("!H", buf, p)[0]
            p += 2
        elif ln == 127:
            if n - p < 8:
                break
            ln = struct.unpack_from("!Q", buf, p)[0]
            p += 8
        if b1 & 0x80:
            p += 4
        if n - p < ln:
            break
        out.append((bool(b0 & 0x80), b0 & 15, bytes(buf[p:p + ln])))
        pos = p + ln
    return out, buf[pos:]


def _unparse(frame):
    """A parsed server frame as bytes again (unmasked)."""
    fin, op, data = frame
    return ws_frame(op, data, fin=fin, mask=False)


class Refused(Exception):
    """The upgrade was answered with another status than 101."""

    def __init__(self, status):
        Exception.__init__(self, "upgrade refused: %s" % status)
        self.status = status


def upgrade_request(port, path="/ws"):
    key = base64.b64encode(os.urandom(16)).decode()
    return ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
            "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1"
            "\r\n\r\n" % (path, port, key)).encode()


def status_of(head):
    """The status code of an HTTP response head, or None."""
    line = head.split(b"\r\n", 1)[0].split(b" ")
    if len(line) >= 2 and line[0].startswith(b"HTTP/") and line[1].isdigit():
        return int(line[1])
    return None


class RawWs:
    """A WebSocket client on a plain socket: the upgrade, masked frames
    of any shape (also wrong ones), unmasked server frames parsed. Used
    where python3-websocket would refuse to send what the battery sends
    and where many clients must be cheap."""

    def __init__(self, port, rcvbuf=None, timeout=5.0, hello=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.close_code = None
        try:
            self.sock.connect(("127.0.0.1", port))
            self.sock.sendall(upgrade_request(port))
            while b"\r\n\r\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed during the upgrade")
                self.buf += chunk
        except BaseException:
            self.sock.close()
            raise
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        st = status_of(head)
        if st != 101:
            self.sock.close()
            raise Refused(st)
        if hello:
            f = self.recv_json(timeout)
            if not f or f.get("op") != "hello":
                self.sock.close()
                raise ConnectionError("no hello: %r" % (f,))

    def send(self, data):
        self.sock.sendall(data)

    def send_json(self, obj):
        self.sock.sendall(ws_frame(1, json.dumps(obj)))

    def frames(self, timeout):
        """The frames that are complete within timeout (pongs answered to
        pings here); [] on timeout; raises ConnectionError on EOF."""
        end = time.monotonic() + timeout
        while True:
            got, self.buf = ws_parse(self.buf)
            if got:
                for fin, op, data in got:
                    if op == 9:
                        self.sock.sendall(ws_frame(10, data))
                    elif op == 8:
                        self.close_code = (struct.unpack("!H", data[:2])[0]
                                           if len(data) >= 2 else 1005)
                return got
            left = end - time.monotonic()
            if left <= 0:
                return []
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return []
            if not chunk:
                raise ConnectionError("EOF")
            self.buf += chunk

    def recv_text(self, timeout):
        """The bytes of the next text frame; None on timeout. Frames
        that arrive together with it wait for the next call."""
        end = time.monotonic() + timeout
        while True:
            got, rest = ws_parse(self.buf)
            for k, (fin, op, data) in enumerate(got):
                if op in (1, 8):
                    # keep what follows for later
                    self.buf = b"".join(_unparse(f) for f in got[k + 1:]) \
                        + rest
                    if op == 8:
                        self.close_code = (struct.unpack("!H", data[:2])[0]
                                           if len(data) >= 2 else 1005)
                        raise ConnectionError("closed %s" % self.close_code)
                    return data
                if op == 9:
                    self.sock.sendall(ws_frame(10, data))
            self.buf = rest
            left = end - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise ConnectionError("EOF")
            self.buf += chunk

    def recv_json(self, timeout):
        """The next text frame as an object; None on timeout."""
        data = self.recv_text(timeout)
        return None if data is None else json.loads(data)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


# -- figures -----------------------------------------------------------------

class Stage:
    """Figures of one stage: sent, answers by kind (and per input kind),
    seconds, daemon RSS and CPU, notes and failures."""

    def __init__(self, name):
        self.name = name
        self.sent = 0
        self.answers = collections.Counter()
        self.by_kind = collections.defaultdict(collections.Counter)
        self.sent_kind = collections.Counter()
        self.notes = []
        self.failures = []
        self.seconds = 0.0
        self.rss = (None, None)
        self.rss_peak = None
        self.cpu = None

    def count(self, kind, answer):
        self.sent += 1
        self.sent_kind[kind] += 1
        self.answers[answer] += 1
        self.by_kind[kind][answer] += 1

    def fail(self, what):
        if len(self.failures) < 50:
            self.failures.append(what)
        elif len(self.failures) == 50:
            self.failures.append("(more failures not listed)")

    def note(self, what):
        self.notes.append(what)


def fmt_counter(c, limit=8):
    items = c.most_common()
    s = " ".join("%s:%d" % kv for kv in items[:limit])
    if len(items) > limit:
        s += " (+%d kinds)" % (len(items) - limit)
    return s


def fmt_mb(kb):
    return "-" if kb is None else "%.1f" % (kb / 1024.0)


# -- control client and health watch -----------------------------------------

class Control:
    """Publishes CONTROL_TOPIC once a second (QoS 1, index as payload)
    and reads it on a WebSocket client of its own: every index must
    arrive, in order, with no disconnect. Also keeps the event sequence
    numbers of the control messages (the slow stage needs them)."""

    def __init__(self, mosq, gate):
        self.mosq = mosq
        self.gate = gate
        self.ws = mt.websocket.create_connection(
            gate.ws_url, subprotocols=["mqgate.v1"], suppress_origin=True,
            timeout=10)
        hello = json.loads(self.ws.recv())
        if hello.get("op") != "hello":
            raise AssertionError("control client: no hello: %r" % hello)
        self.ws.send(json.dumps({"op": "subscribe", "id": "c",
                                 "topics": [CONTROL_TOPIC],
                                 "snapshot": False}))
        r = json.loads(self.ws.recv())
        if r.get("op") != "ok":
            raise AssertionError("control client: subscribe: %r" % r)
        self.pub = mosq.client(client_id="battery-control-%d" % os.getpid())
        self.lock = threading.Lock()
        self.published = 0
        self.got = []           # indexes in arrival order
        self.seqs = set()       # event sequence numbers of control messages
        self.latency = []
        self.sent_at = {}
        self.problems = []
        self.stopping = threading.Event()
        self.closed = None
        self.rx = threading.Thread(target=self._reader, daemon=True)
        self.tx = threading.Thread(target=self._publisher, daemon=True)
        self.rx.start()
        self.tx.start()

    def _publisher(self):
        while not self.stopping.is_set():
            with self.lock:
                i = self.published
                self.sent_at[i] = time.monotonic()
            try:
                self.pub.publish(CONTROL_TOPIC, str(i), qos=1)
            except (OSError, AssertionError) as e:
                self.problems.append("control publish %d failed: %s" % (i, e))
                return
            with self.lock:
                self.published = i + 1
            self.stopping.wait(1.0)

    def _reader(self):
        ws = self.ws
        ws.settimeout(1.0)
        while True:
            try:
                data = ws.recv()
            except mt.websocket.WebSocketTimeoutException:
                if self.stopping.is_set() and self.done():
                    return
                continue
            except Exception as e:   # any end of the connection
                if not self.stopping.is_set() or not self.done():
                    self.closed = "%s: %s" % (type(e).__name__, e)
                return
            try:
                f = json.loads(data)
            except ValueError:
                self.problems.append("control: not JSON: %r" % data[:100])
                continue
            if f.get("op") != "message" or f.get("topic") != CONTROL_TOPIC:
                continue
            i = f.get("payload")
            with self.lock:
                self.got.append(i)
                if i in self.sent_at:
                    self.latency.append(time.monotonic() - self.sent_at[i])
            try:
                self.seqs.add(mt.event_seq(f.get("event"))[1])
            except AssertionError as e:
                self.problems.append(str(e))

    def done(self):
        with self.lock:
            return len(self.got) >= self.published

    def stop(self, timeout=15.0):
        """Stops publishing and waits for the last message; returns a list
        of problems (empty when nothing was lost)."""
        self.stopping.set()
        self.tx.join(10)
        end = time.monotonic() + timeout
        while not self.done() and time.monotonic() < end and \
                self.rx.is_alive():
            time.sleep(0.1)
        self.rx.join(3)
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass
        self.pub.close()
        out = list(self.problems)
        with self.lock:
            want = list(range(self.published))
            got = list(self.got)
        if got != want:
            lost = sorted(set(want) - set(got))
            extra = [g for g in got if g not in set(want)]
            out.append("control client: %d published, %d received; lost %s%s"
                       "%s" % (len(want), len(got), lost[:20],
                               "; unexpected %s" % extra[:20] if extra
                               else "",
                               "; out of order" if not lost and not extra
                               else ""))
        if self.closed:
            out.append("control client disconnected: %s" % self.closed)
        return out

    def summary(self):
        with self.lock:
            lat = sorted(self.latency)
            n = len(self.got)
        if not lat:
            return "control: %d received" % n
        return ("control: %d published, %d received, latency median %.1f ms,"
                " max %.1f ms" % (self.published, n,
                                  1000 * lat[len(lat) // 2], 1000 * lat[-1]))


class Health:
    """GET /healthz once a second: every answer must be 200."""

    def __init__(self, gate):
        self.gate = gate
        self.answers = collections.Counter()
        self.bad = []
        self.slowest = 0.0
        self.t0 = time.monotonic()
        self.stopping = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                st, _, _ = mt.http_request(self.gate.port, "GET", "/healthz",
                                           timeout=5.0)
                key = str(st)
            except Exception as e:
                st, key = None, type(e).__name__
            dt = time.monotonic() - t0
            self.slowest = max(self.slowest, dt)
            self.answers[key] += 1
            if st != 200 and len(self.bad) < 20:
                self.bad.append("%s at +%.0fs" % (key, time.monotonic() -
                                                  self.t0))
            self.stopping.wait(max(0.0, 1.0 - dt))

    def stop(self):
        self.stopping.set()
        self.t.join(10)


# -- stage: WebSocket frames ------------------------------------------------

def _rand_text(rng, n):
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz/+#$") for _ in
                   range(n))


def _valid_templates(rng):
    """Well-formed requests the garbage is made from (every publish and
    subscribe lands outside the wall, so all answers are immediate)."""
    i = rng.randrange(1 << 30)
    return [
        {"op": "ping", "id": i},
        {"op": "subscribe", "id": i, "topics": ["junk/%d/+" % i]},
        {"op": "unsubscribe", "id": "u%d" % i, "topics": ["junk/#"]},
        {"op": "publish", "id": i, "topic": "junk/%d" % i,
         "payload": {"v": i, "s": "x" * rng.randrange(40)}},
        {"op": "publish", "id": i, "topic": "junk/a", "payload": "aGk=",
         "encoding": "base64", "qos": 1, "retain": True},
    ]


_BAD_UTF8 = [b"\xff", b"\xfe", b"\xc0\xaf", b"\xe0\x80\xaf", b"\xed\xa0\x80",
             b"\xf4\x90\x80\x80", b"\xf8\x88\x80\x80\x80", b"\x80", b"\xc3",
             b"\xe2\x82", b"\xf0\x9f\x98"]

_BROKEN_JSON = [
    b"", b" ", b"{", b"}", b"[", b"{}", b"[]", b"null", b"true", b"42",
    b'"ping"', b"{}{}", b'{"op":"ping",}', b"{'op':'ping'}", b"{op:ping}",
    b'{"op":"ping" "id":1}', b'{"op":"ping","id":01}',
    b'{"op":"ping","id":.5}',
    b'{"op":"ping","id":0x10}', b'{"op":"ping","id":NaN}',
    b'{"op":"ping","id":Infinity}', b'{"op":"ping","id":-}',
    b'{"op":"ping"/*c*/}', b'{"op":"pi\x01ng"}', b'{"op":"ping\\x"}',
    b'{"op":"ping\\u12"}', b'{"op":"\\ud800"}', b'{"op":"ping","op":"ping"}',
    b'{"op":"ping","id":1,"id":2}', b'{"op":"ping"}}', b'{"op":"ping"]',
    b'{"op":"ping","x":[1,2,]}', b'{"op":"ping","x":tru}',
    b'{"op":"ping","x":"\\u0000"}', b'{"op":"ping","x":1e}',
    b'{"op":"ping","x":+1}', b'{"op" : "ping" , }', b'\x00{"op":"ping"}',
    b'{"op":"ping"}\x00', b'{"op":"ping"}\n{"op":"ping"}',
]


def _wrong_type_frames(rng):
    i = rng.randrange(1 << 20)
    bad = [None, True, 1, 1.5, "s", [], {}, [1], {"a": 1}]
    cases = []
    for v in bad:
        if not isinstance(v, (str, int, float)) or isinstance(v, bool):
            cases.append({"op": "ping", "id": v})
        if not isinstance(v, list):
            cases.append({"op": "subscribe", "id": i, "topics": v})
            cases.append({"op": "unsubscribe", "id": i, "topics": v})
        if not isinstance(v, str):
            cases.append({"op": v, "id": i})
            cases.append({"op": "publish", "id": i, "topic": v,
                          "payload": 1})
            cases.append({"op": "subscribe", "id": i, "topics": ["bat/x"],
                          "since": v})
        if not isinstance(v, bool):
            cases.append({"op": "subscribe", "id": i, "topics": ["bat/x"],
                          "snapshot": v})
            cases.append({"op": "publish", "id": i, "topic": "bat/x",
                          "payload": 1, "retain": v})
        if v not in (1,) and not isinstance(v, bool):
            cases.append({"op": "publish", "id": i, "topic": "bat/x",
                          "payload": 1, "qos": v})
        cases.append({"op": "subscribe", "id": i, "topics": [v]}
                     if not isinstance(v, str) else
                     {"op": "subscribe", "id": i, "topics": ["a/#/b"]})
    cases += [
        {"op": "publish", "id": i, "topic": "bat/x"},
        {"op": "publish", "id": i, "payload": 1},
        {"op": "publish", "id": i, "topic": "bat/x", "payload": 1,
         "qos": 2},
        {"op": "publish", "id": i, "topic": "bat/x", "payload": 1,
         "qos": -1},
        {"op": "publish", "id": i, "topic": "bat/x", "payload": 7,
         "encoding": "base64"},
        {"op": "publish", "id": i, "topic": "bat/x", "payload": "!!",
         "encoding": "base64"},
        {"op": "publish", "id": i, "topic": "bat/x", "payload": "a",
         "encoding": "rot13"},
        {"op": "publish", "id": i, "topic": "bat/+", "payload": 1},
        {"op": "publish", "id": i, "topic": "", "payload": 1},
        {"op": "subscribe", "id": i, "topics": []},
        {"op": "subscribe", "id": i, "topics": [""]},
        {"op": "subscribe", "id": i, "topics": ["bat/#/x"]},
        {"op": "subscribe", "id": i, "topics": ["bat/x+"]},
        {"op": "subscribe", "id": i},
    ]
    return cases


def ws_cases(rng, n):
    """n (kind, frames, expect) for one python3-websocket connection:
    frames is [(opcode, bytes, fin)]; expect is the set of reply ops that
    are right (the bad ones must be answered with "error")."""
    kinds = ["random-bytes", "bad-utf8", "truncated-json", "broken-json",
             "deep-nesting", "huge-id", "wrong-types", "unknown-op",
             "binary", "over-max", "fragmented", "fragmented-ok"]
    weights = [14, 10, 14, 10, 6, 6, 12, 6, 8, 4, 6, 4]
    out = []
    for _ in range(n):
        kind = rng.choices(kinds, weights)[0]
        expect = {"error"}
        if kind == "random-bytes":
            data = [(1, os.urandom(rng.randrange(1, 300)), True)]
        elif kind == "bad-utf8":
            t = json.dumps(rng.choice(_valid_templates(rng))).encode()
            cut = rng.randrange(1, len(t) - 1)
            bad = rng.choice(_BAD_UTF8)
            data = [(1, t[:cut] + bad + t[cut:], True)]
            if rng.random() < 0.5:
                # inside a string value, where a lenient parser would look
                t = ('{"op":"publish","id":1,"topic":"bat/x","payload":"a%sb"}'
                     .encode().replace(b"%s", bad))
                data = [(1, t, True)]
            expect = {"error", "close:1007"}
        elif kind == "truncated-json":
            t = json.dumps(rng.choice(_valid_templates(rng))).encode()
            data = [(1, t[:rng.randrange(0, len(t) - 1)], True)]
        elif kind == "broken-json":
            data = [(1, rng.choice(_BROKEN_JSON), True)]
        elif kind == "deep-nesting":
            d = rng.choice([65, 100, 1000, 10000, 100000])
            if rng.random() < 0.5:
                t = b"[" * d + b"]" * d
            else:
                t = (b'{"op":"ping","id":1,"x":' + b'{"a":' * d + b"1" +
                     b"}" * d + b"}")
            data = [(1, t, True)]
        elif kind == "huge-id":
            m = rng.choice([129, 1000, 10000, 30000])
            data = [(1, json.dumps({"op": "ping", "id": "i" * m}).encode(),
                     True)]
        elif kind == "wrong-types":
            data = [(1, json.dumps(rng.choice(_wrong_type_frames(rng)))
                     .encode(), True)]
        elif kind == "unknown-op":
            op = rng.choice(["", "PING", "ping ", " ping", "pong", "hello",
                             "message", "Subscribe", "publish\u0000",
                             "\u00e9t\u00e9", "x" * rng.randrange(1, 5000),
                             _rand_text(rng, 10)])
            data = [(1, json.dumps({"op": op, "id": 5}).encode(), True)]
        elif kind == "binary":
            body = rng.choice([json.dumps({"op": "ping", "id": 1}).encode(),
                               os.urandom(rng.randrange(1, 400))])
            data = [(2, body, True)]
        elif kind == "over-max":
            if rng.random() < 0.5:
                # a payload just over max_message inside the wall
                pad = MAX_MESSAGE + rng.randrange(1, 64)
                data = [(1, json.dumps({"op": "publish", "id": 9,
                                        "topic": "bat/big",
                                        "payload": "p" * pad}).encode(),
                         True)]
            else:
                # a message just over what ws.c reassembles
                t = b'{"op":"ping","id":9,"pad":"' + b"q" * (
                    FRAME_LIMIT + rng.randrange(1, 64)) + b'"}'
                data = [(1, t, True)]
        elif kind == "fragmented":
            if rng.random() < 0.6:
                t = json.dumps(rng.choice(_valid_templates(rng))).encode()
                t = t[:rng.randrange(1, len(t) - 1)]      # truncated
            else:
                t = b'{"op":"ping","pad":"' + b"f" * (FRAME_LIMIT + 10) + \
                    b'"}'
            data = _fragments(rng, 1, t)
        else:   # fragmented-ok: a valid ping, control frames in between
            t = json.dumps({"op": "ping", "id": rng.randrange(1000)}).encode()
            data = _fragments(rng, 1, t, pings=True)
            expect = {"pong"}
        out.append((kind, data, expect))
    return out


def _fragments(rng, opcode, t, pings=False):
    k = rng.randrange(2, 6)
    cuts = sorted(rng.sample(range(1, len(t)), min(k - 1, len(t) - 1)))
    parts = [t[a:b] for a, b in zip([0] + cuts, cuts + [len(t)])]
    out = []
    for j, p in enumerate(parts):
        out.append((opcode if j == 0 else 0, p, j == len(parts) - 1))
        if pings and j < len(parts) - 1 and rng.random() < 0.5:
            out.append((9, b"between", True))
    return out


def _ws_worker(gate, cases, fig, lock, window=40):
    """Sends the cases on one python3-websocket connection, in windows
    ending in a ping; every case must be answered in order."""
    ws_mod = mt.websocket

    def connect():
        c = ws_mod.create_connection(gate.ws_url, subprotocols=["mqgate.v1"],
                                     suppress_origin=True, timeout=10)
        h = json.loads(c.recv())
        if h.get("op") != "hello":
            raise AssertionError("no hello: %r" % h)
        return c

    def send(c, frames):
        for op, data, fin in frames:
            if op == 9:
                c.ping(data)
            else:
                c.send_frame(ws_mod.ABNF.create_frame(data, op, fin=fin))

    c = connect()
    pos = 0
    reconnects = 0
    while pos < len(cases):
        win = cases[pos:pos + window]
        pos += len(win)
        pid = "w%d" % pos
        closed = None
        try:
            for kind, frames, expect in win:
                send(c, frames)
            c.send(json.dumps({"op": "ping", "id": pid}))
        except (ws_mod.WebSocketException, OSError) as e:
            closed = "send: %s" % type(e).__name__
        replies = []
        end = time.monotonic() + 20.0
        while closed is None and len(replies) < len(win) + 1:
            left = end - time.monotonic()
            if left <= 0:
                break
            c.settimeout(left)
            try:
                op, frame = c.recv_data_frame(True)
            except ws_mod.WebSocketTimeoutException:
                break
            except (ws_mod.WebSocketException, OSError) as e:
                closed = "eof (%s)" % type(e).__name__
                break
            if op == ws_mod.ABNF.OPCODE_CLOSE:
                code = (struct.unpack("!H", frame.data[:2])[0]
                        if len(frame.data) >= 2 else 1005)
                closed = "close:%d" % code
                break
            if op != ws_mod.ABNF.OPCODE_TEXT:
                continue
            f = json.loads(frame.data)
            if f.get("op") in ("error", "ok", "pong"):
                replies.append(f)
        with lock:
            for j, (kind, frames, expect) in enumerate(win):
                if j < len(replies):
                    r = replies[j]
                    ans = r["op"] + (":" + r["code"] if r["op"] == "error"
                                     else "")
                else:
                    ans = closed or "no-reply"
                fig.count(kind, ans)
                if ans.split(":")[0] not in expect and ans not in expect:
                    fig.fail("%s: %r answered %s" % (
                        kind, b"".join(d for _, d, _ in frames)[:120], ans))
            if closed is None and (len(replies) != len(win) + 1 or
                                   replies[-1].get("id") != pid):
                fig.fail("window ending %s: %d replies for %d frames, last "
                         "%r" % (pid, len(replies), len(win) + 1,
                                 replies[-1] if replies else None))
        if closed is not None:
            with lock:
                fig.note("a connection ended (%s); reconnected" % closed)
            reconnects += 1
            try:
                c.close()
            except Exception:
                pass
            if reconnects > 100:
                with lock:
                    fig.fail("more than 100 reconnects; giving up")
                return
            c = connect()
    c.close()


# Protocol violations at the WebSocket layer, each on its own raw socket.
def raw_cases(rng, n):
    kinds = ["ping-126", "ping-fragmented", "close-1-byte", "close-bad-code",
             "reserved-opcode", "rsv-bits", "unmasked", "stray-continuation",
             "text-inside-fragments", "len-2^63", "len-huge-truncated",
             "pong-unsolicited", "ping-125", "close-then-data"]
    out = []
    for _ in range(n):
        kind = rng.choice(kinds)
        ping = ws_frame(1, '{"op":"ping","id":"after"}')
        if kind == "ping-126":
            d = ws_frame(9, os.urandom(rng.randrange(126, 2000)))
        elif kind == "ping-fragmented":
            d = ws_frame(9, b"abc", fin=False) + ws_frame(0, b"def")
        elif kind == "close-1-byte":
            d = ws_frame(8, b"\x03")
        elif kind == "close-bad-code":
            d = ws_frame(8, struct.pack("!H", rng.choice([0, 999, 1004, 1005,
                                                          1006, 1015, 2999,
                                                          5000, 65535])))
        elif kind == "reserved-opcode":
            d = ws_frame(rng.choice([3, 4, 5, 6, 7, 11, 12, 13, 14, 15]),
                         b'{"op":"ping"}')
        elif kind == "rsv-bits":
            d = ws_frame(1, b'{"op":"ping","id":"rsv"}',
                         rsv=rng.choice([1, 2, 4, 7]))
        elif kind == "unmasked":
            d = ws_frame(1, b'{"op":"ping","id":"nomask"}', mask=False)
        elif kind == "stray-continuation":
            d = ws_frame(0, b'{"op":"ping","id":"cont"}')
        elif kind == "text-inside-fragments":
            d = ws_frame(1, b'{"op":"pi', fin=False) + \
                ws_frame(1, b'{"op":"ping","id":"in"}')
        elif kind == "len-2^63":
            d = ws_frame(1, b"x" * 16, length=(1 << 63) + 5)
        elif kind == "len-huge-truncated":
            d = ws_frame(1, b'{"op":"ping","id":"h","pad":"' + b"z" * 100,
                         length=1 << 40)
        elif kind == "pong-unsolicited":
            d = ws_frame(10, os.urandom(rng.randrange(0, 126)))
        elif kind == "ping-125":
            d = ws_frame(9, os.urandom(125))
        else:
            d = ws_frame(8, struct.pack("!H", 1000)) + \
                ws_frame(1, b'{"op":"ping","id":"late"}')
        out.append((kind, d + ping))
    return out


def raw_one(port, kind, data, wait=2.0):
    """Sends one violation (then a valid ping) on a fresh connection;
    returns how it ended: close:CODE, eof, alive (the ping answered),
    error:CODE (answered, then silence) or silent."""
    try:
        c = RawWs(port)
    except (OSError, ConnectionError, Refused) as e:
        return "connect-failed:%s" % type(e).__name__
    try:
        try:
            c.send(data)
        except OSError:
            pass
        first = None
        end = time.monotonic() + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return first or "silent"
            try:
                frames = c.frames(left)
            except (ConnectionError, OSError):
                return "eof" if first is None else first + "+eof"
            for fin, op, payload in frames:
                if op == 8:
                    return "close:%s" % c.close_code
                if op == 1:
                    f = json.loads(payload)
                    if f.get("op") == "pong" and f.get("id") == "after":
                        return "alive" if first is None else first + "+alive"
                    if f.get("op") == "error" and first is None:
                        first = "error:" + f.get("code", "?")
    finally:
        c.close()


def stage_ws_frames(b, fig):
    sc = b.scale
    rng = random.Random(b.seed)
    nraw = sc["ws_raw"]
    nws = sc["ws_frames"] - nraw
    per = [nws // sc["ws_conns"]] * sc["ws_conns"]
    per[0] += nws - sum(per)
    lock = threading.Lock()
    threads = []
    for k in range(sc["ws_conns"]):
        cases = ws_cases(random.Random(rng.random()), per[k])
        t = threading.Thread(target=_ws_worker,
                             args=(b.gate, cases, fig, lock), daemon=True)
        threads.append(t)
        t.start()
    raw = raw_cases(rng, nraw)
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(lambda kd: raw_one(b.gate.port, *kd), raw))
    with lock:
        for (kind, _), ans in zip(raw, results):
            fig.count("raw:" + kind, ans)
            if ans.startswith("connect-failed"):
                fig.fail("raw %s: %s" % (kind, ans))
    for t in threads:
        t.join(600)
        if t.is_alive():
            fig.fail("a frame worker is still running after 600 s")
    m = b.gate.metric("mqgate_error_replies_total")
    fig.note("mqgate_error_replies_total %s" % (
        "-" if m is None else int(m - b.error_replies0)))


# -- stage: HTTP -------------------------------------------------------------

def http_cases(rng, port, n):
    """n (kind, [byte chunks], pipelined) malformed requests."""
    host = b"Host: 127.0.0.1:%d\r\n" % port

    def req(line, headers=b"", body=b""):
        return line + b"\r\n" + host + headers + b"\r\n" + body

    pub = b'{"topic":"bat/x","payload":1}'
    kinds = {
        "garbage-line": lambda: [bytes(rng.randrange(33, 127) for _ in
                                       range(rng.randrange(1, 200))) +
                                 b"\r\n\r\n"],
        "random-bytes": lambda: [os.urandom(rng.randrange(1, 2000))],
        "bad-method": lambda: [req(rng.choice([b"FOO / HTTP/1.1",
                                               b"get /healthz HTTP/1.1",
                                               b"GETT /healthz HTTP/1.1",
                                               b"DELETE /publish HTTP/1.1",
                                               b"CONNECT / HTTP/1.1",
                                               b"TRACE / HTTP/1.1",
                                               b"G\xc3\xa9T / HTTP/1.1"]))],
        "bad-version": lambda: [req(rng.choice([b"GET /healthz HTTP/9.9",
                                                b"GET /healthz HTTP/1.1x",
                                                b"GET /healthz HTTP/",
                                                b"GET /healthz FTP/1.0",
                                                b"GET /healthz"]))],
        "http-0.9": lambda: [b"GET /\r\n"],
        "huge-header": lambda: [req(b"GET /healthz HTTP/1.1",
                                    b"X-Big: " + b"h" * rng.choice(
                                        [8000, 65536, 300000]) + b"\r\n")],
        "many-headers": lambda: [req(b"GET /healthz HTTP/1.1", b"".join(
            b"X-H%d: v\r\n" % k for k in range(rng.choice([200, 2000]))))],
        "huge-uri": lambda: [req(b"GET /" + b"u" * rng.choice(
            [5000, 100000]) + b" HTTP/1.1")],
        "no-colon-header": lambda: [req(b"GET /healthz HTTP/1.1",
                                        b"NoColonHere\r\n")],
        "bare-lf": lambda: [b"GET /healthz HTTP/1.1\nHost: x\n\n"],
        "no-host": lambda: [b"GET /healthz HTTP/1.1\r\n\r\n"],
        "nul-byte": lambda: [rng.choice([
            req(b"GET /heal\x00thz HTTP/1.1"),
            req(b"GET /healthz HTTP/1.1", b"X-N: a\x00b\r\n"),
            req(b"POST /publish HTTP/1.1", b"Content-Length: %d\r\n" %
                (len(pub) + 1), pub[:-1] + b"\x00}")])],
        "publish-no-length": lambda: [req(b"POST /publish HTTP/1.1",
                                          b"Content-Type: application/json"
                                          b"\r\n", pub)],
        "publish-negative-length": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: -%d\r\n" %
            rng.choice([1, 5, 100]), pub)],
        "publish-huge-length": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: " + rng.choice(
                [b"99999999999999999999999", b"18446744073709551616",
                 b"4294967296", b"2147483648", b"100000000"]) + b"\r\n",
            pub)],
        "publish-bad-length": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: " + rng.choice(
                [b"+5", b"5 5", b"0x10", b"abc", b"", b"1e3"]) + b"\r\n",
            pub)],
        "publish-two-lengths": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: %d\r\n"
            b"Content-Length: 3\r\n" % len(pub), pub)],
        "publish-short-body": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: %d\r\n" %
            (len(pub) + rng.randrange(1, 1000)), pub)],
        "publish-chunked": lambda: [req(
            b"POST /publish HTTP/1.1", b"Transfer-Encoding: chunked\r\n",
            b"%x\r\n%s\r\n0\r\n\r\n" % (len(pub), pub))],
        "publish-bad-json": lambda: [req(
            b"POST /publish HTTP/1.1", b"Content-Length: 9\r\n",
            b'{"topic":')],
        "events-bad-percent": lambda: [req(
            b"GET /events?" + rng.choice([b"topic=%zz", b"topic=%",
                                          b"topic=%0", b"topic=bat%2",
                                          b"topic=bat/%00", b"topic=%ff%fe",
                                          b"topic=bat/%c0%af",
                                          b"lastEventId=%%&topic=bat/x",
                                          b"topic=bat/x&snapshot=%zz",
                                          b"topic=&topic=",
                                          b"topic=bat/%23/x"]) +
            b" HTTP/1.1")],
        "ws-bad-upgrade": lambda: [req(b"GET /ws HTTP/1.1", rng.choice([
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n",
            b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: short\r\nSec-WebSocket-Version: 13\r\n",
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-"
            b"Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 99\r\n",
            b"Upgrade: h2c\r\nConnection: Upgrade\r\n"]))],
        "path-traversal": lambda: [req(rng.choice([
            b"GET /../../../../etc/passwd HTTP/1.1",
            b"GET /%2e%2e/%2e%2e/etc/passwd HTTP/1.1",
            b"GET /..%2f..%2fetc/passwd HTTP/1.1",
            b"GET http://evil/ HTTP/1.1", b"GET * HTTP/1.1"]))],
        "slow-pieces": lambda: [b"GE", b"T /heal", b"thz HTTP/1.1\r\n",
                                host, b"\r\n"],
        "pipelined-junk": lambda: [req(b"GET /healthz HTTP/1.1") +
                                   os.urandom(rng.randrange(1, 300))],
        "pipelined-two": lambda: [req(b"GET /healthz HTTP/1.1") +
                                  req(b"GET /metrics HTTP/1.1") +
                                  b"garbage\r\n\r\n"],
    }
    names = sorted(kinds)
    out = []
    for j in range(n):
        k = names[j % len(names)]
        out.append((k, kinds[k](), k.startswith("pipelined")))
    rng.shuffle(out)
    return out


def http_one(port, chunks, pipelined, wait=3.0):
    """Sends the chunks (0.05 s apart) on a new connection; returns the
    statuses answered, joined by "+", or close / reset / silent."""
    try:
        s = socket.create_connection(("127.0.0.1", port), 5)
    except OSError as e:
        return "connect-failed:%s" % type(e).__name__
    try:
        s.settimeout(wait)
        try:
            for i, ch in enumerate(chunks):
                if i:
                    time.sleep(0.05)
                s.sendall(ch)
        except OSError:
            pass
        data = b""
        end = time.monotonic() + wait
        ended = None
        while True:
            head = data.split(b"\r\n\r\n", 1)
            if len(head) == 2 and not pipelined:
                break
            left = end - time.monotonic()
            if left <= 0:
                break
            s.settimeout(left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                ended = "reset"
                break
            except OSError:
                ended = "reset"
                break
            if not chunk:
                ended = "close"
                break
            data += chunk
            if pipelined and data.count(b"HTTP/1.") >= 3:
                break
        sts = []
        for part in data.split(b"HTTP/1.")[1:]:
            code = part[2:5]
            if part[:2] in (b"0 ", b"1 ") and code.isdigit():
                sts.append(code.decode())
        if data and not sts:
            return "non-http"
        if not sts:
            return ended or "silent"
        return "+".join(sts)
    finally:
        s.close()


# What a well-behaved server answers (printed beside the figures; a
# different answer is a note, not a failure).
HTTP_EXPECT = {
    "publish-no-length": "411", "publish-huge-length": "413",
    "publish-bad-json": "400", "events-bad-percent": "400",
    "path-traversal": "4xx", "publish-negative-length": "4xx",
    "publish-bad-length": "4xx", "publish-two-lengths": "4xx",
}


def stage_http(b, fig):
    rng = random.Random(b.seed + 2)
    cases = http_cases(rng, b.gate.port, b.scale["http"])
    with concurrent.futures.ThreadPoolExecutor(32) as ex:
        res = list(ex.map(lambda c: http_one(b.gate.port, c[1], c[2]), cases))
    for (kind, chunks, _), ans in zip(cases, res):
        fig.count(kind, ans)
        if ans.startswith("connect-failed"):
            fig.fail("http %s: %s" % (kind, ans))
    for kind, want in sorted(HTTP_EXPECT.items()):
        got = fig.by_kind.get(kind)
        if not got:
            continue
        odd = {a: n for a, n in got.items()
               if not (a == want or (want == "4xx" and a[:1] == "4") or
                       a in ("close", "reset"))}
        if odd:
            fig.note("%s: expected %s, got %s" % (kind, want, odd))


# -- stage: slowloris --------------------------------------------------------

def stage_slowloris(b, fig):
    sc = b.scale
    n = sc["slowloris"]
    sel = selectors.DefaultSelector()
    opened = {}
    t_open = time.monotonic()
    for i in range(n):
        try:
            s = socket.create_connection(("127.0.0.1", b.gate.port), 10)
            s.sendall(b"GET /healthz?slow=%d HTTP/1.1\r\nHost: x\r\n" % i)
        except OSError as e:
            fig.count("slowloris", "connect-failed:%s" % type(e).__name__)
            continue
        s.setblocking(False)
        opened[s] = [time.monotonic(), None]
        sel.register(s, selectors.EVENT_READ)
    fig.note("%d connections opened in %.2f s" % (len(opened),
                                                  time.monotonic() - t_open))
    b.peak("slowloris")
    end = time.monotonic() + sc["slowloris_wait"]
    line = 0
    next_line = time.monotonic() + 1.0
    times = []
    while any(v[1] is None for v in opened.values()) and \
            time.monotonic() < end:
        for key, _ in sel.select(timeout=max(0.0, next_line -
                                             time.monotonic())):
            s = key.fileobj
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            st = status_of(d) if d else None
            opened[s][1] = ("closed" if not d else "answered:%s" % st)
            times.append(time.monotonic() - opened[s][0])
            sel.unregister(s)
            s.close()
        if time.monotonic() >= next_line:
            line += 1
            next_line += 1.0
            for s, v in opened.items():
                if v[1] is None:
                    try:
                        s.send(b"X-Slow-%d: %d\r\n" % (line, line))
                    except BlockingIOError:
                        pass
                    except OSError:
                        v[1] = "closed"
                        times.append(time.monotonic() - v[0])
                        sel.unregister(s)
                        s.close()
    for s, v in opened.items():
        fig.count("slowloris", v[1] or "still-open")
        if v[1] is None:
            s.close()
    sel.close()
    if times:
        times.sort()
        fig.note("closed by the daemon after %.1f s (min) / %.1f s (median) "
                 "/ %.1f s (max), %d header lines sent each at most" % (
                     times[0], statistics.median(times), times[-1], line))
    b.slowloris_times = times
    left = sum(1 for v in opened.values() if v[1] is None)
    if left:
        fig.fail("%d slowloris connections still open after %.0f s" % (
            left, sc["slowloris_wait"]))


# -- stage: connection flood -------------------------------------------------

def stage_flood(b, fig):
    n = b.scale["flood"]
    port = b.gate.port
    sel = selectors.DefaultSelector()
    state = {}
    t0 = time.monotonic()
    for i in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, 115):     # EINPROGRESS
            fig.count("flood", "connect-error:%d" % err)
            s.close()
            continue
        state[s] = {"phase": "connect", "buf": b"", "t": time.monotonic()}
        sel.register(s, selectors.EVENT_WRITE)
    upgraded = []
    up_set = set()
    pending = len(state)
    lat = []
    deadline = time.monotonic() + 120.0
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(timeout=1.0):
            s = key.fileobj
            st = state[s]
            if st["phase"] == "connect":
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    fig.count("flood", "connect-error:%s" % os.strerror(err))
                    sel.unregister(s)
                    s.close()
                    pending -= 1
                    continue
                try:
                    s.send(upgrade_request(port))
                except OSError as e:
                    fig.count("flood", "send-error:%s" % type(e).__name__)
                    sel.unregister(s)
                    s.close()
                    pending -= 1
                    continue
                st["phase"] = "upgrade"
                sel.modify(s, selectors.EVENT_READ)
                continue
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                d = b""
            if not d:
                fig.count("flood", "closed")
                sel.unregister(s)
                s.close()
                pending -= 1
                continue
            st["buf"] += d
            if b"\r\n\r\n" in st["buf"]:
                code = status_of(st["buf"])
                sel.unregister(s)
                pending -= 1
                lat.append(time.monotonic() - st["t"])
                if code == 101:
                    fig.count("flood", "101")
                    upgraded.append(s)
                    up_set.add(s)
                else:
                    fig.count("flood", "status:%s" % code)
                    s.close()
    for s, st in state.items():
        if s.fileno() >= 0 and s not in up_set:
            try:
                sel.unregister(s)
            except (KeyError, ValueError):
                pass
            if s.fileno() >= 0:
                fig.count("flood", "no-answer")
                s.close()
    sel.close()
    t_up = time.monotonic() - t0
    lat.sort()
    fig.note("%d upgraded in %.2f s (%.0f/s); upgrade latency median %.0f ms,"
             " max %.0f ms" % (len(upgraded), t_up, len(upgraded) / t_up,
                               1000 * lat[len(lat) // 2] if lat else 0,
                               1000 * lat[-1] if lat else 0))
    want = b.clients0 + len(upgraded)
    try:
        got = mt.wait_for("mqgate_clients{ws} = %d" % want,
                          lambda: b.ws_clients() >= want and b.ws_clients(),
                          timeout=30)
        fig.note("mqgate_clients{protocol=ws} %d with all open" % got)
    except AssertionError as e:
        fig.fail(str(e))
    b.peak("flood")
    t1 = time.monotonic()
    for s in upgraded:
        s.close()
    try:
        mt.wait_for("mqgate_clients{ws} back to %d" % b.clients0,
                    lambda: b.ws_clients() == b.clients0, timeout=60)
        fig.note("all %d gone from mqgate_clients %.2f s after the close" %
                 (len(upgraded), time.monotonic() - t1))
    except AssertionError as e:
        fig.fail(str(e))
    if len(upgraded) != n:
        fig.note("%d of %d connections were not upgraded" % (
            n - len(upgraded), n))


# -- stage: slow and fast consumers -------------------------------------------

def fast_worker(port, nconn, nmsgs, stop, ready, results, wid):
    """A process reading nconn WebSocket clients of FAST_TOPIC until each
    has nmsgs messages or the stop event is set. Puts ("ready", wid,
    error) once subscribed, then ("done", wid, [per connection: (index
    array, seq array, end reason)])."""
    conns = []
    try:
        for _ in range(nconn):
            c = RawWs(port, timeout=10)
            c.send_json({"op": "subscribe", "id": "f", "topics": [FAST_TOPIC],
                         "snapshot": False})
            r = c.recv_json(10)
            if not r or r.get("op") != "ok":
                raise ConnectionError("subscribe answered %r" % (r,))
            c.sock.setblocking(False)
            conns.append(c)
    except Exception as e:
        ready.put(("ready", wid, "%s: %s" % (type(e).__name__, e)))
        for c in conns:
            c.close()
        return
    ready.put(("ready", wid, None))
    sel = selectors.DefaultSelector()
    out = []
    for k, c in enumerate(conns):
        out.append([array.array("l"), array.array("q"), None])
        sel.register(c.sock, selectors.EVENT_READ, k)
    left = nconn
    while left and not stop.is_set():
        for key, _ in sel.select(timeout=0.5):
            k = key.data
            c = conns[k]
            try:
                chunk = c.sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError as e:
                chunk = b""
                out[k][2] = "recv: %s" % e
            if not chunk:
                out[k][2] = out[k][2] or "eof"
                sel.unregister(c.sock)
                left -= 1
                continue
            c.buf += chunk
            frames, c.buf = ws_parse(c.buf)
            for fin, op, data in frames:
                if op == 9:
                    c.sock.setblocking(True)
                    c.sock.sendall(ws_frame(10, data))
                    c.sock.setblocking(False)
                elif op == 8:
                    out[k][2] = "close %r" % data[:60]
                elif op == 1:
                    f = json.loads(data)
                    if f.get("op") != "message" or f.get("topic") != \
                            FAST_TOPIC:
                        continue
                    out[k][0].append(f["payload"]["i"])
                    out[k][1].append(int(f["event"].split("-")[1]))
            if len(out[k][0]) >= nmsgs and out[k][2] is None:
                out[k][2] = "complete"
                sel.unregister(c.sock)
                left -= 1
    for k, c in enumerate(conns):
        if out[k][2] is None:
            out[k][2] = "stopped"
        c.close()
    results.put(("done", wid, out))


def check_fast(idx, seqs, nmsgs, control_seqs):
    """'' when a fast consumer got exactly messages 0..nmsgs-1 in order
    and its event ids skip nothing but control messages; else why."""
    if list(idx) != list(range(nmsgs)):
        have = set(idx)
        lost = [i for i in range(nmsgs) if i not in have]
        return "got %d of %d; first lost %s%s" % (
            len(idx), nmsgs, lost[:10],
            "" if lost else " (order or duplicates wrong)")
    for a, b in zip(seqs, seqs[1:]):
        if b <= a:
            return "event id %d after %d" % (b, a)
        for s in range(a + 1, b):
            if s not in control_seqs:
                return ("event ids jump from %d to %d: %d is no control "
                        "message" % (a, b, s))
    return ""


def stage_slow(b, fig):
    sc = b.scale
    port = b.gate.port
    nmsgs = sc["fast_msgs"]
    drops0 = b.drops()
    slow = []
    for i in range(sc["slow"]):
        try:
            c = RawWs(port, rcvbuf=4096, timeout=10)
            c.send_json({"op": "subscribe", "id": "s",
                         "topics": [FAST_TOPIC], "snapshot": False})
            r = c.recv_json(10)
            if not r or r.get("op") != "ok":
                raise ConnectionError("subscribe answered %r" % (r,))
        except Exception as e:
            fig.fail("slow consumer %d: %s" % (i, e))
            continue
        slow.append(c)
    ctx = multiprocessing.get_context("spawn")
    ready, results, stop = ctx.Queue(), ctx.Queue(), ctx.Event()
    nw = sc["fast_workers"]
    per = [sc["fast"] // nw] * nw
    per[0] += sc["fast"] - sum(per)
    procs = [ctx.Process(target=fast_worker, args=(
        port, per[w], nmsgs, stop, ready, results, w), daemon=True)
        for w in range(nw)]
    for p in procs:
        p.start()
    for _ in procs:
        _, wid, err = ready.get(timeout=120)
        if err:
            fig.fail("fast worker %d: %s" % (wid, err))
    want = b.clients0 + len(slow) + sc["fast"]
    try:
        mt.wait_for("%d WebSocket clients" % want,
                    lambda: b.ws_clients() >= want, timeout=30)
    except AssertionError as e:
        fig.fail(str(e))
    pub = b.mosq.client(client_id="battery-fast-%d" % os.getpid())
    pad = "x" * max(0, sc["fast_size"] - 24)
    t0 = time.monotonic()
    step = max(1, sc["fast_rate"] // 20)
    for i in range(0, nmsgs, step):
        for j in range(i, min(nmsgs, i + step)):
            pub.publish(FAST_TOPIC, '{"i":%d,"p":"%s"}' % (j, pad), qos=0)
        ahead = t0 + (i + step) / float(sc["fast_rate"]) - time.monotonic()
        if ahead > 0:
            time.sleep(ahead)
    pub.publish(FAST_TOPIC + "/end", b"1", qos=1)   # the broker has them all
    t_pub = time.monotonic() - t0
    b.peak("slow")
    outs = []
    grace_end = time.monotonic() + sc["fast_grace"]
    for _ in procs:
        try:
            while True:
                try:
                    _, wid, out = results.get(timeout=1.0)
                    break
                except Exception:
                    if time.monotonic() > grace_end and not stop.is_set():
                        stop.set()
                    elif time.monotonic() > grace_end + 30:
                        raise
            outs += out
        except Exception as e:
            fig.fail("a fast worker sent no result: %s" % type(e).__name__)
    stop.set()
    for p in procs:
        p.join(30)
    t_all = time.monotonic() - t0
    still = b.ws_clients()
    drops = b.drops()
    pub.close()
    for c in slow:
        c.close()
    # Give the control client's latest sequence numbers time to arrive.
    time.sleep(1.5)
    cseqs = set(b.control.seqs)
    lost = 0
    for k, (idx, seqs, why) in enumerate(outs):
        bad = check_fast(idx, seqs, nmsgs, cseqs)
        fig.count("fast", "complete" if not bad else "lost")
        if bad:
            lost += 1
            fig.fail("fast consumer %d (%s): %s" % (k, why, bad))
    for c in slow:
        fig.count("slow-consumer", "opened")
    fig.sent = nmsgs    # the stage's input: messages published
    d = {k: int(drops.get(k, 0) - drops0.get(k, 0)) for k in drops}
    fig.note("%d messages of %d bytes published in %.1f s (%.0f/s); fast "
             "consumers done after %.1f s" % (nmsgs, sc["fast_size"], t_pub,
                                               nmsgs / t_pub, t_all))
    fig.note("mqgate_drops_total moved by %s; %d WebSocket clients still "
             "connected before the close (control + %d slow + %d fast)" % (
                 d, still, len(slow), sc["fast"]))
    b.slow_drops = d
    b.fast_lost = lost
    if len(outs) != sc["fast"]:
        fig.fail("%d fast consumers reported, %d expected" % (len(outs),
                                                               sc["fast"]))


# -- the battery -------------------------------------------------------------

class Battery:
    """One mosquitto, one mqgate, the control client and the health
    watch; runs stages and keeps their figures."""

    def __init__(self, scale, seed=None):
        self.scale = scale
        self.seed = seed if seed is not None else int(time.time())
        self.stages = []
        self.slowloris_times = []
        self.slow_drops = {}
        self.fast_lost = None
        self.peaks = {}

    def start(self):
        self.nofile = raise_nofile()
        self.mosq = mt.Mosquitto()
        self.gate = mt.Mqgate(self.mosq, server=SERVER, broker=BROKER)
        self.pid = self.gate.proc.pid
        self.fd_limit = proc_fd_limit(self.pid)
        self.control = Control(self.mosq, self.gate)
        self.health = Health(self.gate)
        mt.wait_for("the control client's first message",
                    lambda: len(self.control.got) > 0, timeout=10)
        time.sleep(1.0)
        self.clients0 = self.ws_clients()
        self.error_replies0 = self.gate.metric(
            "mqgate_error_replies_total") or 0
        self.rss_base = proc_rss_kb(self.pid)
        self.cpu_base = proc_cpu_s(self.pid)

    def ws_clients(self):
        return int(self.gate.metric("mqgate_clients", protocol="ws") or 0)

    def drops(self):
        return {k.split('"')[1]: v for k, v in self.gate.metrics().items()
                if k.startswith("mqgate_drops_total{")}

    def peak(self, name):
        self.peaks[name] = proc_rss_kb(self.pid)

    def alive(self):
        return self.gate.running()

    def run_stage(self, name, fn):
        fig = Stage(name)
        fig.rss = (proc_rss_kb(self.pid), None)
        cpu0 = proc_cpu_s(self.pid)
        t0 = time.monotonic()
        say("-- %s ..." % name)
        try:
            fn(self, fig)
        except Exception as e:
            import traceback
            fig.fail("the stage itself failed: %s: %s" % (type(e).__name__,
                                                          e))
            say(traceback.format_exc())
        fig.seconds = time.monotonic() - t0
        cpu1 = proc_cpu_s(self.pid)
        fig.cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
        fig.rss = (fig.rss[0], proc_rss_kb(self.pid))
        fig.rss_peak = self.peaks.get(name)
        if not self.alive():
            fig.fail("the daemon died (exit status %s)" %
                     self.gate.proc.returncode)
        self.stages.append(fig)
        say("   %s: %d sent, %.1f s, %s" % (name, fig.sent, fig.seconds,
                                            fmt_counter(fig.answers, 6)))
        return fig

    def finish(self):
        """Stops the control client and the health watch, lets the daemon
        rest, and returns the list of failures of the whole run."""
        self.control_problems = self.control.stop()
        self.health.stop()
        time.sleep(self.scale["settle"])
        self.rss_end = proc_rss_kb(self.pid)
        self.cpu_end = proc_cpu_s(self.pid)
        try:
            m = self.gate.metrics()
            self.held = (int(m.get("mqgate_history_messages", 0)),
                         m.get("mqgate_history_bytes", 0) +
                         m.get("mqgate_cache_bytes", 0))
        except (OSError, AssertionError, ValueError):
            self.held = None
        fails = []
        for st in self.stages:
            fails += ["%s: %s" % (st.name, f) for f in st.failures]
        fails += self.control_problems
        if set(self.health.answers) - {"200"}:
            fails.append("/healthz answered %s (first: %s)" % (
                dict(self.health.answers), self.health.bad[:5]))
        if not self.alive():
            fails.append("the daemon died (exit status %s); log:\n%s" % (
                self.gate.proc.returncode, self.gate.log()[-3000:]))
        return fails

    def report(self, fails):
        say("")
        say("mqgate battery: seed %d, daemon pid %d, open files limit %s "
            "(daemon) / %s (script)" % (self.seed, self.pid,
                                        "%s/%s" % self.fd_limit,
                                        self.nofile))
        say("")
        say("%-10s %7s %7s %9s %9s %9s %7s  %s" % (
            "stage", "sent", "secs", "RSS MB<", "RSS MB^", "RSS MB>",
            "CPU s", "answers"))
        for st in self.stages:
            say("%-10s %7d %7.1f %9s %9s %9s %7s  %s" % (
                st.name, st.sent, st.seconds, fmt_mb(st.rss[0]),
                fmt_mb(st.rss_peak), fmt_mb(st.rss[1]),
                "-" if st.cpu is None else "%.2f" % st.cpu,
                fmt_counter(st.answers, 6)))
        say("(RSS MB< before the stage, ^ with its load at the peak, > after)")
        for st in self.stages:
            say("")
            say("[%s] by input kind (sent: answers)" % st.name)
            for kind in sorted(st.sent_kind):
                say("  %-26s %5d: %s" % (kind, st.sent_kind[kind],
                                         fmt_counter(st.by_kind[kind], 6)))
            for n in st.notes:
                say("  * " + n)
            for f in st.failures:
                say("  FAIL " + f)
        say("")
        say(self.control.summary())
        say("/healthz: %s, slowest %.2f s" % (dict(self.health.answers),
                                               self.health.slowest))
        say("daemon RSS: baseline %s MB, after the battery and %.0f s of rest"
            " %s MB; CPU %.1f s in all" % (
                fmt_mb(self.rss_base), self.scale["settle"],
                fmt_mb(self.rss_end),
                (self.cpu_end or 0) - (self.cpu_base or 0)))
        if self.held:
            say("(by design the history ring and the last-value cache keep "
                "%d messages, %.1f MB, after the battery)" % (
                    self.held[0], self.held[1] / 1048576.0))
        say("daemon: %s" % ("running" if self.alive() else "DEAD"))
        say("")
        if fails:
            say("FAILED (%d):" % len(fails))
            for f in fails:
                say("  " + f)
        else:
            say("PASS: daemon alive, control client and fast consumers lost "
                "nothing, every bad frame answered, /healthz always 200")


STAGE_FUNCS = {"ws-frames": stage_ws_frames, "http": stage_http,
               "slowloris": stage_slowloris, "flood": stage_flood,
               "slow": stage_slow}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="the reduced scale of tests/it/test_battery.py")
    ap.add_argument("--only", default=" ".join(STAGES),
                    help="stages to run, in order (default: %(default)s)")
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    mt.require()
    stages = args.only.replace(",", " ").split()
    for s in stages:
        if s not in STAGE_FUNCS:
            ap.error("unknown stage %s" % s)
    b = Battery(QUICK if args.quick else FULL, args.seed)
    try:
        b.start()
        for s in stages:
            b.run_stage(s, STAGE_FUNCS[s])
        fails = b.finish()
        b.report(fails)
    finally:
        mt._cleanup_all(False)
    # MQGATE_VALGRIND=1 (see mqgatetest.py): the daemon's valgrind log
    for what, text in mt._valgrind_reports:
        say("FAIL valgrind found errors in %s:\n%s" % (what, text.rstrip()))
        fails.append("valgrind")
    sys.exit(1 if fails else 0)


if __name__ == "__main__":
    main()
