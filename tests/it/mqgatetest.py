"""mqgatetest.py - the harness of mqgate's integration tests.

Every test script under tests/it/ starts its own private mosquitto and its
own mqgate on free loopback ports (so `make check -j` can run them side by
side), talks to the daemon the way browsers do (WebSocket, Server-Sent
Events, plain HTTP) and to the broker the way devices do (a small MQTT
3.1.1 client in this file, so payloads are exact bytes), and checks what it
sees against the protocol (doc/protocol.md) and the configuration and
command line (doc/mqgate.conf.5, doc/mqgate.8).

What this file owns: the processes it starts (each object keeps its Popen
and its temporary directory, and removes both in cleanup()), and the
sockets of the clients it makes.

Where the programs come from:
  MQGATE_BIN         the daemon (set by `make check`); by hand the default
                     is $top_builddir/mqgate, else <source tree>/build/mqgate
                     (configure in a `build` directory at the top of the tree)
  MQGATE_PLUGIN_DIR  where mqtt.so lives; default <builddir>/plugins/.libs
  MOSQUITTO          the broker; default /usr/sbin/mosquitto
A missing mosquitto, python3-websocket, mqgate or mqtt.so makes a test
exit 77 (skipped).

Running one test by hand, e.g. against a build in /tmp/b:
  MQGATE_BIN=/tmp/b/mqgate MQGATE_PLUGIN_DIR=/tmp/b/plugins/.libs \\
      /usr/bin/python3 tests/it/test_ws_ops.py
MQGATE_IT_VERBOSE=1 also prints the daemon's log after a passing test.
MQGATE_VALGRIND=1 runs every mqgate the harness starts under valgrind
(memcheck, definite leaks are errors, log in the daemon's directory) with
longer start and stop timeouts; a test fails when a valgrind log of its
daemons is not empty, and the log is printed.

A test script is a list of functions handed to run(): each prints what it
checks (check(), check_eq()), raises AssertionError with a clear message
when the daemon disagrees, and gets its daemons cleaned up and their logs
printed on failure.
"""

import atexit
import base64
import collections
import json
import os
import pwd
import queue
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.parse

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("top_srcdir") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
BUILDDIR = os.environ.get("top_builddir") or os.path.join(SRCDIR, "build")
MQGATE_BIN = os.environ.get("MQGATE_BIN") or os.path.join(BUILDDIR, "mqgate")
PLUGIN_DIR = os.environ.get("MQGATE_PLUGIN_DIR") or os.path.join(
    BUILDDIR, "plugins", ".libs")
# mqgate refuses to run as root unless told: tests say `user =` the user
# they run as (a no-op for mqgate, root included).
CURRENT_USER = pwd.getpwuid(os.geteuid()).pw_name
MOSQUITTO = os.environ.get("MOSQUITTO") or "/usr/sbin/mosquitto"
VERBOSE = bool(os.environ.get("MQGATE_IT_VERBOSE"))
VALGRIND = os.environ.get("MQGATE_VALGRIND") == "1"
VALGRIND_CMD = ["valgrind", "--error-exitcode=99", "--leak-check=full",
                "--errors-for-leak-kinds=definite", "--track-fds=no",
                "--quiet"]
# A daemon built with --enable-sanitizers: its memory is ASan's
# allocator's (quarantine, shadow), so glibc's behaviour is not measured.
SANITIZED = os.environ.get("MQGATE_SANITIZERS") == "yes"
# Under valgrind the daemon runs some 20 times slower: start, health
# and stop waits are multiplied by this.
SLOW = 4 if VALGRIND else 1


def _reexec_system_python():
    """Debian's python3 has python3-websocket; re-run under it once when
    this interpreter lacks the module (a pyenv python3 on PATH)."""
    sysp = "/usr/bin/python3"
    if (os.path.exists(sysp) and os.path.realpath(sys.executable) !=
            os.path.realpath(sysp) and not os.environ.get("MQGATE_REEXEC")):
        os.environ["MQGATE_REEXEC"] = "1"
        os.execv(sysp, [sysp] + sys.argv)


try:
    import websocket  # python3-websocket (websocket-client)
except ImportError:
    _reexec_system_python()
    websocket = None


# -- output and checks ----------------------------------------------------

def say(text):
    print(text, flush=True)


def skip(why):
    say("SKIP: " + why)
    sys.exit(SKIP)


def check(cond, what, got=None):
    """Passes when cond is true; fails naming what was expected."""
    if not cond:
        raise AssertionError(what + ("" if got is None else
                                     "\n    got: " + _short(got)))
    say("  ok   " + what)


def check_eq(got, want, what):
    if got != want:
        raise AssertionError("%s\n    expected: %s\n    got:      %s" %
                             (what, _short(want), _short(got)))
    say("  ok   " + what)


def _short(v, n=600):
    s = v if isinstance(v, str) else repr(v)
    return s if len(s) <= n else s[:n] + "... (%d chars)" % len(s)


def wait_for(what, cond, timeout=10.0, step=0.05):
    """Polls cond() until it returns a true value, which is returned;
    fails with `what` and the last value or exception after timeout."""
    end = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = cond()
        except (OSError, AssertionError, ValueError) as e:
            last = e
        else:
            if last:
                return last
        if time.monotonic() >= end:
            raise AssertionError("timed out after %.1fs waiting for %s "
                                 "(last: %s)" % (timeout, what, _short(last)))
        time.sleep(step)


# -- process registry -------------------------------------------------------
#
# Everything started during one test function is cleaned up after it, and
# its logs are printed when it failed.

_live = []


def _register(obj):
    _live.append(obj)


# (daemon, log text) of every valgrind log with errors, taken by run().
_valgrind_reports = []


def _cleanup_all(dump):
    while _live:
        obj = _live.pop()
        if dump:
            try:
                obj.dump()
            except Exception as e:  # a broken log must not hide the failure
                say("(cannot print log of %r: %s)" % (obj, e))
        try:
            obj.cleanup()
        except Exception as e:
            say("(cleanup of %r failed: %s)" % (obj, e))


# Whatever a script leaves behind (a crash outside run(), the browser
# tests' own launch code) is ended when the interpreter exits.
atexit.register(_cleanup_all, False)


def require(mosquitto=True):
    """Exit 77 unless mosquitto, the websocket module and mqgate exist."""
    if mosquitto and not os.access(MOSQUITTO, os.X_OK):
        skip("mosquitto not installed (%s)" % MOSQUITTO)
    if websocket is None:
        skip("python3-websocket (websocket-client) not installed")
    if not os.access(MQGATE_BIN, os.X_OK):
        skip("mqgate not built (%s); set MQGATE_BIN" % MQGATE_BIN)
    if VALGRIND and not shutil.which("valgrind"):
        skip("MQGATE_VALGRIND=1 but valgrind is not installed")
    if not os.path.exists(os.path.join(PLUGIN_DIR, "mqtt.so")):
        skip("the mqtt plugin is not built (%s/mqtt.so); set "
             "MQGATE_PLUGIN_DIR" % PLUGIN_DIR)


