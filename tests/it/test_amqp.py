#!/usr/bin/env python3
"""test_amqp.py - the AMQP backend through the daemon, against a private
RabbitMQ node next to a private mosquitto: an MQTT broker (mount "") and
an AMQP broker (mount plant/, `topic = line1/# both 1`) side by side.
WebSocket and SSE subscribers get AMQP messages under the mount with the
routing key mapped to a topic; `#` sees both brokers; a WebSocket QoS 1
publish reaches an AMQP queue as exact bytes and an unroutable one gets an
error; a RabbitMQ restart shows in /healthz (503, then 200) and delivery
resumes; bad AMQP settings fail `mqgate -t` with FILE:LINE and 78.

One node serves every test (it takes seconds to boot); the restart test
comes last."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (MQGATE_BIN, PLUGIN_DIR, Mosquitto, Mqgate,  # noqa
                        RabbitMQ, b64, check, check_eq, conf_text, run, say,
                        unb64, wait_for)

_rmq = None


def rabbit():
    """The script's one RabbitMQ node."""
    global _rmq
    if _rmq is None:
        say("  (starting a private RabbitMQ node)")
        t0 = time.monotonic()
        _rmq = RabbitMQ(shared=True)
        say("  (node %s on port %d after %.1fs)" % (
            _rmq.node, _rmq.port, time.monotonic() - t0))
    return _rmq


def brokers(mosq, rmq, **amqp):
    # line1/# comes back in, so nothing below it is unroutable: cmd/# is
    # out only, for publishes nothing is bound for.
    b = {"type": "amqp", "url": rmq.url, "mount": "plant/",
         "topic": ["line1/# both 1", "cmd/# out 1"]}
    b.update(amqp)
    return [("home", {"type": "mqtt", "url": mosq.url, "topic": "# both 1"}),
            ("plant", b)]


def setup():
    rmq = rabbit()
    mosq = Mosquitto()
    gate = Mqgate(mosq, brokers=brokers(mosq, rmq), wait="up", port=None)
    return rmq, mosq, gate


def t_ws_sse_receive():
    """a WS and an SSE subscriber of plant/line1/+/temp get an AMQP
    message published with routing key line1.press.temp, under the mount,
    with the payload as JSON; binary bytes come as base64"""
    rmq, mosq, gate = setup()
    ws = gate.ws()
    ws.subscribe("plant/line1/+/temp")
    sse = gate.sse(["plant/line1/+/temp"])
    check_eq(sse.status, 200, "SSE stream opened")
    dev = rmq.client()
    dev.publish("line1.press.temp", b"21.5", timestamp=int(time.time()))
    m = ws.messages(1, topic="plant/line1/press/temp", timeout=10)[0]
    check_eq(m["payload"], 21.5, "WS: payload 21.5 as a JSON number")
    check_eq(m["retain"], False, "WS: AMQP messages are never retained")
    ev = sse.events(1, timeout=10)[0].json()
    check_eq((ev["topic"], ev["payload"]), ("plant/line1/press/temp", 21.5),
             "SSE: the same message")
    raw = bytes([0, 0xff, 0x80, 0x41, 0x0a])
    dev.publish("line1.raw.temp", raw)
    m = ws.messages(1, topic="plant/line1/raw/temp", timeout=10)[0]
    check_eq((m.get("encoding"), unb64(m["payload"])), ("base64", raw),
             "WS: binary payload as base64, exact bytes")
    ev = sse.events(1, timeout=10)[0].json()
    check_eq(unb64(ev["payload"]), raw, "SSE: binary payload exact bytes")
    # Outside the filter: not delivered to either.
    dev.publish("line1.press.hum", b"40")
    dev.publish("line1.end.temp", b"1")
    ws.messages(1, topic="plant/line1/end/temp", timeout=10)
    check_eq(ws.frames(0.3, op="message", topic="plant/line1/press/hum"), [],
             "WS: line1.press.hum is outside plant/line1/+/temp")
    ev = sse.events(1, timeout=10)[0].json()
    check_eq(ev["topic"], "plant/line1/end/temp",
             "SSE: the next event is line1.end.temp, not line1.press.hum")
    sse.close()
    ws.close()
    dev.close()


