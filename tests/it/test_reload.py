#!/usr/bin/env python3
"""test_reload.py - SIGHUP with changed broker sections (issue: reload
without dropping clients): a broker added, then the first one removed,
then a changed broker URL. Connected WebSocket and SSE clients stay
connected throughout, receive from the new brokers with no action of
their own, and /healthz follows the broker list. A reload whose new
broker cannot start keeps the running ones."""

import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, check, check_eq, run, say,  # noqa
                        wait_for)


def brokers_in_health(gate):
    st, body = gate.healthz()
    return st, sorted(body.get("brokers", {}))


def reload_with(gate, brokers):
    gate.write_conf(brokers=brokers)
    before = len(gate.log())
    gate.signal(signal.SIGHUP)
    wait_for("the reload is logged",
             lambda: "reloaded" in gate.log()[before:], timeout=10)


def t_add_remove_change():
    """brokers added, removed and changed by SIGHUP; clients stay"""
    a, b = Mosquitto(), Mosquitto()
    gate = Mqgate(brokers=[("a", {"type": "mqtt", "url": a.url,
                                   "mount": "a/", "topic": "# both 1"})])
    ws = gate.ws()
    ws.subscribe("#")
    sse = gate.sse(["#"], query={"snapshot": "0"})
    a.pub("x", "from-a-1")
    ws.expect(op="message", topic="a/x", payload="from-a-1")

    # 1. add broker b
    reload_with(gate, [("a", {"type": "mqtt", "url": a.url, "mount": "a/",
                              "topic": "# both 1"}),
                       ("b", {"type": "mqtt", "url": b.url, "mount": "b/",
                              "topic": "# both 1"})])
    wait_for("both brokers connected",
             lambda: brokers_in_health(gate) == (200, ["a", "b"]), timeout=10)
    say("  ok   broker b added: /healthz 200 with a and b")
    b.pub("y", "from-b-1")
    ws.expect(op="message", topic="b/y", payload="from-b-1")
    a.pub("x", "from-a-2")
    ws.expect(op="message", topic="a/x", payload="from-a-2")
    r = ws.publish("b/cmd", "to-b", qos=1)
    check_eq(r["op"], "ok", "a publish routes to the added broker")

    # 2. remove broker a
    reload_with(gate, [("b", {"type": "mqtt", "url": b.url, "mount": "b/",
                              "topic": "# both 1"})])
    wait_for("only b left",
             lambda: brokers_in_health(gate) == (200, ["b"]), timeout=10)
    say("  ok   broker a removed: /healthz lists only b")
    r = ws.publish("a/cmd", "x")
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "a publish to the removed mount is forbidden")
    b.pub("y", "from-b-2")
    ws.expect(op="message", topic="b/y", payload="from-b-2")

    # 3. change b's URL to point at a
    reload_with(gate, [("b", {"type": "mqtt", "url": a.url, "mount": "b/",
                              "topic": "# both 1"})])
    wait_for("b connected again",
             lambda: brokers_in_health(gate) == (200, ["b"]), timeout=10)
    a.pub("z", "from-a-as-b")
    ws.expect(op="message", topic="b/z", payload="from-a-as-b")
    say("  ok   broker b now reads from the other mosquitto")

    ws.ping()
    seen = []
    wait_for("b/z on the SSE stream opened before the reloads",
             lambda: seen.extend(e.json()["topic"] for e in sse.events(1))
             or "b/z" in seen, timeout=10, step=0)
    check(seen[:1] == ["a/x"] and "b/y" in seen,
          "the SSE stream saw both brokers", seen)
    check_eq(gate.metric("mqgate_clients", protocol="ws"), 1.0,
             "the WebSocket client stayed connected")


def t_bad_new_broker():
    """a reload whose new broker cannot be created keeps the running
    brokers and clients"""
    a = Mosquitto()
    gate = Mqgate(brokers=[("a", {"type": "mqtt", "url": a.url,
                                   "topic": "# both 1"})])
    ws = gate.ws()
    ws.subscribe("#")
    gate.write_conf(brokers=[("a", {"type": "mqtt", "url": a.url,
                                    "topic": "# both 1"}),
                             ("c", {"type": "nosuchplugin",
                                    "mount": "c/", "topic": "# in"})])
    before = len(gate.log())
    gate.signal(signal.SIGHUP)
    wait_for("the failed reload is logged",
             lambda: "running configuration stays" in gate.log()[before:],
             timeout=10)
    check("%s:" % gate.conf in gate.log()[before:],
          "the log names the file and line")
    a.pub("x", "still-here")
    ws.expect(op="message", topic="x", payload="still-here")
    check_eq(brokers_in_health(gate), (200, ["a"]),
             "the running broker stays")


if __name__ == "__main__":
    run([t_add_remove_change, t_bad_new_broker])
