#!/usr/bin/env python3
"""test_browser_share.py - tab sharing: several dashboard tabs of one
origin share a single WebSocket through mqgate-worker.js (the daemon's
/metrics counts one ws client), every tab shows live values and can
publish, and the connection survives tabs closing while one remains."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

TABS = 4
VAL = ("return document.querySelector('[data-topic=\"%s\"] .val')"
       "?.textContent")


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


def each_tab(b, tabs, what, cond):
    for h in tabs:
        b.driver.switch_to.window(h)
        b.wait(what, cond)


def run(b, mosq, gate):
    d = b.driver
    d.get(gate.base + "/")
    tabs = [d.current_window_handle]
    for _ in range(TABS - 1):
        d.switch_to.new_window("tab")
        d.get(gate.base + "/")
        tabs.append(d.current_window_handle)
    each_tab(b, tabs, "tab connected", lambda: b.js(
        "return [dashboard.client.state, dashboard.client.transport]")
        == ["open", "ws"])
    # Each tab talks to the shared worker, not to the daemon.
    assert b.js("return dashboard.client.port instanceof MessagePort")
    assert b.js("return dashboard.client.ws") is None
    b.wait("one websocket", lambda: gate.metric(
        "mqgate_clients", protocol="ws") == 1)
    assert gate.metric("mqgate_clients", protocol="sse") == 0

    mosq.pub("it/share/v", "1")
    each_tab(b, tabs, "value in every tab", lambda: b.js(
        VAL % "it/share/v") == "1")

    # A tab publishes through the shared connection.
    sub = mosq.sub("it/share/cmd")
    b.js("""document.getElementById('pub-topic').value = 'it/share/cmd';
        document.getElementById('pub-payload').value = 'shared';
        document.getElementById('pub-send').click();""")
    b.wait("publish ok", lambda: b.js(
        "return document.getElementById('pub-result').dataset.result")
        == "ok")
    out, _ = sub.communicate(timeout=20)
    assert out == b"shared", out

    # Close all tabs but one: the shared connection stays, still one.
    for h in tabs[1:]:
        d.switch_to.window(h)
        d.close()
    d.switch_to.window(tabs[0])
    mosq.pub("it/share/v", "2")
    b.wait("value after closing tabs", lambda: b.js(
        VAL % "it/share/v") == "2")
    assert gate.metric("mqgate_clients", protocol="ws") == 1

    # A late tab joins the same connection and gets the current state.
    d.switch_to.new_window("tab")
    d.get(gate.base + "/")
    b.wait("late tab snapshot", lambda: b.js(VAL % "it/share/v") == "2")
    assert gate.metric("mqgate_clients", protocol="ws") == 1


if __name__ == "__main__":
    main()
