#!/usr/bin/env python3
"""test_drain.py - signals (CONFIG.md): SIGTERM and SIGINT drain (WebSocket
clients get close 1001, SSE streams end, exit 0 within a few seconds);
SIGHUP reloads a changed valid config without dropping clients, and a
broken one is logged as FILE:LINE: while the old config stays in force."""

import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, check, check_eq, conf_text,  # noqa
                        http_request, run, say, wait_for)


def check_exit(gate, t0, name, limit=7.0):
    """The daemon exits 0 within limit seconds of the signal at t0."""
    try:
        status = gate.proc.wait(max(limit - (time.monotonic() - t0), 0.1))
    except subprocess.TimeoutExpired:
        raise AssertionError("%s: mqgate still running %.0f s after the "
                             "signal" % (name, limit)) from None
    took = time.monotonic() - t0
    check_eq(status, 0, "%s: mqgate exits 0" % name)
    say("  ok   %s: exited after %.1fs" % (name, took))


def drain(sig, name):
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    ws = [gate.ws() for _ in range(3)]
    for c in ws:
        c.subscribe("it/d/#")
    sse = [gate.sse(["it/d/#"]) for _ in range(2)]
    mosq.pub("it/d/x", "1")
    for c in ws:
        c.expect(op="message", topic="it/d/x")
    for s in sse:
        s.events(1)
    t0 = time.monotonic()
    gate.signal(sig)
    for i, c in enumerate(ws):
        closed = c.wait_closed(5)
        check_eq(closed.code, 1001, "%s: WebSocket %d closed with 1001" %
                 (name, i))
    for i, s in enumerate(sse):
        check(s.wait_eof(5), "%s: SSE stream %d ended" % (name, i))
    check_exit(gate, t0, name)
    try:
        http_request(gate.port, "GET", "/healthz", timeout=1)
        refused = False
    except OSError:
        refused = True
    check(refused, "%s: the port is closed afterwards" % name)
    log = gate.log()
    check("lws_mux_mark_immortal" not in log,
          "the log has no lws_mux_mark_immortal noise")


def t_sigterm():
    """SIGTERM: close 1001, SSE ends, exit 0"""
    drain(signal.SIGTERM, "SIGTERM")


def t_sigint():
    """SIGINT drains like SIGTERM"""
    drain(signal.SIGINT, "SIGINT")


def t_sigterm_idle():
    """SIGTERM with no client: exit 0 at once"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    t0 = time.monotonic()
    status = gate.stop(timeout=8)
    check_eq(status, 0, "idle daemon exits 0 on SIGTERM")
    check(time.monotonic() - t0 < 3, "within 3 s",
          time.monotonic() - t0)


def t_sigterm_unresponsive():
    """SIGTERM with a WebSocket client that never answers the close:
    the drain ends anyway within a few seconds, exit 0"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    c = gate.ws()
    c.subscribe("it/u/#")
    t0 = time.monotonic()
    gate.signal(signal.SIGTERM)
    check_exit(gate, t0, "SIGTERM with an unresponsive client", limit=8.0)


def auth_sections(gate, publish, extra_auth=None):
    auth = {"anonymous_publish": publish}
    auth.update(extra_auth or {})
    return gate.sections(auth=auth)


def t_sighup_reload():
    """SIGHUP with a changed valid config takes effect; connected clients
    stay and are served"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, auth={"anonymous_publish": "it/a/#"})
    c = gate.ws()
    c.subscribe("it/#")
    s = gate.sse(["it/#"], query={"snapshot": "0"})
    r = c.publish("it/b/x", 1)
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "before: it/b/x is forbidden")
    r = c.publish("it/a/x", 1)
    check_eq(r["op"], "ok", "before: it/a/x is allowed")
    s.events(1)
    with open(gate.conf, "w") as f:
        f.write(conf_text(auth_sections(gate, "it/b/#")))
    gate.signal(signal.SIGHUP)
    wait_for("the new anonymous_publish in force",
             lambda: c.publish("it/b/x", 2)["op"] == "ok", timeout=5)
    say("  ok   after SIGHUP: it/b/x is allowed")
    r = c.publish("it/a/x", 3)
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "after SIGHUP: it/a/x is forbidden")
    mosq.pub("it/z", "after-reload")
    c.expect(op="message", topic="it/z", payload="after-reload")
    wait_for("it/z on the SSE stream open across the reload",
             lambda: any(e.json()["topic"] == "it/z" for e in s.events(1)),
             timeout=5, step=0)
    say("  ok   the SSE stream open across the reload still delivers")
    c.ping()
    check(gate.running(), "the WebSocket client stayed connected")


def t_sighup_broken():
    """SIGHUP with a broken config: FILE:LINE: in the log, the old config
    stays, clients are still served; a later good reload works"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, auth={"anonymous_publish": "it/a/#"})
    c = gate.ws()
    c.subscribe("it/#")
    for n, (bad_key, bad_value) in enumerate((("nonsense_key", "3"),
                                              ("max_message", "12Q"))):
        text = conf_text(auth_sections(gate, "it/c/#"))
        lines = text.split("\n")
        at = lines.index("[auth]") + 1
        lines.insert(at + 1, "%s = %s" % (bad_key, bad_value))
        if bad_key == "max_message":   # a server key: put it there
            del lines[at + 1]
            at = lines.index("[server]") + 1
            lines.insert(at + 1, "%s = %s" % (bad_key, bad_value))
        lineno = at + 2
        with open(gate.conf, "w") as f:
            f.write("\n".join(lines))
        mark = "%s:%d:" % (gate.conf, lineno)
        before = len(gate.log())
        gate.signal(signal.SIGHUP)
        wait_for("%s in the log" % mark,
                 lambda: mark in gate.log()[before:], timeout=5)
        say("  ok   broken config %d (%s = %s): the log names %s" % (
            n, bad_key, bad_value, mark))
        check(gate.running(), "mqgate keeps running")
        r = c.publish("it/a/x", n)
        check_eq(r["op"], "ok", "the old config stays: it/a/x allowed")
        r = c.publish("it/c/x", n)
        check_eq((r["op"], r.get("code")), ("error", "forbidden"),
                 "nothing of the broken config applies: it/c/x forbidden")
        mosq.pub("it/z", "still-%d" % n)
        c.expect(op="message", topic="it/z", payload="still-%d" % n)
        c.ping()
        say("  ok   the client is still served")
    with open(gate.conf, "w") as f:
        f.write(conf_text(auth_sections(gate, "it/c/#")))
    gate.signal(signal.SIGHUP)
    wait_for("a good reload after the broken ones",
             lambda: c.publish("it/c/x", 9)["op"] == "ok", timeout=5)
    say("  ok   a good config after broken ones is applied")


if __name__ == "__main__":
    run([t_sigterm, t_sigint, t_sigterm_idle, t_sigterm_unresponsive,
         t_sighup_reload, t_sighup_broken])
