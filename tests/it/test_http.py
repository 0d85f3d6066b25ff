#!/usr/bin/env python3
"""test_http.py - the plain HTTP side of PROTOCOL.md: POST /publish and
its error statuses (400, 403, 411, 413, 503), CORS preflight and the
WebSocket Origin check, /healthz, /metrics (documented names, counters
that move), static files from the docroot without path traversal, and
broken HTTP requests that must never disturb a connected client."""

import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgatetest  # noqa: E402
from mqgatetest import (Mosquitto, Mqgate, TempDir, b64, check,  # noqa: E402
                        check_eq, http_request, post_json, run, say,
                        wait_for)

ALLOWED = "http://allowed.example"

# Every metric src/metrics.c renders.
METRIC_NAMES = [
    "mqgate_build_info", "mqgate_clients", "mqgate_connections_total",
    "mqgate_connections_rejected_total", "mqgate_messages_out_total",
    "mqgate_bytes_out_total", "mqgate_drops_total",
    "mqgate_publishes_total", "mqgate_error_replies_total",
    "mqgate_broker_messages_too_large_total", "mqgate_messages_in_total",
    "mqgate_broker_up", "mqgate_broker_connects_total",
    "mqgate_history_messages", "mqgate_history_bytes",
    "mqgate_cache_topics", "mqgate_cache_bytes", "mqgate_subscriptions",
]


def check_error(st, body, want_st, code, what):
    check(st == want_st and isinstance(body, dict) and
          body.get("error") == code and isinstance(body.get("message"), str),
          '%s -> %d {"error":"%s","message":...}' % (what, want_st, code),
          (st, body))


def t_publish():
    """POST /publish: 200 {"ok":true} and the broker gets the bytes;
    400 bad JSON, 403 forbidden, 411 without Content-Length, 413 over
    max_message"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"max_message": "8K"},
                  broker={"topic": ["it/# both 1", "ro/# in 0"]})
    sub = mosq.sub("#")
    for what, obj, topic, want in (
            ("object payload, qos 1",
             {"topic": "it/hp/a", "payload": {"x": 1}, "qos": 1},
             "it/hp/a", b'{"x":1}'),
            ("string payload", {"topic": "it/hp/b", "payload": "caf\u00e9"},
             "it/hp/b", "caf\u00e9".encode()),
            ("base64 payload", {"topic": "it/hp/c",
                                "payload": b64(b"\x00\xff"),
                                "encoding": "base64"}, "it/hp/c",
             b"\x00\xff")):
        st, hdrs, body = gate.http("POST", "/publish", body=json.dumps(obj), headers={"Content-Type": "application/json"})
        check_eq((st, body), (200, b'{"ok":true}'),
                 what + ': 200 {"ok":true}')
        ct = (hdrs.get("content-type") or "").split(";")[0]
        check_eq(ct, "application/json", what + ": JSON content type")
        m = sub.recv(topic=topic)
        check_eq(m.payload, want, what + ": the broker gets the bytes")

    st, body = post_json(gate, "/publish", "{nope")
    check_error(st, body, 400, "bad_request", "malformed JSON body")
    st, body = post_json(gate, "/publish", "[1, 2]")
    check_error(st, body, 400, "bad_request", "a JSON array body")
    st, body = post_json(gate, "/publish", {"payload": 1})
    check_error(st, body, 400, "bad_request", "no topic")
    st, body = post_json(gate, "/publish", {"topic": "it/+", "payload": 1})
    check_error(st, body, 400, "bad_request", "a wildcard topic")
    st, body = post_json(gate, "/publish", {"topic": "ro/x", "payload": 1})
    check_error(st, body, 403, "forbidden", "an in-only topic")
    st, body = post_json(gate, "/publish", {"topic": "zzz/x", "payload": 1})
    check_error(st, body, 403, "forbidden", "a topic outside the walls")

    raw = (b"POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\n\r\n")
    st, _, body = gate.http("POST", "/publish", raw=raw)
    check_eq(st, 411, "POST without Content-Length -> 411")

    st, body = post_json(gate, "/publish", {"topic": "it/hp/big",
                                            "payload": "x" * (8192 + 1)})
    check_error(st, body, 413, "too_large", "a payload of max_message + 1")
    raw = (b"POST /publish HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
           b"Content-Type: application/json\r\n"
           b"Content-Length: 100000000\r\n\r\n{")
    t0 = time.monotonic()
    st, _, body = gate.http("POST", "/publish", raw=raw)
    check_eq(st, 413, "Content-Length of 100 MB -> 413")
    check(time.monotonic() - t0 < 3, "refused without waiting for the body",
          time.monotonic() - t0)
    st, body = post_json(gate, "/publish", {"topic": "it/hp/max",
                                            "payload": "y" * 8192})
    check_eq((st, body), (200, {"ok": True}),
             "a payload of exactly max_message: 200")
    late = sub.quiet(1.0)
    check_eq(sorted({m.topic for m in late}), ["it/hp/max"],
             "no refused publish reached the broker")


def t_publish_broker_down():
    """POST /publish while the broker is down -> 503 unavailable"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    mosq.kill()
    wait_for("/healthz 503", lambda: gate.healthz()[0] == 503, timeout=10)
    st, body = post_json(gate, "/publish", {"topic": "it/x", "payload": 1})
    check_error(st, body, 503, "unavailable", "publish with the broker down")