def run(tests, mosquitto=True):
    """Runs each test function in turn; exit status 0 when all pass, 1
    when any failed, 77 when a prerequisite is missing (mosquitto=False:
    the tests do not need a broker)."""
    require(mosquitto)
    failed = []
    t0 = time.monotonic()
    for t in tests:
        doc = (t.__doc__ or "").strip().splitlines()
        say("== %s: %s" % (t.__name__, doc[0] if doc else ""))
        start = time.monotonic()
        ok = False
        try:
            t()
            ok = True
        except KeyboardInterrupt:
            _cleanup_all(False)
            raise
        except SystemExit:
            _cleanup_all(False)
            raise
        except BaseException:
            say("FAIL %s" % t.__name__)
            say(traceback.format_exc().rstrip())
            failed.append(t.__name__)
        finally:
            _cleanup_all(not ok or VERBOSE)
        while _valgrind_reports:
            what, text = _valgrind_reports.pop(0)
            say("FAIL %s: valgrind found errors in %s:\n%s" % (
                t.__name__, what, text.rstrip()))
            if t.__name__ not in failed:
                failed.append(t.__name__)
        say("   (%s: %.1fs)" % (t.__name__, time.monotonic() - start))
    say("%d of %d passed in %.1fs%s" % (
        len(tests) - len(failed), len(tests), time.monotonic() - t0,
        "; FAILED: " + ", ".join(failed) if failed else ""))
    sys.exit(1 if failed else 0)


class TempDir:
    """A temporary directory removed after the test (docroots, configs)."""

    def __init__(self, prefix="mqgate-it-tmp-"):
        self.path = tempfile.mkdtemp(prefix=prefix)
        _register(self)

    def __repr__(self):
        return "tempdir:" + self.path

    def write(self, name, data):
        """Writes a file below the directory; returns its path."""
        p = os.path.join(self.path, name)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
        return p

    def dump(self):
        pass

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


# -- ports ------------------------------------------------------------------

def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _tail(path, n=8000):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return "(%s)" % e
    text = data[-n:].decode("utf-8", "replace")
    return ("...\n" if len(data) > n else "") + text


# -- mosquitto --------------------------------------------------------------

class Mosquitto:
    """A private mosquitto on 127.0.0.1:port (anonymous, no persistence).
    stop(), kill() and start() keep the port, so a restart is the same
    broker address for mqgate."""

    def __init__(self, port=None):
        if not os.access(MOSQUITTO, os.X_OK):
            skip("mosquitto not installed (%s)" % MOSQUITTO)
        self.dir = tempfile.mkdtemp(prefix="mqgate-it-mosq-")
        self.conf = os.path.join(self.dir, "mosquitto.conf")
        self.logpath = os.path.join(self.dir, "mosquitto.log")
        self.proc = None
        self._pubc = None
        _register(self)
        fixed = port is not None
        for attempt in range(5):
            self.port = port if fixed else free_port()
            with open(self.conf, "w") as f:
                f.write("listener %d 127.0.0.1\nallow_anonymous true\n"
                        "persistence false\n" % self.port)
            try:
                self.start()
                return
            except AssertionError:
                if fixed or attempt == 4:
                    raise

    def __repr__(self):
        return "mosquitto:%d" % self.port

    @property
    def url(self):
        return "mqtt://127.0.0.1:%d" % self.port

    def start(self, timeout=10.0):
        """Starts the broker and waits for its port."""
        log = open(self.logpath, "ab")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", self.conf],
                                     stdout=log, stderr=subprocess.STDOUT)
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("mosquitto exited with %d:\n%s" % (
                    self.proc.returncode, _tail(self.logpath, 2000)))
            if _port_open(self.port):
                return
            time.sleep(0.05)
        raise AssertionError("mosquitto never listened on %d" % self.port)

    def _end(self, sig):
        self._drop_pub_client()
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stop(self):
        """SIGTERM: a clean broker shutdown."""
        self._end(signal.SIGTERM)

    def kill(self):
        """SIGKILL: the broker vanishes without closing anything."""
        self._end(signal.SIGKILL)

    def restart(self):
        self.stop()
        self.start()

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def client(self, **kw):
        """A new MqttClient connected to this broker (caller closes it)."""
        return MqttClient(self.port, **kw)

    def _drop_pub_client(self):
        if self._pubc:
            self._pubc.close()
            self._pubc = None

    def pub(self, topic, payload, retain=False, qos=1):
        """Publishes bytes (str is UTF-8 encoded) from a shared client;
        qos 1 waits for the broker's ack."""
        if isinstance(payload, str):
            payload = payload.encode()
        if self._pubc is None or not self._pubc.alive():
            self._drop_pub_client()
            self._pubc = MqttClient(self.port, client_id="it-pub-%d" %
                                    os.getpid())
        self._pubc.publish(topic, payload, qos=qos, retain=retain)

    def sub(self, topic, qos=1):
        """A new client subscribed to topic (caller closes it)."""
        c = MqttClient(self.port)
        c.subscribe(topic, qos)
        return c

    def dump(self):
        say("---- mosquitto log (%s) ----\n%s" % (self.logpath,
                                                  _tail(self.logpath, 3000)))

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


# -- MQTT 3.1.1 client ------------------------------------------------------

MqttMsg = collections.namedtuple("MqttMsg", "topic payload qos retain")


