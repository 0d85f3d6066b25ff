#!/usr/bin/env python3
"""test_browser_resume.py - mqgate.js keeps a subscriber's state across
connection loss. (1) The WebSocket drops while the daemon stays up: the
client resumes from its last event id and gets exactly the messages it
missed, once, in order, without a reset. (2) mqgate restarts on the same
port (a new epoch) while the broker gets new retained values: the client
gets `reset` and the fresh snapshot, so its state equals the broker's
retained state, and no event id is ever delivered twice."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

SETUP = """
window.log = []; window.resets = []; window.state = {}; window.states = [];
window.c = mqgate.connect(undefined, {share: false, transport: 'ws'});
c.on('state', s => states.push(s));
c.subscribe('it/r/#', m => {
    log.push([m.topic, m.payload, m.event]);
    state[m.topic] = m.payload;
}, {onReset: r => { resets.push(r); window.state = {}; }});
"""


def main():
    browser.require()
    mosq = browser.Mosquitto()
    gate = None
    try:
        gate = browser.Mqgate(mosq)
        with browser.Browser() as b:
            run(b, mosq, gate)
    finally:
        if gate:
            gate.cleanup()
        mosq.stop()
    print("PASS")


def ids_unique(b):
    ids = [e[2] for e in b.js("return log")]
    dup = {i for i in ids if ids.count(i) > 1}
    assert not dup, "duplicate event ids: %s" % sorted(dup)


def run(b, mosq, gate):
    mosq.pub("it/r/s1", "one", retain=True)
    mosq.pub("it/r/s2", "two", retain=True)
    b.load_library(gate.base)
    b.js(SETUP)
    b.wait("open", lambda: b.js("return c.state") == "open")
    b.wait("snapshot", lambda: b.js("return state") ==
           {"it/r/s1": "one", "it/r/s2": "two"})

    # (1) The connection drops; the daemon keeps running.
    mosq.pub("it/r/live", "0")
    b.wait("live 0", lambda: b.js("return state['it/r/live']") == 0)
    n0 = len(b.js("return log"))
    b.js("""window.RealWS = WebSocket;
            window.WebSocket = function () { throw new Error('blocked'); };
            c.ws.close();""")
    b.wait("reconnecting", lambda: b.js("return c.state") == "reconnecting")
    for i in range(1, 6):
        mosq.pub("it/r/live", str(i))
    b.js("window.WebSocket = RealWS;")
    b.wait("reopened", lambda: b.js("return c.state") == "open", timeout=15)
    b.wait("missed messages", lambda: len(b.js("return log")) >= n0 + 5)
    got = b.js("return log")[n0:]
    assert [(t, p) for t, p, _ in got] == [("it/r/live", i)
                                          for i in range(1, 6)], got
    assert b.js("return resets") == [], "unexpected reset"
    ids_unique(b)

    # (2) mqgate restarts on the same port; the broker moves on meanwhile.
    epoch0 = got[-1][2].rsplit("-", 1)[0]
    gate.stop()
    b.wait("noticed the restart", lambda: b.js("return c.state")
           == "reconnecting")
    mosq.pub("it/r/s1", "one-b", retain=True)
    mosq.pub("it/r/s3", "three", retain=True)
    mosq.pub("it/r/live", "not retained: nobody keeps it")
    gate.start()
    want = {"it/r/s1": "one-b", "it/r/s2": "two", "it/r/s3": "three"}
    b.wait("reset and fresh snapshot", lambda: b.js("return state") == want,
           timeout=40)
    assert b.js("return c.state") == "open"
    assert len(b.js("return resets")) == 1, b.js("return resets")
    log = b.js("return log")
    assert any(e[2].rsplit("-", 1)[0] != epoch0 for e in log), \
        "no event from the new daemon run"
    ids_unique(b)

    # Live traffic continues, delivered once.
    mosq.pub("it/r/after", "after")
    b.wait("after restart", lambda: b.js("return state['it/r/after']")
           == "after")
    ids_unique(b)
    assert b.js("return state") == dict(want, **{"it/r/after": "after"})


if __name__ == "__main__":
    main()
