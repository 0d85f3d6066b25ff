#!/usr/bin/env python3
"""test_browser_sse.py - the SSE fallback of mqgate.js. mqgate's `origins`
does not list the page's origin, so the browser's WebSocket upgrade is
refused (403); with transport 'auto' the client must end up on
Server-Sent Events and still receive (snapshot and live), change its
subscriptions without losing or duplicating messages, and publish through
POST /publish, both directly and through the dashboard (shared worker)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402


def main():
    browser.require()
    mosq = browser.Mosquitto()
    gate = None
    try:
        gate = browser.Mqgate(mosq, origins="http://origin.invalid")
        with browser.Browser() as b:
            run(b, mosq, gate)
    finally:
        if gate:
            gate.cleanup()
        mosq.stop()
    print("PASS")


def run(b, mosq, gate):
    mosq.pub("it/sse/a", "snap-a", retain=True)
    mosq.pub("it/sse/b", "snap-b", retain=True)
    b.load_library(gate.base)
    b.js("""window.log = [];
        window.c = mqgate.connect(undefined, {share: false});
        c.subscribe('it/sse/a', m => log.push(['A', m.topic, m.payload,
                                                 m.event]));""")
    b.wait("open", lambda: b.js("return c.state") == "open", timeout=15)
    assert b.js("return c.transport") == "sse", b.js("return c.transport")
    assert gate.metric("mqgate_clients", protocol="ws") == 0
    b.wait("snapshot", lambda: b.js("return log.length") == 1)
    mosq.pub("it/sse/a", "live-1")
    b.wait("live", lambda: b.js("return log.length") == 2)

    # A second subscription reopens the stream: it gets its snapshot, the
    # first one neither loses nor repeats anything.
    b.js("""c.subscribe('it/sse/#', m => log.push(['ALL', m.topic, m.payload,
                                                    m.event]));""")
    b.wait("second snapshot", lambda: len(b.js(
        "return log.filter(e => e[0] === 'ALL')")) == 2)
    mosq.pub("it/sse/a", "live-2")
    b.wait("both live", lambda: b.js("return log.length") == 6)
    log = b.js("return log")
    a = [e[2] for e in log if e[0] == "A"]
    assert a == ["snap-a", "live-1", "live-2"], log
    everything = sorted(e[2] for e in log if e[0] == "ALL")
    assert everything == ["live-1", "live-2", "snap-b"] or \
        everything == ["live-2", "snap-a", "snap-b"], log
    for who in ("A", "ALL"):
        ids = [e[3] for e in log if e[0] == who]
        assert len(ids) == len(set(ids)), log
    b.wait("one stream", lambda: gate.metric(
        "mqgate_clients", protocol="sse") == 1)

    # Publishing goes through POST /publish: exact bytes, ok.
    sub = mosq.sub("it/sse/cmd")
    r = b.ajs("""const done = arguments[arguments.length - 1];
        c.publish('it/sse/cmd', 'raw \u00e9 bytes', {qos: 1})
            .then(() => done('ok'), e => done(e.code));""")
    assert r == "ok", r
    out, _ = sub.communicate(timeout=20)
    assert out == "raw \u00e9 bytes".encode(), out
    r = b.ajs("""const done = arguments[arguments.length - 1];
        c.publish('it/#', 'x').then(() => done('ok'), e => done(e.code));""")
    assert r == "bad_request", r

    # The dashboard (through its shared worker) falls back the same way.
    b.driver.get(gate.base + "/")
    b.wait("dashboard on SSE", lambda: b.js(
        "return document.getElementById('status').dataset.transport")
        == "sse", timeout=15)
    assert "SSE" in b.js(
        "return document.getElementById('status-label').textContent")
    mosq.pub("it/sse/dash", "42")
    b.wait("dashboard value", lambda: b.js(
        "return document.querySelector('[data-topic=\"it/sse/dash\"] .val')"
        "?.textContent") == "42")
    sub = mosq.sub("it/sse/form")
    b.js("""document.getElementById('pub-topic').value = 'it/sse/form';
        document.getElementById('pub-payload').value = 'from the form';
        document.getElementById('pub-send').click();""")
    b.wait("form ok", lambda: b.js(
        "return document.getElementById('pub-result').dataset.result")
        == "ok")
    out, _ = sub.communicate(timeout=20)
    assert out == b"from the form", out
    assert gate.metric("mqgate_clients", protocol="ws") == 0
    print("screenshot:", b.screenshot("dashboard-sse.png"))


if __name__ == "__main__":
    main()
