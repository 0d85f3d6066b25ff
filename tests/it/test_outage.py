#!/usr/bin/env python3
"""test_outage.py - the broker goes away and comes back: /healthz turns
503 (degraded, state connecting/down) within 5 s, WebSocket and SSE
clients stay connected, publishes answer `unavailable`; when mosquitto
is back on the same port, /healthz is 200 again and messages flow to the
same subscribed clients without any client action. Also a broker that
is not there when mqgate starts."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, check, check_eq, run,  # noqa: E402
                        say, wait_for)

RECOVER_S = 30   # reconnect backoff of the plugin included


def degraded(gate):
    st, body = gate.healthz()
    state = (body.get("brokers") or {}).get("home", {}).get("state")
    return st == 503 and body.get("status") == "degraded" and \
        state in ("connecting", "down") and (st, body)


def outage(stop):
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    a = gate.ws()
    a.subscribe("it/o/#")
    b = gate.ws()
    b.subscribe("it/o/b")
    s = gate.sse(["it/o/#"], query={"snapshot": "0"})
    devices = mosq.sub("it/o/#")
    mosq.pub("it/o/b", "1")
    for c in (a, b):
        c.expect(op="message", topic="it/o/b", payload=1)
    check_eq(s.events(1)[0].json()["payload"], 1, "before: SSE delivers")
    devices.recv(topic="it/o/b")

    t0 = time.monotonic()
    stop(mosq)
    st, body = wait_for("/healthz 503 degraded, state connecting/down",
                        lambda: degraded(gate), timeout=5)
    say("  ok   /healthz %d %s after %.1fs" % (st, body,
                                              time.monotonic() - t0))
    a.ping()
    b.ping()
    say("  ok   both WebSocket clients still connected")
    check(not s.wait_eof(0.5), "the SSE stream is still open")
    for qos in (0, 1):
        r = a.publish("it/o/x", "lost", qos=qos)
        check_eq((r["op"], r.get("code")), ("error", "unavailable"),
                 "publish qos %d while the broker is down -> unavailable"
                 % qos)
    st, _, body = gate.http("POST", "/publish",
                            body='{"topic":"it/o/x","payload":1}')
    check_eq(st, 503, "POST /publish while the broker is down -> 503")
    check(gate.metric("mqgate_broker_up", broker="home", type="mqtt") == 0,
          "mqgate_broker_up is 0")

    mosq.start()
    t1 = time.monotonic()
    wait_for("/healthz 200 after the broker is back",
             lambda: gate.healthz()[0] == 200, timeout=RECOVER_S)
    say("  ok   /healthz 200 %.1fs after mosquitto came back" %
        (time.monotonic() - t1))
    st, body = gate.healthz()
    check_eq((body.get("status"), body["brokers"]["home"]["state"]),
             ("ok", "connected"), 'status "ok", state "connected"')
    # The daemon must have subscribed upstream again by itself. Probes
    # carry 101, 102, ... until one arrives.
    probe = [100]

    def send_probe():
        probe[0] += 1
        mosq.pub("it/o/b", str(probe[0]))
        return a.frames(timeout=0.5, op="message", topic="it/o/b")

    wait_for("a message reaches the old subscribers", send_probe,
             timeout=10, step=0)
    b.expect(op="message", topic="it/o/b", pred=lambda f: f["payload"] > 100)
    ev = s.events(1, timeout=5)[0].json()
    check(ev["topic"] == "it/o/b" and ev["payload"] > 100,
          "the same SSE stream delivers again", ev)
    say("  ok   the same WebSocket and SSE clients receive again")
    mosq.pub("it/o/b", "3")
    for c in (a, b):
        m = c.expect(op="message", topic="it/o/b", payload=3)
        check_eq(m["payload"], 3, "a later message arrives")
    rest = [e.json()["payload"] for e in s.events(1)]
    while rest[-1] != 3 and rest[-1] > 100:
        rest += [e.json()["payload"] for e in s.events(1)]
    check_eq(rest[-1], 3, "SSE: the later message too")
    r = a.publish("it/o/y", "back", qos=1)
    check_eq(r["op"], "ok", "publishing works again")
    devices = mosq.sub("it/o/#")
    r = a.publish("it/o/z", "seen", qos=1)
    check_eq(r["op"], "ok", "a second publish works")
    check_eq(devices.recv(topic="it/o/z").payload, b"seen",
             "and reaches the broker")
    check(gate.metric("mqgate_broker_connects_total", broker="home") >= 2,
          "mqgate_broker_connects_total counts the reconnect")


def t_broker_killed():
    """mosquitto killed (SIGKILL) and started again on the same port"""
    outage(lambda m: m.kill())


def t_broker_stopped():
    """mosquitto stopped cleanly (SIGTERM) and started again"""
    outage(lambda m: m.stop())


def t_broker_late():
    """mosquitto not running when mqgate starts: mqgate serves, 503,
    then connects when the broker appears"""
    mosq = Mosquitto()
    mosq.stop()
    gate = Mqgate(mosq, wait="listening")
    st, body = gate.healthz()
    check_eq(st, 503, "/healthz 503 without a broker")
    c = gate.ws()
    c.subscribe("it/l/#")
    mosq.start()
    wait_for("/healthz 200", lambda: gate.healthz()[0] == 200,
             timeout=RECOVER_S)
    wait_for("a message reaches the early subscriber", lambda: (
        mosq.pub("it/l/a", "1") or
        c.frames(timeout=0.5, op="message", topic="it/l/a")),
        timeout=10, step=0)
    say("  ok   the client subscribed before the broker came gets messages")


if __name__ == "__main__":
    run([t_broker_killed, t_broker_stopped, t_broker_late])