def t_cors_and_origin():
    """CORS headers only for allowed origins (preflight and replies);
    a WebSocket upgrade from another origin -> 403"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"origins": ALLOWED})
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "content-type"}
    st, h, _ = gate.http("OPTIONS", "/publish",
                         headers=dict(pre, Origin=ALLOWED))
    check(200 <= st < 300, "preflight from an allowed origin: 2xx", st)
    check_eq(h.get("access-control-allow-origin"), ALLOWED,
             "preflight: Access-Control-Allow-Origin echoes the origin")
    methods = (h.get("access-control-allow-methods") or "").upper()
    check("POST" in methods, "preflight allows POST", methods)
    allowed_h = (h.get("access-control-allow-headers") or "").lower()
    check("content-type" in allowed_h, "preflight allows Content-Type",
          allowed_h)
    for origin in ("http://evil.example", ALLOWED + ".evil.example", None):
        hd = dict(pre)
        if origin:
            hd["Origin"] = origin
        st, h, _ = gate.http("OPTIONS", "/publish", headers=hd)
        check(h.get("access-control-allow-origin") is None,
              "preflight from %s: no Access-Control-Allow-Origin" %
              (origin or "no origin"), h)
    st, h, _ = gate.http("POST", "/publish", body='{"topic":"it/c",'
                         '"payload":1}', headers={"Origin": ALLOWED})
    check_eq((st, h.get("access-control-allow-origin")), (200, ALLOWED),
             "POST /publish from the allowed origin carries the CORS header")
    st, h, _ = gate.http("POST", "/publish", body='{"topic":"it/c",'
                         '"payload":1}',
                         headers={"Origin": "http://evil.example"})
    check(h.get("access-control-allow-origin") is None,
          "POST /publish from another origin: no CORS header", (st, h))
    s = gate.sse(["it/#"], headers={"Origin": ALLOWED})
    check_eq((s.status, s.headers.get("access-control-allow-origin")),
             (200, ALLOWED), "/events from the allowed origin: CORS header")
    s.close()

    c = gate.ws(origin=ALLOWED)
    check_eq(c.hello["op"], "hello", "WebSocket from the allowed origin")
    c = gate.ws()
    check_eq(c.hello["op"], "hello", "WebSocket without Origin (not a "
             "browser) is not origin-checked")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    raw = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqgate.v1"
           "\r\nOrigin: http://evil.example\r\n\r\n" % key).encode()
    st, _, body = gate.http("GET", "/ws", raw=raw)
    check_eq(st, 403, "WebSocket upgrade from another origin -> 403")


def t_healthz():
    """/healthz: 200 {"status":"ok","brokers":{NAME:{"type":"mqtt",
    "state":"connected"}}} for every broker"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, brokers=[
        ("home", {"type": "mqtt", "url": mosq.url, "mount": "a/",
                  "client_id": "it-home-%p", "topic": "# both 1"}),
        ("away", {"type": "mqtt", "url": mosq.url, "mount": "b/",
                  "client_id": "it-away-%p", "topic": "# both 1"})])
    st, h, body = gate.http("GET", "/healthz")
    check_eq(st, 200, "/healthz 200 with every broker connected")
    ct = (h.get("content-type") or "").split(";")[0]
    check_eq(ct, "application/json", "/healthz is JSON")
    d = json.loads(body)
    check_eq(d.get("status"), "ok", 'status "ok"')
    brokers = d.get("brokers")
    check(isinstance(brokers, dict) and sorted(brokers) == ["away", "home"],
          "brokers lists home and away", d)
    for name in ("home", "away"):
        b = brokers[name]
        check_eq((b.get("type"), b.get("state")), ("mqtt", "connected"),
                 "%s: type mqtt, state connected" % name)


def t_metrics():
    """/metrics: Prometheus text with every documented metric; counters
    move with deliveries, publishes and connections"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    st, h, body = gate.http("GET", "/metrics")
    check_eq(st, 200, "/metrics 200")
    check((h.get("content-type") or "").startswith("text/plain"),
          "text/plain content type", h.get("content-type"))
    text = body.decode()
    for name in METRIC_NAMES:
        check("\n# TYPE %s " % name in "\n" + text,
              "%s is present with a TYPE line" % name)
    m0 = gate.metrics()
    check_eq(m0.get('mqgate_broker_up{broker="home",type="mqtt"}'), 1.0,
             "mqgate_broker_up{broker=home} is 1")
    c = gate.ws()
    c.subscribe(["it/mx/#", "it/my"])
    wait_for("clients{ws} = 1", lambda: gate.metric(
        "mqgate_clients", protocol="ws") == 1)
    check_eq(gate.metric("mqgate_subscriptions"), 2.0,
             "mqgate_subscriptions counts 2 filters")
    out0 = gate.metric("mqgate_messages_out_total", protocol="ws")
    bytes0 = gate.metric("mqgate_bytes_out_total", protocol="ws")
    in0 = gate.metric("mqgate_messages_in_total", broker="home")
    for i in range(3):
        mosq.pub("it/mx/a", str(i))
    c.messages(3, topic="it/mx/a")
    wait_for("messages_out{ws} +3", lambda: gate.metric(
        "mqgate_messages_out_total", protocol="ws") == out0 + 3)
    say("  ok   mqgate_messages_out_total{protocol=ws} moved by 3")
    check(gate.metric("mqgate_bytes_out_total", protocol="ws") > bytes0,
          "mqgate_bytes_out_total{protocol=ws} grew")
    check(gate.metric("mqgate_messages_in_total", broker="home") >= in0 + 3,
          "mqgate_messages_in_total{broker=home} grew by 3")
    check(gate.metric("mqgate_cache_topics") >= 1,
          "mqgate_cache_topics counts the cached topic")
    check(gate.metric("mqgate_history_messages") >= 3,
          "mqgate_history_messages holds the messages")
    ok0 = gate.metric("mqgate_publishes_total", result="ok")
    st, body = post_json(gate, "/publish", {"topic": "it/my",
                                            "payload": 1})
    check_eq(st, 200, "a POST /publish")
    check_eq(gate.metric("mqgate_publishes_total", result="ok"), ok0 + 1,
             "mqgate_publishes_total{result=ok} moved by 1")
    err0 = gate.metric("mqgate_error_replies_total")
    c.send_text("not json")
    c.expect(op="error")
    check(gate.metric("mqgate_error_replies_total") >= err0 + 1,
          "mqgate_error_replies_total moved")
    s = gate.sse(["it/mx/#"], query={"snapshot": "0"})
    wait_for("clients{sse} = 1", lambda: gate.metric(
        "mqgate_clients", protocol="sse") == 1)
    sse0 = gate.metric("mqgate_messages_out_total", protocol="sse")
    mosq.pub("it/mx/b", "1")
    s.events(1)
    wait_for("messages_out{sse} +1", lambda: gate.metric(
        "mqgate_messages_out_total", protocol="sse") == sse0 + 1)
    say("  ok   mqgate_messages_out_total{protocol=sse} moved by 1")
    conn = gate.metric("mqgate_connections_total", protocol="ws")
    c.close()
    wait_for("clients{ws} = 0", lambda: gate.metric(
        "mqgate_clients", protocol="ws") == 0)
    say("  ok   mqgate_clients{protocol=ws} back to 0 after a close")
    check(conn >= 1, "mqgate_connections_total{protocol=ws} counted it",
          conn)


def t_static_files():
    """static files from the docroot, 404 for a missing one, never a
    file outside it"""
    tmp = TempDir()
    tmp.write("secret.txt", "TOPSECRET-3141\n")
    tmp.write("www/index.html", "<!doctype html><h1>it index</h1>\n")
    tmp.write("www/a.txt", "alpha\n")
    tmp.write("www/sub/b.css", "body { color: red }\n")
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"docroot": os.path.join(tmp.path, "www")})
    st, h, body = gate.http("GET", "/")
    check_eq((st, body), (200, b"<!doctype html><h1>it index</h1>\n"),
             "GET / serves index.html")
    check((h.get("content-type") or "").startswith("text/html"),
          "index.html is text/html", h.get("content-type"))
    st, h, body = gate.http("GET", "/a.txt")
    check_eq((st, body), (200, b"alpha\n"), "GET /a.txt")
    st, h, body = gate.http("GET", "/sub/b.css")
    check_eq((st, body), (200, b"body { color: red }\n"), "GET /sub/b.css")
    check((h.get("content-type") or "").startswith("text/css"),
          "b.css is text/css", h.get("content-type"))
    st, _, _ = gate.http("GET", "/missing.txt")
    check_eq(st, 404, "a missing file -> 404")
    for path in ("/../secret.txt", "/sub/../../secret.txt",
                 "/%2e%2e/secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                 "/..%2fsecret.txt", "/.%2e/secret.txt", "//../secret.txt",
                 "/sub/..%5c..%5csecret.txt", "/%2e%2e%2fsecret.txt",
                 "/./../secret.txt", "/a.txt/../../secret.txt"):
        try:
            st, _, body = gate.http("GET", path)
        except (OSError, ValueError) as e:
            st, body = None, b""
            say("  (%s: connection ended: %s)" % (path, e))
        check(b"TOPSECRET" not in body and st != 200,
              "GET %s does not escape the docroot (%s)" % (path, st),
              (st, body[:100]))
    check(gate.running(), "mqgate is still running")


def t_broken_http():
    """garbage, malformed and huge HTTP requests never disturb a
    connected WebSocket client"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    c = gate.ws()
    c.subscribe("it/bh/#")
    held = socket.create_connection(("127.0.0.1", gate.port), 5)
    held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    n = [0]

    def still_served(after):
        n[0] += 1
        mosq.pub("it/bh/x", str(n[0]))
        try:
            c.expect(op="message", topic="it/bh/x", payload=n[0])
            c.ping()
        except AssertionError as e:
            raise AssertionError("after %s the WebSocket client is no "
                                 "longer served: %s" % (after, e)) from None
        check(gate.running(), "after %s: client served, daemon up" % after)

    garbage = [
        ("a garbage request line", b"GARBAGE\r\n\r\n"),
        ("a bare method", b"GET\r\n\r\n"),
        ("an unknown method", b"FROB / HTTP/1.1\r\nHost: x\r\n\r\n"),
        ("a header without colon",
         b"GET / HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n"),
        ("a huge header", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
         b"a" * 200000 + b"\r\n\r\n"),
        ("thousands of headers", b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
         b"".join(b"X-H%d: v\r\n" % i for i in range(3000)) + b"\r\n"),
        ("a 100 KB URL", b"GET /" + b"p" * 100000 + b" HTTP/1.1\r\n\r\n"),
        ("binary junk", bytes(range(256)) * 16),
        ("a TLS hello on the plain port",
         bytes.fromhex("16030100a5010000a10303") + b"\x00" * 200),
        ("an HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
        ("a bad WebSocket upgrade",
         b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
         b"Connection: Upgrade\r\nSec-WebSocket-Version: 99\r\n\r\n"),
        ("a negative Content-Length",
         b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ("a request cut short", b"GET /heal"),
    ]
    for what, raw in garbage:
        try:
            with socket.create_connection(("127.0.0.1", gate.port), 5) as s:
                s.sendall(raw)
                s.settimeout(2)
                try:
                    while s.recv(65536):
                        pass
                except (socket.timeout, ConnectionResetError):
                    pass
        except (BrokenPipeError, ConnectionResetError):
            pass
        still_served(what)
    st, _, _ = gate.http("GET", "/healthz")
    check_eq(st, 200, "a normal request still works")
    held.close()
    still_served("a half-sent request held open")


def t_keepalive_publishes():
    """several POST /publish on one keep-alive connection, as browsers
    send them: a deferred ok, an immediate error, another ok, /healthz"""
    import http.client
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    sub = mosq.client()
    sub.subscribe("it/k/#")
    conn = http.client.HTTPConnection("127.0.0.1", gate.port, timeout=10)
    sock = None
    for n, (body, want) in enumerate((
            ({"topic": "it/k/a", "payload": "one", "qos": 1}, 200),
            ({"topic": "it/#", "payload": "x"}, 400),
            ({"topic": "it/k/b", "payload": "two", "qos": 0}, 200),
            ({"topic": "it/k/c", "payload": "three", "qos": 1}, 200))):
        conn.request("POST", "/publish", body=json.dumps(body),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        check_eq(resp.status, want, "request %d on the same connection: %d"
                 % (n + 1, want))
        if sock is None:
            sock = conn.sock
        check(conn.sock is sock, "the connection was kept (request %d)"
              % (n + 1))
        if want == 400:
            check_eq(json.loads(data)["error"], "bad_request",
                     "the error body names bad_request")
    conn.request("GET", "/healthz")
    check_eq(conn.getresponse().status, 200, "then GET /healthz on it too")
    got = [sub.recv().payload for _ in range(3)]
    check_eq(got, [b"one", b"two", b"three"], "the broker got all three")
    check(gate.running(), "mqgate is still running")


def t_publish_rate():
    """POST /publish is rate limited per client address: 429
    rate_limited over the burst (the refill itself is unit-tested in
    test_ratelimit; here a slow refill keeps the check exact even under
    valgrind)"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"publish_rate": "3/m", "publish_burst": "3"})
    body = json.dumps({"topic": "it/r/x", "payload": 1})
    got = [http_request(gate.port, "POST", "/publish", body=body,
                        timeout=30)[0] for _ in range(5)]
    check_eq(got, [200, 200, 200, 429, 429],
             "the burst of 3 passes, then 429")
    st, _, b = http_request(gate.port, "POST", "/publish", body=body,
                            timeout=30)
    check_eq((st, json.loads(b)["error"]), (429, "rate_limited"),
             "the body says rate_limited")
    check(gate.metric("mqgate_publishes_total", result="rate_limited") >= 3,
          "counted in mqgate_publishes_total{result=rate_limited}")


def t_publish_rate_refill():
    """POST /publish: a token comes back at the configured rate (not
    under valgrind, where one request can take longer than the refill)"""
    if mqgatetest.VALGRIND:
        say("  (not run under valgrind)")
        return
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"publish_rate": "1/s", "publish_burst": "1"})
    body = json.dumps({"topic": "it/r/y", "payload": 1})
    got = [http_request(gate.port, "POST", "/publish", body=body)[0]
           for _ in range(2)]
    check_eq(got, [200, 429], "a burst of 1: the second publish is 429")
    time.sleep(1.2)
    check_eq(http_request(gate.port, "POST", "/publish", body=body)[0], 200,
             "a token is back after a second")


if __name__ == "__main__":
    run([t_publish, t_publish_broker_down, t_cors_and_origin, t_healthz,
         t_metrics, t_static_files, t_broken_http, t_keepalive_publishes,
         t_publish_rate, t_publish_rate_refill])