def t_hash_sees_both():
    """one subscription of # sees the MQTT broker's and the AMQP broker's
    messages"""
    rmq, mosq, gate = setup()
    ws = gate.ws()
    ws.subscribe("#")
    dev = rmq.client()
    mosq.pub("home/kitchen/temp", "20")
    dev.publish("line1.press.temp", b"\"hot\"")
    got = {}
    for _ in range(2):
        m = ws.expect(op="message", timeout=10)
        got[m["topic"]] = m["payload"]
    check_eq(got, {"home/kitchen/temp": 20, "plant/line1/press/temp": "hot"},
             "# got one message from each broker")
    dev.close()
    ws.close()


def t_publish_qos1():
    """a WS QoS 1 publish to plant/line1/x/cmd reaches a queue bound to
    line1.x.cmd with exact bytes, answered ok after the broker's confirm;
    HTTP POST /publish too"""
    rmq, mosq, gate = setup()
    dev = rmq.client()
    q = dev.queue("line1.x.cmd")
    ws = gate.ws()
    r = ws.publish("plant/line1/x/cmd", {"on": True, "level": 3}, qos=1)
    check_eq(r["op"], "ok", "QoS 1 publish answered ok")
    got = dev.get(q, timeout=10)
    check_eq(got.routing_key, "line1.x.cmd", "routing key line1.x.cmd")
    check_eq(got.body, b'{"on":true,"level":3}',
             "body is the compact JSON text")
    check_eq(got.properties.get("delivery_mode"), 2, "QoS 1 is persistent")
    raw = bytes(range(256))
    r = ws.publish("plant/line1/x/cmd", b64(raw), encoding="base64", qos=1)
    check_eq(r["op"], "ok", "base64 QoS 1 publish answered ok")
    check_eq(dev.get(q, timeout=10).body, raw, "all 256 byte values exact")
    r = ws.publish("plant/line1/x/cmd", "text ü", qos=0)
    check_eq(r["op"], "ok", "QoS 0 publish answered ok")
    check_eq(dev.get(q, timeout=10).body, "text ü".encode(),
             "a JSON string goes out as its UTF-8 bytes")
    st, _, body = gate.http("POST", "/publish", headers={
        "Content-Type": "application/json"}, body=json.dumps(
            {"topic": "plant/line1/x/cmd", "payload": "via-http", "qos": 1}))
    check_eq(st, 200, "POST /publish QoS 1: 200")
    check_eq(dev.get(q, timeout=10).body, b"via-http", "HTTP publish body")
    ws.close()
    dev.close()


def t_publish_unroutable():
    """a QoS 1 publish nothing is bound for gets an error reply naming the
    routing key; QoS 0 is fire-and-forget; once a queue is bound, the same
    publish is ok"""
    rmq, mosq, gate = setup()
    ws = gate.ws()
    r = ws.publish("plant/cmd/nobody/x", "x", qos=1)
    check_eq(r["op"], "error", "unroutable QoS 1 publish answered error")
    check("no queue is bound for routing key cmd.nobody.x" in
          r.get("message", ""), "the error names the routing key", r)
    say("  ..   (code %r)" % r.get("code"))
    r = ws.publish("plant/cmd/nobody/x", "x", qos=0)
    check_eq(r["op"], "ok", "unroutable QoS 0 publish answered ok")
    dev = rmq.client()
    q = dev.queue("cmd.*.x")
    r = ws.publish("plant/cmd/nobody/x", "now", qos=1)
    check_eq(r["op"], "ok", "bound now: QoS 1 publish answered ok")
    check_eq(dev.get(q, timeout=10).body, b"now", "and it arrived")
    dev.close()
    r = ws.publish("plant/line2/x", "x", qos=1)
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "outside the topic line: forbidden")
    ws.close()


def _bad_conf(rmq, mosq, key, value):
    """(exit status, stderr, config path, line of key) of mqgate -t."""
    d = tempfile.mkdtemp(prefix="mqgate-it-amqpconf-")
    path = os.path.join(d, "mqgate.conf")
    secs = [("server", [("listen", "127.0.0.1:1"),
                        ("plugin_dir", PLUGIN_DIR)]),
            ("auth", [("anonymous_subscribe", "#")])]
    for name, items in brokers(mosq, rmq, **{key: value}):
        secs.append(("broker " + name, list(items.items())))
    text = conf_text(secs)
    with open(path, "w") as f:
        f.write(text)
    lines = text.split("\n")
    start = lines.index("[broker plant]")
    line = next(i + 1 for i, s in enumerate(lines)
                if i > start and s.startswith(key + " = "))
    r = subprocess.run([MQGATE_BIN, "-t", "-c", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    os.unlink(path)
    os.rmdir(d)
    return r.returncode, r.stderr.decode("utf-8", "replace"), path, line


def t_bad_config():
    """bad AMQP settings: `mqgate -t` prints FILE:LINE: and exits 78"""
    rmq = rabbit()
    mosq = Mosquitto()
    for key, value, what in (("exchange", "bad/exchange", "exchange"),
                             ("exchange", "", "exchange"),
                             ("prefetch", "0", "prefetch"),
                             ("url", "http://127.0.0.1/", "url")):
        st, err, path, line = _bad_conf(rmq, mosq, key, value)
        check_eq(st, 78, "%s = %r: mqgate -t exits 78" % (key, value))
        check("%s:%d:" % (path, line) in err,
              "%s = %r: the error names %s:%d" % (key, value, path, line),
              err)
    st, err, path, line = _bad_conf(rmq, mosq, "prefetch", "500")
    check_eq(st, 0, "a good AMQP section passes mqgate -t (%s)" % err.strip())


def while_pinging(ws, fn):
    """Runs fn in a thread while ws keeps answering the server's pings."""
    err = []

    def body():
        try:
            fn()
        except BaseException as e:  # handed to the caller below
            err.append(e)
    t = threading.Thread(target=body, daemon=True)
    t.start()
    while t.is_alive():
        ws.ping()
        t.join(0.5)
    if err:
        raise err[0]


def t_restart():
    """a RabbitMQ restart: /healthz 503 while it is down, 200 once the
    plugin reconnected, and delivery resumes for a subscriber that stayed
    connected"""
    rmq, mosq, gate = setup()
    ws = gate.ws()
    ws.subscribe("plant/line1/#")
    st, h = gate.healthz()
    check_eq((st, h["brokers"]["plant"]["state"]), (200, "connected"),
             "healthz 200 with plant connected")
    # Stopping a node can take many seconds on a loaded machine: the
    # subscriber keeps answering pings meanwhile, as a browser would.
    while_pinging(ws, rmq.stop)

    # The subscriber keeps answering the server's pings meanwhile, as a
    # browser does (a client that stops reading gets disconnected).
    def degraded():
        ws.ping()
        st, h = gate.healthz()
        return (st, h) if st == 503 else None

    def healthy():
        ws.ping()
        return gate.healthz()[0] == 200
    st, h = wait_for("healthz 503", degraded, timeout=30)
    check(h["brokers"]["plant"]["state"] in ("down", "connecting"),
          "plant is down after the broker stopped", h)
    check_eq(h["brokers"]["home"]["state"], "connected",
             "the MQTT broker stays connected")
    r = ws.publish("plant/line1/x/cmd", "x", qos=1)
    check_eq((r["op"], r.get("code")), ("error", "unavailable"),
             "a publish while RabbitMQ is down: unavailable")
    while_pinging(ws, rmq.start)
    wait_for("healthz 200 after the restart", healthy, timeout=120,
             step=0.5)
    dev = rmq.client()
    dev.publish("line1.after.restart", b"42")
    m = ws.messages(1, topic="plant/line1/after/restart", timeout=10)[0]
    check_eq(m["payload"], 42, "delivery resumed after the restart")
    q = dev.queue("line1.x.cmd")
    r = ws.publish("plant/line1/x/cmd", "again", qos=1)
    check_eq(r["op"], "ok", "publishing works again")
    check_eq(dev.get(q, timeout=10).body, b"again", "and arrives")
    dev.close()
    ws.close()


if __name__ == "__main__":
    run([t_ws_sse_receive, t_hash_sees_both, t_publish_qos1,
         t_publish_unroutable, t_bad_config, t_restart])