def _mqtt_str(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _mqtt_packet(ptype, body):
    n = len(body)
    rl = bytearray()
    while True:
        d = n % 128
        n //= 128
        rl.append(d | (0x80 if n else 0))
        if not n:
            break
    return bytes([ptype]) + bytes(rl) + body


class MqttClient:
    """A minimal MQTT 3.1.1 client over a raw socket: clean session,
    publish qos 0/1 (waits for PUBACK), subscribe (waits for SUBACK),
    a reader thread that acks and queues incoming PUBLISHes as exact
    bytes. Enough for a test to act as a device on the broker."""

    def __init__(self, port, client_id=None, timeout=5.0):
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.settimeout(None)
        self.timeout = timeout
        self.msgs = queue.Queue()
        self.backlog = []
        self._lock = threading.Lock()
        self._acks = {}
        self._ackcv = threading.Condition(self._lock)
        self._next_pid = 0
        self._closed = False
        self._dead = False
        cid = client_id or "it-%d-%d" % (os.getpid(), id(self) % 100000)
        body = (_mqtt_str("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 0) +
                _mqtt_str(cid))
        self.sock.sendall(_mqtt_packet(0x10, body))
        self.sock.settimeout(timeout)
        ptype, payload = self._read_packet()
        if ptype >> 4 != 2 or len(payload) != 2 or payload[1] != 0:
            raise AssertionError("MQTT CONNACK expected, got type %d %r" %
                                 (ptype >> 4, payload))
        self.sock.settimeout(None)
        self._thread = threading.Thread(target=self._reader, daemon=True)
        self._thread.start()
        _register(self)

    def __repr__(self):
        return "mqtt-client:%d" % self.port

    def dump(self):
        pass

    def cleanup(self):
        self.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("MQTT connection closed")
            buf += chunk
        return buf

    def _read_packet(self):
        first = self._recv_exact(1)[0]
        mult, n = 1, 0
        while True:
            d = self._recv_exact(1)[0]
            n += (d & 0x7f) * mult
            mult *= 128
            if not d & 0x80:
                break
        return first, self._recv_exact(n) if n else b""

    def _reader(self):
        try:
            while True:
                first, body = self._read_packet()
                kind = first >> 4
                if kind == 3:
                    qos = (first >> 1) & 3
                    tlen = struct.unpack("!H", body[:2])[0]
                    topic = body[2:2 + tlen].decode("utf-8")
                    rest = body[2 + tlen:]
                    if qos:
                        pid = rest[:2]
                        rest = rest[2:]
                        with self._lock:
                            self.sock.sendall(_mqtt_packet(0x40, pid))
                    self.msgs.put(MqttMsg(topic, rest, qos, bool(first & 1)))
                elif kind in (4, 9, 11):  # PUBACK, SUBACK, UNSUBACK
                    pid = struct.unpack("!H", body[:2])[0]
                    with self._ackcv:
                        self._acks[pid] = body[2:]
                        self._ackcv.notify_all()
        except (OSError, ConnectionError, ValueError, struct.error):
            pass
        finally:
            with self._ackcv:
                self._dead = True
                self._ackcv.notify_all()

    def alive(self):
        return not self._dead and not self._closed

    def _pid(self):
        self._next_pid = self._next_pid % 65535 + 1
        return self._next_pid

    def _send_wait(self, ptype, make_body, what):
        with self._ackcv:
            pid = self._pid()
            self.sock.sendall(_mqtt_packet(ptype, make_body(pid)))
            end = time.monotonic() + self.timeout
            while pid not in self._acks:
                left = end - time.monotonic()
                if self._dead or left <= 0:
                    raise AssertionError("no %s ack from mosquitto" % what)
                self._ackcv.wait(left)
            return self._acks.pop(pid)

    def publish(self, topic, payload, qos=0, retain=False):
        if isinstance(payload, str):
            payload = payload.encode()
        flags = 0x30 | (qos << 1) | (1 if retain else 0)
        if qos == 0:
            with self._lock:
                self.sock.sendall(_mqtt_packet(flags, _mqtt_str(topic) +
                                               payload))
            return
        self._send_wait(flags, lambda pid: _mqtt_str(topic) +
                        struct.pack("!H", pid) + payload, "PUBACK")

    def subscribe(self, topic, qos=1):
        codes = self._send_wait(0x82, lambda pid: struct.pack("!H", pid) +
                                _mqtt_str(topic) + bytes([qos]), "SUBACK")
        if not codes or codes[0] == 0x80:
            raise AssertionError("mosquitto refused subscription %r" % topic)

    def unsubscribe(self, topic):
        self._send_wait(0xa2, lambda pid: struct.pack("!H", pid) +
                        _mqtt_str(topic), "UNSUBACK")

    def recv(self, timeout=5.0, topic=None):
        """The next message (on topic, when given); AssertionError after
        timeout. Messages on other topics wait in the backlog."""
        for i, m in enumerate(self.backlog):
            if topic is None or m.topic == topic:
                return self.backlog.pop(i)
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            try:
                m = self.msgs.get(timeout=max(left, 0))
            except queue.Empty:
                raise AssertionError(
                    "no MQTT message%s within %.1fs" % (
                        " on " + topic if topic else "", timeout)) from None
            if topic is None or m.topic == topic:
                return m
            self.backlog.append(m)

    def quiet(self, timeout=1.0):
        """Every message that arrives within timeout (expected: none)."""
        time.sleep(timeout)
        got = list(self.backlog)
        self.backlog.clear()
        while True:
            try:
                got.append(self.msgs.get_nowait())
            except queue.Empty:
                return got

    def close(self):
        if self._closed:
            return
        self._closed = True
        try:
            with self._lock:
                self.sock.sendall(b"\xe0\x00")
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


# -- mqgate -----------------------------------------------------------------

def conf_text(sections):
    """Config text from [(section, [(key, value), ...]), ...]; a list
    value repeats the key, None leaves it out."""
    out = []
    for name, items in sections:
        out.append("[%s]" % name)
        for k, v in items:
            if v is None:
                continue
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                out.append("%s = %s" % (k, one))
        out.append("")
    return "\n".join(out)


class Mqgate:
    """mqgate on 127.0.0.1:port with a generated config.

    By default: one MQTT broker `home` at mosq (`topic = # both 1`, no
    mount), anonymous subscribe and publish to everything, keepalive 5s.
    server=, auth=, broker= are dicts merged over those defaults (a None
    value removes a key, a list repeats it); brokers= replaces the broker
    sections with [(name, dict), ...] (use `mosq.url`); text= replaces
    the whole file (with {port}, {plugin_dir} and {mosq_url} filled in).
    stderr and stdout go to a log file printed when a test fails."""

    def __init__(self, mosq=None, server=None, auth=None, broker=None,
                 brokers=None, text=None, wait="up", port=None):
        if not os.access(MQGATE_BIN, os.X_OK):
            skip("mqgate not built (%s); set MQGATE_BIN" % MQGATE_BIN)
        self.mosq = mosq
        self.dir = tempfile.mkdtemp(prefix="mqgate-it-")
        self.conf = os.path.join(self.dir, "mqgate.conf")
        self.logpath = os.path.join(self.dir, "mqgate.log")
        self.proc = None
        self.exit_status = None
        self.vglog = None       # the valgrind log of the current run
        self._nruns = 0
        _register(self)
        self._spec = (server, auth, broker, brokers, text)
        fixed = port is not None
        for attempt in range(5):
            self.port = port if fixed else free_port()
            self.write_conf()
            try:
                self.start(wait=wait)
                return
            except AssertionError:
                # Another test may have taken the free port meanwhile.
                self._end()
                if fixed or attempt == 4 or \
                        "cannot listen" not in self.log()[-2000:]:
                    raise

    def __repr__(self):
        return "mqgate:%d" % self.port

    @property
    def base(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def ws_url(self):
        return "ws://127.0.0.1:%d/ws" % self.port

    def sections(self, server=None, auth=None, broker=None, brokers=None):
        """The [(section, items)] list write_conf() would write."""
        s = {"listen": "127.0.0.1:%d" % self.port, "plugin_dir": PLUGIN_DIR,
             "keepalive": "5s", "log_level": "info", "user": CURRENT_USER}
        s.update(server or {})
        a = {"anonymous_subscribe": "#", "anonymous_publish": "#"}
        a.update(auth or {})
        if brokers is None:
            b = {"type": "mqtt",
                 "url": self.mosq.url if self.mosq else None,
                 "topic": "# both 1"}
            b.update(broker or {})
            brokers = [("home", b)]
        out = [("server", list(s.items())), ("auth", list(a.items()))]
        for name, items in brokers:
            out.append(("broker " + name, list(items.items())))
        return out

    def write_conf(self, server=None, auth=None, broker=None, brokers=None,
                   text=None):
        """(Re)writes the config file; with no argument, from the
        constructor's arguments. Returns the text."""
        if not any((server, auth, broker, brokers, text)):
            server, auth, broker, brokers, text = self._spec
        if text is None:
            text = conf_text(self.sections(server, auth, broker, brokers))
        else:
            text = text.format(port=self.port, plugin_dir=PLUGIN_DIR,
                               mosq_url=self.mosq.url if self.mosq else "")
        with open(self.conf, "w") as f:
            f.write(text)
        return text

    def start(self, wait="up", timeout=15.0):
        """Starts the daemon. wait="up": until /healthz says 200;
        "listening": until /healthz answers at all; None: no wait."""
        log = open(self.logpath, "ab")
        self.exit_status = None
        cmd = [MQGATE_BIN, "-c", self.conf]
        if VALGRIND:
            self._nruns += 1
            self.vglog = os.path.join(self.dir, "valgrind-%d.log" %
                                      self._nruns)
            cmd = VALGRIND_CMD + ["--log-file=" + self.vglog] + cmd
            timeout *= SLOW
        self.proc = subprocess.Popen(cmd, stdout=log,
                                     stderr=subprocess.STDOUT)
        log.close()
        if wait is None:
            return
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError("mqgate exited with %d at start:\n%s" % (
                    self.proc.returncode, _tail(self.logpath, 3000)))
            try:
                st, _, body = http_request(self.port, "GET", "/healthz",
                                           timeout=1.0 * SLOW)
                last = (st, body)
                if st == 200 or (wait == "listening" and st):
                    return
            except OSError as e:
                last = e
            time.sleep(0.1)
        raise AssertionError("mqgate not ready (%s) after %.0fs (last: %s)"
                             % (wait, timeout, _short(last)))

    def _end(self, sig=signal.SIGTERM, timeout=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                # valgrind's leak check runs after the daemon's exit
                self.proc.wait(timeout * SLOW * (2 if VALGRIND else 1))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.exit_status = self.proc.returncode
        self._take_valgrind_log()

    def _take_valgrind_log(self):
        """Queues the valgrind log of the run that ended for run() to
        report when it holds anything (with --quiet it holds only
        errors)."""
        if not self.vglog:
            return
        path, self.vglog = self.vglog, None
        try:
            with open(path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError as e:
            text = "(no valgrind log %s: %s)\n" % (path, e)
        if text.strip():
            _valgrind_reports.append(("%r run %d (exit status %s)" % (
                self, self._nruns, self.exit_status), text))

    def stop(self, timeout=10.0):
        """SIGTERM and wait; returns the exit status."""
        self._end(signal.SIGTERM, timeout)
        return self.exit_status

    def restart(self, wait="up"):
        self.stop()
        self.start(wait=wait)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """Everything the daemon wrote so far."""
        try:
            with open(self.logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def dump(self):
        say("---- mqgate log (%s) ----\n%s" % (self.logpath,
                                               _tail(self.logpath)))
        try:
            with open(self.conf) as f:
                say("---- mqgate config ----\n" + f.read())
        except OSError:
            pass

    def cleanup(self):
        self._end(signal.SIGTERM, 3.0)
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- clients of this daemon ----------------------------------------

    def ws(self, **kw):
        return WsClient(self.ws_url, **kw)

    def sse(self, topics=(), **kw):
        return SseClient(self.port, topics, **kw)

    def http(self, method, path, **kw):
        return http_request(self.port, method, path, **kw)

    def healthz(self):
        """(status, parsed body)."""
        st, _, body = self.http("GET", "/healthz")
        return st, json.loads(body)

    def metrics(self):
        """{ 'name{labels}': value } from /metrics."""
        st, _, body = self.http("GET", "/metrics")
        if st != 200:
            raise AssertionError("/metrics answered %d" % st)
        out = {}
        for line in body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
        return out

    def metric(self, name, **labels):
        key = name + ("{" + ",".join('%s="%s"' % kv for kv in
                                     sorted(labels.items())) + "}"
                      if labels else "")
        m = self.metrics()
        if key in m:
            return m[key]
        # Label order in the output may differ from sorted order.
        for k, v in m.items():
            if k.startswith(name + "{") and all(
                    '%s="%s"' % kv in k for kv in labels.items()):
                return v
        return None


# -- HTTP over a raw socket -------------------------------------------------

def _read_headers(sock, buf, timeout):
    sock.settimeout(timeout)
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the headers "
                                  "ended (got %r)" % buf[:200])
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("iso-8859-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("bad status line %r" % lines[0])
    headers = Headers()
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.add(k.strip(), v.strip())
    return int(parts[1]), headers, rest


class Headers:
    """Response headers: case-insensitive, repeatable."""

    def __init__(self):
        self.items = []

    def add(self, k, v):
        self.items.append((k, v))

    def get(self, k, default=None):
        for kk, v in self.items:
            if kk.lower() == k.lower():
                return v
        return default

    def all(self, k):
        return [v for kk, v in self.items if kk.lower() == k.lower()]

    def __contains__(self, k):
        return self.get(k) is not None

    def __repr__(self):
        return repr(self.items)


def _dechunk(data):
    """(body, complete) of a chunked body."""
    out = b""
    while True:
        line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return out, False
        n = int(line.split(b";")[0], 16)
        if n == 0:
            return out, True
        if len(rest) < n + 2:
            return out, False
        out += rest[:n]
        data = rest[n + 2:]


def http_request(port, method, path, headers=None, body=None, raw=None,
                 timeout=5.0):
    """One request on its own connection. raw= sends those bytes as is.
    Returns (status, Headers, body bytes); the body is read to its
    Content-Length, the chunked end, or the connection's end."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        if raw is None:
            h = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
            if body is not None:
                if isinstance(body, str):
                    body = body.encode()
                h["Content-Length"] = str(len(body))
            h.update(headers or {})
            req = "%s %s HTTP/1.1\r\n" % (method, path)
            req += "".join("%s: %s\r\n" % kv for kv in h.items()
                           if kv[1] is not None)
            raw = req.encode() + b"\r\n" + (body or b"")
        s.sendall(raw)
        status, hdrs, rest = _read_headers(s, b"", timeout)
        clen = hdrs.get("content-length")
        chunked = "chunked" in (hdrs.get("transfer-encoding") or "").lower()
        if method == "HEAD" or status in (204, 304):
            return status, hdrs, b""
        while True:
            if clen is not None and len(rest) >= int(clen):
                return status, hdrs, rest[:int(clen)]
            if chunked:
                data, done = _dechunk(rest)
                if done:
                    return status, hdrs, data
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                raise AssertionError("HTTP %s %s: body not complete after "
                                     "%.1fs (got %d bytes)" % (
                                         method, path, timeout, len(rest)))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                if clen is not None and len(rest) < int(clen):
                    raise AssertionError("HTTP %s %s: body cut short" %
                                         (method, path))
                return status, hdrs, _dechunk(rest)[0] if chunked else rest
            rest += chunk


def post_json(gate, path, obj, headers=None):
    """POST a JSON body; (status, parsed body or raw bytes)."""
    body = obj if isinstance(obj, (bytes, str)) else json.dumps(obj)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    st, _, data = gate.http("POST", path, headers=h, body=body)
    try:
        return st, json.loads(data)
    except ValueError:
        return st, data


# -- WebSocket client -------------------------------------------------------

class WsClosed(AssertionError):
    """The server closed the WebSocket (code, reason) or the socket."""

    def __init__(self, code, reason):
        AssertionError.__init__(self, "WebSocket closed by the server: "
                                "code %s reason %r" % (code, reason))
        self.code = code
        self.reason = reason


class WsClient:
    """A browser-like WebSocket client of /ws speaking mqgate.v1.

    Frames the test is not waiting for stay in a backlog, so expect() can
    look for one reply while messages keep arriving."""

    def __init__(self, url, subprotocol="mqgate.v1", headers=None,
                 timeout=5.0, hello=True, sockopt=None, origin=None,
                 sslopt=None):
        opts = {"timeout": timeout}
        if sslopt:
            opts["sslopt"] = sslopt
        if subprotocol:
            opts["subprotocols"] = [subprotocol]
        if headers:
            opts["header"] = headers
        if sockopt:
            opts["sockopt"] = sockopt
        if origin:
            opts["origin"] = origin
        else:
            opts["suppress_origin"] = True
        self.url = url
        self.timeout = timeout
        self.ws = websocket.create_connection(url, **opts)
        self.backlog = []
        self.closed = None
        self._next_id = 0
        _register(self)
        self.hello = self.expect(op="hello") if hello else None

    def __repr__(self):
        return "ws-client:" + self.url

    def dump(self):
        pass

    def cleanup(self):
        self.close()

    def send(self, obj):
        """Sends one op (a dict) as a text frame."""
        self.ws.send(json.dumps(obj))

    def send_text(self, data):
        """Sends str or bytes as one text frame, bytes unchanged (even
        when they are not UTF-8)."""
        self.ws.send(data, opcode=websocket.ABNF.OPCODE_TEXT)

    def send_binary(self, data):
        self.ws.send(data, opcode=websocket.ABNF.OPCODE_BINARY)

    def send_fragments(self, parts, opcode=None):
        """Sends one message split into fragments (list of bytes)."""
        op = opcode if opcode is not None else websocket.ABNF.OPCODE_TEXT
        for i, p in enumerate(parts):
            frame = websocket.ABNF.create_frame(
                p, op if i == 0 else websocket.ABNF.OPCODE_CONT,
                fin=1 if i == len(parts) - 1 else 0)
            self.ws.send_frame(frame)

    def _recv_one(self, timeout):
        """One data frame as a dict; None on timeout; raises WsClosed."""
        if self.closed:
            raise self.closed
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            # Control frames (the server's pings) must not extend the wait.
            self.ws.settimeout(left)
            try:
                op, frame = self.ws.recv_data_frame(True)
            except websocket.WebSocketTimeoutException:
                return None
            except (websocket.WebSocketConnectionClosedException,
                    ConnectionError, OSError) as e:
                self.closed = WsClosed(None, "socket: %s" % e)
                raise self.closed from None
            if op == websocket.ABNF.OPCODE_CLOSE:
                code = None
                reason = ""
                if len(frame.data) >= 2:
                    code = struct.unpack("!H", frame.data[:2])[0]
                    reason = frame.data[2:].decode("utf-8", "replace")
                self.closed = WsClosed(code, reason)
                raise self.closed
            if op in (websocket.ABNF.OPCODE_PING, websocket.ABNF.OPCODE_PONG):
                continue
            if op != websocket.ABNF.OPCODE_TEXT:
                raise AssertionError("server sent a non-text frame "
                                     "(opcode %d)" % op)
            try:
                obj = json.loads(frame.data)
            except ValueError:
                raise AssertionError("server frame is not JSON: %r" %
                                     frame.data[:300]) from None
            if not isinstance(obj, dict) or "op" not in obj:
                raise AssertionError("server frame is not an object with "
                                     "an op: %r" % frame.data[:300])
            return obj

    def recv(self, timeout=None):
        """The next frame in arrival order (backlog first); None when
        nothing arrives within timeout; raises WsClosed."""
        if self.backlog:
            return self.backlog.pop(0)
        return self._recv_one(self.timeout if timeout is None else timeout)

    @staticmethod
    def _match(frame, fields, pred):
        for k, v in fields.items():
            if k not in frame or frame[k] != v or \
                    type(frame[k]) is not type(v):
                return False
        return pred is None or pred(frame)

    def expect(self, timeout=None, pred=None, **fields):
        """The first frame whose fields equal `fields` (and pred(frame)
        is true). Others go to the backlog."""
        for i, f in enumerate(self.backlog):
            if self._match(f, fields, pred):
                return self.backlog.pop(i)
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    "no frame with %s within %.1fs; unmatched frames: %s" % (
                        fields, timeout, _short(self.backlog[-8:])))
            f = self._recv_one(left)
            if f is None:
                continue
            if self._match(f, fields, pred):
                return f
            self.backlog.append(f)

    def frames(self, timeout=1.0, **fields):
        """Every frame matching fields that arrives within timeout (and
        those in the backlog)."""
        got = [f for f in self.backlog if self._match(f, fields, None)]
        self.backlog = [f for f in self.backlog
                        if not self._match(f, fields, None)]
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return got
            f = self._recv_one(left)
            if f is None:
                continue
            if self._match(f, fields, None):
                got.append(f)
            else:
                self.backlog.append(f)

    def messages(self, n, topic=None, timeout=None):
        """Exactly the next n `message` frames (on topic)."""
        fields = {"op": "message"}
        if topic is not None:
            fields["topic"] = topic
        timeout = self.timeout if timeout is None else timeout
        end = time.monotonic() + timeout
        out = []
        while len(out) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError("got %d of %d messages%s within %.1fs:"
                                     " %s" % (len(out), n,
                                              " on " + topic if topic else "",
                                              timeout, _short(out[-5:])))
            out.append(self.expect(timeout=left, **fields))
        return out

    def new_id(self):
        self._next_id += 1
        return self._next_id

    def request(self, op, timeout=None, **fields):
        """Sends an op with a fresh numeric id; returns the reply with that
        id (ok, error or pong)."""
        rid = fields.pop("id", None)
        if rid is None:
            rid = self.new_id()
        obj = {"op": op, "id": rid}
        obj.update(fields)
        self.send(obj)
        return self.expect(timeout=timeout, id=rid,
                           pred=lambda f: f["op"] in ("ok", "error", "pong"))

    def subscribe(self, topics, **fields):
        """Subscribes and checks the ok; returns it."""
        if isinstance(topics, str):
            topics = [topics]
        r = self.request("subscribe", topics=list(topics), **fields)
        if r["op"] != "ok":
            raise AssertionError("subscribe %s refused: %s" % (topics, r))
        return r

    def publish(self, topic, payload, **fields):
        """Publishes; returns the reply (ok or error)."""
        return self.request("publish", topic=topic, payload=payload,
                            **fields)

    def ping(self, timeout=None):
        """A ping that must be answered with pong: the connection works."""
        rid = "ping-%d" % self.new_id()
        self.send({"op": "ping", "id": rid})
        r = self.expect(timeout=timeout, id=rid)
        if r["op"] != "pong":
            raise AssertionError("ping answered with %s" % r)
        return r

    def wait_closed(self, timeout=5.0):
        """Reads until the server closes; returns WsClosed."""
        end = time.monotonic() + timeout
        try:
            while time.monotonic() < end:
                f = self._recv_one(max(end - time.monotonic(), 0.01))
                if f is not None:
                    self.backlog.append(f)
        except WsClosed as c:
            return c
        raise AssertionError("the server did not close the WebSocket "
                             "within %.1fs" % timeout)

    def close(self):
        try:
            self.ws.close(timeout=1)
        except Exception:
            pass


def event_seq(event_id):
    """(epoch, seq) of an event id `<epoch>-<seq>`; fails otherwise."""
    if not isinstance(event_id, str):
        raise AssertionError("event id is not a string: %r" % (event_id,))
    epoch, sep, seq = event_id.partition("-")
    if not sep or not epoch.isdigit() or not seq.isdigit():
        raise AssertionError("event id %r is not <epoch>-<seq>" % event_id)
    return int(epoch), int(seq)


# -- Server-Sent Events over a raw socket -----------------------------------

class SseEvent:
    """One event block: its field lines and comment lines in order."""

    def __init__(self, lines):
        self.lines = lines      # [(field, value)]; comments as ("", text)

    def field(self, name):
        vals = [v for k, v in self.lines if k == name]
        return vals[-1] if vals else None

    @property
    def id(self):
        return self.field("id")

    @property
    def event(self):
        return self.field("event") or "message"

    @property
    def data(self):
        vals = [v for k, v in self.lines if k == "data"]
        return "\n".join(vals) if vals else None

    @property
    def retry(self):
        return self.field("retry")

    @property
    def comments(self):
        return [v for k, v in self.lines if k == ""]

    def json(self):
        try:
            return json.loads(self.data)
        except (TypeError, ValueError):
            raise AssertionError("SSE data is not one JSON value: %r" %
                                 self.data) from None

    def __repr__(self):
        return "SseEvent(%r)" % self.lines


class SseClient:
    """GET /events on a raw socket, parsed per the EventSource rules
    (lines end in CR, LF or CRLF; blank line ends an event). After the
    request nothing is ever written: mqgate ends a stream on any byte."""

    def __init__(self, port, topics=(), query=None, headers=None,
                 timeout=5.0, path="/events"):
        q = [("topic", t) for t in topics] + list((query or {}).items())
        url = path + ("?" + urllib.parse.urlencode(q) if q else "")
        h = {"Host": "127.0.0.1:%d" % port, "Accept": "text/event-stream"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n%s\r\n" % (
            url, "".join("%s: %s\r\n" % kv for kv in h.items()))
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        _register(self)
        self.sock.sendall(req.encode())
        self.status, self.headers, rest = _read_headers(self.sock, b"",
                                                        timeout)
        self.chunked = "chunked" in (self.headers.get("transfer-encoding")
                                     or "").lower()
        self._raw = b""       # undecoded transfer bytes (chunked)
        self._buf = b""       # decoded stream bytes
        self.eof = False
        self.body = b""       # the whole body of a non-200 answer
        self._feed(rest)
        if self.status != 200:
            clen = self.headers.get("content-length")
            end = time.monotonic() + timeout
            while not self.eof and (clen is None or
                                    len(self._buf) < int(clen)):
                if time.monotonic() > end:
                    break
                self._read(end - time.monotonic())
            self.body = self._buf
            self.close()

    def _feed(self, data):
        if not self.chunked:
            self._buf += data
            return
        self._raw += data
        while True:
            line, sep, rest = self._raw.partition(b"\r\n")
            if not sep:
                return
            n = int(line.split(b";")[0] or b"0", 16)
            if n == 0:
                self.eof = True
                self._raw = b""
                return
            if len(rest) < n + 2:
                return
            self._buf += rest[:n]
            self._raw = rest[n + 2:]

    def _read(self, timeout):
        """Reads what arrives within timeout; False on timeout."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], max(timeout, 0))
        if not r:
            return False
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, OSError):
            data = b""
        if not data:
            self.eof = True
            return True
        self._feed(data)
        return True

    def _take_block(self):
        """One complete event block from the buffer, or None."""
        buf = self._buf
        lines = []
        pos = 0
        while True:
            # find the next line end: CRLF, CR or LF
            i = pos
            n = len(buf)
            while i < n and buf[i] not in (10, 13):
                i += 1
            if i == n:
                return None
            if buf[i] == 13:
                if i + 1 == n:
                    return None   # a CR at the end: maybe CRLF, wait
                nxt = i + 2 if buf[i + 1] == 10 else i + 1
            else:
                nxt = i + 1
            line = buf[pos:i].decode("utf-8", "strict")
            pos = nxt
            if line == "":
                if lines:
                    self._buf = buf[pos:]
                    return SseEvent(lines)
                self._buf = buf = buf[pos:]
                pos = 0
                continue
            if line.startswith(":"):
                lines.append(("", line[1:].lstrip(" ")))
                continue
            k, sep, v = line.partition(":")
            if sep and v.startswith(" "):
                v = v[1:]
            lines.append((k, v))

    def next(self, timeout=5.0):
        """The next block (an event or comments); None on timeout or when
        the stream has ended (see .eof)."""
        end = time.monotonic() + timeout
        while True:
            b = self._take_block()
            if b is not None:
                return b
            if self.eof:
                return None
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._read(left)

    def events(self, n, timeout=5.0, skip_comments=True):
        """Exactly n data events (comment-only blocks skipped)."""
        end = time.monotonic() + timeout
        out = []
        while len(out) < n:
            b = self.next(max(end - time.monotonic(), 0))
            if b is None:
                raise AssertionError(
                    "got %d of %d SSE events within %.1fs%s: %s" % (
                        len(out), n, timeout,
                        " (stream ended)" if self.eof else "",
                        _short(out[-5:])))
            if skip_comments and b.data is None and not b.field("event"):
                continue
            out.append(b)
        return out

    def collect(self, timeout=1.0):
        """Every block that arrives within timeout."""
        end = time.monotonic() + timeout
        out = []
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return out
            b = self.next(left)
            if b is None:
                if self.eof:
                    return out
                continue
            out.append(b)

    def wait_eof(self, timeout=5.0):
        end = time.monotonic() + timeout
        while not self.eof and time.monotonic() < end:
            while self._take_block():
                pass
            self._read(end - time.monotonic())
        return self.eof

    def __repr__(self):
        return "sse-client"

    def dump(self):
        pass

    def cleanup(self):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def b64(data):
    return base64.b64encode(data).decode()


def unb64(text):
    return base64.b64decode(text, validate=True)


# -- RabbitMQ ---------------------------------------------------------------

RABBITMQ_NODE = os.path.join(SRCDIR, "tests", "tools", "rabbitmq-node")


class RabbitMQ:
    """A private RabbitMQ node on 127.0.0.1:port, started and stopped with
    tests/tools/rabbitmq-node (guest/guest, vhost "/", no plugins). stop()
    and start() keep the port, so a restart is the same broker address for
    mqgate. A node takes seconds to boot, so a script usually makes one
    with shared=True: it then outlives the per-test cleanup and is stopped
    when the script exits. A guard process stops the node and removes its
    directory even when the script dies without cleaning up. Skips (77)
    when RabbitMQ is not installed."""

    def __init__(self, shared=False, timeout=300.0):
        self.dir = tempfile.mkdtemp(prefix="mqgate-it-rmq-")
        self.port = None
        self.node = None
        self.timeout = timeout
        # The guard waits for EOF on its stdin: only this process holds
        # the write end (subprocess closes it in every other child).
        self._guard = subprocess.Popen(
            ["/bin/sh", "-c", 'trap "" INT TERM HUP; cat >/dev/null; '
             '"$0" stop "$1" >/dev/null 2>&1; rm -rf "$1"',
             RABBITMQ_NODE, self.dir], stdin=subprocess.PIPE)
        if shared:
            import atexit
            atexit.register(self.cleanup)
        else:
            _register(self)
        self.start()

    def __repr__(self):
        return "rabbitmq:%s" % self.port

    @property
    def url(self):
        return "amqp://guest:guest@127.0.0.1:%d/" % self.port

    def _node(self, cmd, timeout):
        return subprocess.run([RABBITMQ_NODE, cmd, self.dir],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=timeout)

    def start(self):
        """Starts the node (same port after a stop) and waits until it
        has booted."""
        if not os.access(RABBITMQ_NODE, os.X_OK):
            raise AssertionError("%s is not executable" % RABBITMQ_NODE)
        r = self._node("start", self.timeout)
        if r.returncode == SKIP:
            skip("RabbitMQ is not installed")
        if r.returncode != 0:
            raise AssertionError("rabbitmq-node start failed (%d):\n%s" % (
                r.returncode, r.stderr.decode("utf-8", "replace")[-3000:]))
        port, node = r.stdout.decode().split()
        if self.port is not None and int(port) != self.port:
            raise AssertionError("the node came back on port %s, not %d" %
                                 (port, self.port))
        self.port, self.node = int(port), node

    def stop(self):
        """A clean broker shutdown (clients get connection.close)."""
        if self.port is None:
            return
        r = self._node("stop", 120)
        if r.returncode != 0:
            raise AssertionError("rabbitmq-node stop failed:\n%s" %
                                 r.stderr.decode("utf-8", "replace"))

    def restart(self):
        self.stop()
        self.start()

    def ctl(self, *args):
        """rabbitmqctl ARGS against the node; its stdout as text."""
        r = subprocess.run([RABBITMQ_NODE, "ctl", self.dir] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=120)
        if r.returncode != 0:
            raise AssertionError("rabbitmqctl %s failed: %s" % (
                " ".join(args), r.stderr.decode("utf-8", "replace")))
        return r.stdout.decode("utf-8", "replace")

    def client(self, **kw):
        """A new AmqpClient logged in to this node (caller closes it)."""
        return AmqpClient(self.port, **kw)

    def dump(self):
        log = os.path.join(self.dir, "log", "%s.log" % self.node)
        say("---- rabbitmq log (%s) ----\n%s" % (log, _tail(log, 3000)))

    def cleanup(self):
        try:
            self.stop()
        finally:
            if self._guard.poll() is None:
                self._guard.stdin.close()
                self._guard.wait(60)


# -- AMQP 0-9-1 client ------------------------------------------------------

AmqpMsg = collections.namedtuple("AmqpMsg", "routing_key body properties")

# Basic properties in flag order (bit 15 down): name, wire type.
_AMQP_PROPS = [("content_type", "s"), ("content_encoding", "s"),
               ("headers", "F"), ("delivery_mode", "o"), ("priority", "o"),
               ("correlation_id", "s"), ("reply_to", "s"),
               ("expiration", "s"), ("message_id", "s"), ("timestamp", "T"),
               ("type", "s"), ("user_id", "s"), ("app_id", "s"),
               ("cluster_id", "s")]


def _amqp_short(s):
    b = s.encode() if isinstance(s, str) else s
    if len(b) > 255:
        raise ValueError("AMQP shortstr over 255 bytes")
    return bytes([len(b)]) + b


def _amqp_long(b):
    return struct.pack("!I", len(b)) + b


class _AmqpReader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        b = self.data[self.pos:self.pos + n]
        if len(b) != n:
            raise ValueError("short AMQP frame")
        self.pos += n
        return b

    def octet(self):
        return self.take(1)[0]

    def short(self):
        return struct.unpack("!H", self.take(2))[0]

    def long(self):
        return struct.unpack("!I", self.take(4))[0]

    def longlong(self):
        return struct.unpack("!Q", self.take(8))[0]

    def shortstr(self):
        return self.take(self.octet()).decode("utf-8", "replace")

    def longstr(self):
        return self.take(self.long())


class AmqpClient:
    """A minimal synchronous AMQP 0-9-1 client on channel 1: publish to
    an exchange (exact bytes, optional timestamp), declare and bind
    queues, delete them, and read them with basic.get. Enough for a test
    to act as a device on a RabbitMQ node."""

    def __init__(self, port, user="guest", password="guest", vhost="/",
                 timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.sock.settimeout(timeout)
        self.timeout = timeout
        self.buf = b""
        self.frame_max = 131072
        self.sock.sendall(b"AMQP\x00\x00\x09\x01")
        self._expect(0, 10, 10)                         # connection.start
        self._method(0, 10, 11, _amqp_long(b"") + _amqp_short("PLAIN") +
                     _amqp_long(b"\0" + user.encode() + b"\0" +
                                password.encode()) + _amqp_short("en_US"))
        r = self._expect(0, 10, 30)                     # connection.tune
        chmax, fmax = r.short(), r.long()
        self.frame_max = min(fmax or 131072, 131072)
        self._method(0, 10, 31, struct.pack("!HIH", chmax, self.frame_max, 0))
        self._method(0, 10, 40, _amqp_short(vhost) + _amqp_short("") +
                     b"\0")
        self._expect(0, 10, 41)                         # connection.open-ok
        self._method(1, 20, 10, _amqp_short(""))
        self._expect(1, 20, 11)                         # channel.open-ok

    # -- frames
    def _send_frame(self, ftype, channel, payload):
        self.sock.sendall(struct.pack("!BHI", ftype, channel, len(payload)) +
                          payload + b"\xce")

    def _method(self, channel, cls, mth, args):
        self._send_frame(1, channel, struct.pack("!HH", cls, mth) + args)

    def _recv_exact(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("AMQP connection closed")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _frame(self):
        """(type, channel, payload); heartbeats skipped."""
        while True:
            ftype, channel, size = struct.unpack("!BHI", self._recv_exact(7))
            payload = self._recv_exact(size)
            if self._recv_exact(1) != b"\xce":
                raise ValueError("bad AMQP frame end")
            if ftype != 8:
                return ftype, channel, payload

    def _expect(self, channel, cls, mth):
        """The arguments of the next method, which must be cls.mth."""
        ftype, ch, payload = self._frame()
        if ftype != 1:
            raise AssertionError("AMQP: expected a method, got frame type "
                                 "%d" % ftype)
        r = _AmqpReader(payload)
        c, m = r.short(), r.short()
        if (c, m) in ((10, 50), (20, 40)):
            code, text = r.short(), r.shortstr()
            raise AssertionError("AMQP: the broker closed the %s: %d %s" % (
                "connection" if c == 10 else "channel", code, text))
        if (ch, c, m) != (channel, cls, mth):
            raise AssertionError("AMQP: expected %d.%d on channel %d, got "
                                 "%d.%d on %d" % (cls, mth, channel, c, m,
                                                  ch))
        return r

    # -- operations
    def publish(self, routing_key, body, exchange="amq.topic",
                timestamp=None, message_id=None):
        """Publishes bytes (str is UTF-8 encoded) without confirms."""
        if isinstance(body, str):
            body = body.encode()
        self._method(1, 60, 40, struct.pack("!H", 0) + _amqp_short(exchange) +
                     _amqp_short(routing_key) + b"\0")
        flags, props = 0, b""
        if message_id is not None:
            flags |= 1 << 7
            props += _amqp_short(message_id)
        if timestamp is not None:
            flags |= 1 << 6
            props += struct.pack("!Q", timestamp)
        self._send_frame(2, 1, struct.pack("!HHQH", 60, 0, len(body), flags) +
                         props)
        step = self.frame_max - 8
        for i in range(0, len(body), step):
            self._send_frame(3, 1, body[i:i + step])

    def declare_queue(self, name="", durable=False, exclusive=None,
                      auto_delete=None):
        """Declares a queue (name "" = server-named, exclusive and
        auto-delete unless told); returns its name."""
        if exclusive is None:
            exclusive = name == ""
        if auto_delete is None:
            auto_delete = not durable
        bits = (2 if durable else 0) | (4 if exclusive else 0) | \
            (8 if auto_delete else 0)
        self._method(1, 50, 10, struct.pack("!H", 0) + _amqp_short(name) +
                     bytes([bits]) + _amqp_long(b""))
        return self._expect(1, 50, 11).shortstr()

    def bind(self, queue_name, routing_key, exchange="amq.topic"):
        self._method(1, 50, 20, struct.pack("!H", 0) + _amqp_short(queue_name)
                     + _amqp_short(exchange) + _amqp_short(routing_key) +
                     b"\0" + _amqp_long(b""))
        self._expect(1, 50, 21)

    def queue(self, routing_key, exchange="amq.topic"):
        """A new server-named queue bound to routing_key; its name."""
        q = self.declare_queue()
        self.bind(q, routing_key, exchange)
        return q

    def delete_queue(self, name):
        self._method(1, 50, 40, struct.pack("!H", 0) + _amqp_short(name) +
                     b"\0")
        self._expect(1, 50, 41)

    def get(self, queue_name, timeout=5.0):
        """The next message of the queue (basic.get, polled) as an
        AmqpMsg; AssertionError after timeout."""
        end = time.monotonic() + timeout
        while True:
            self._method(1, 60, 70, struct.pack("!H", 0) +
                         _amqp_short(queue_name) + b"\1")
            ftype, ch, payload = self._frame()
            r = _AmqpReader(payload)
            c, m = r.short(), r.short()
            if (c, m) == (60, 71):
                r.longlong()
                r.octet()
                r.shortstr()
                key = r.shortstr()
                return AmqpMsg(key, *self._content())
            if (c, m) != (60, 72):
                raise AssertionError("AMQP: basic.get answered %d.%d" %
                                     (c, m))
            if time.monotonic() >= end:
                raise AssertionError("no AMQP message in %s within %.1fs" %
                                     (queue_name, timeout))
            time.sleep(0.05)

    def _content(self):
        ftype, ch, payload = self._frame()
        if ftype != 2:
            raise AssertionError("AMQP: expected a content header")
        r = _AmqpReader(payload)
        r.short()
        r.short()
        size, flags = r.longlong(), r.short()
        props = {}
        for i, (name, kind) in enumerate(_AMQP_PROPS):
            if not flags & (1 << (15 - i)):
                continue
            if kind == "s":
                props[name] = r.shortstr()
            elif kind == "o":
                props[name] = r.octet()
            elif kind == "T":
                props[name] = r.longlong()
            else:
                r.take(r.long())
                props[name] = {}
        body = b""
        while len(body) < size:
            ftype, ch, payload = self._frame()
            if ftype != 3:
                raise AssertionError("AMQP: expected a body frame")
            body += payload
        return body, props

    def close(self):
        try:
            self._method(0, 10, 50, struct.pack("!H", 200) +
                         _amqp_short("bye") + struct.pack("!HH", 0, 0))
            self._expect(0, 10, 51)
        except (OSError, AssertionError, ValueError, ConnectionError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass
