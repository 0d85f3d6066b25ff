#!/usr/bin/env python3
"""test_browser_dashboard.py - the bundled dashboard in headless chromium
against mosquitto + mqgate: a value published to the broker shows within a
second, JSON numbers get one sparkline per field, binary payloads show as
bytes, the publish form reaches the broker with the exact bytes and shows
the broker's ok (and the error code for a bad topic), update times move.
Saves light, dark and narrow (top and topic tree) screenshots under
tests/out/ of the build tree."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

VAL = "return document.querySelector('[data-topic=\"%s\"] .val')?.textContent"


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


def run(b, mosq, gate):
    b.driver.get(gate.base + "/")
    b.wait("dashboard connected", lambda: b.js(
        "return document.getElementById('status').dataset.state") == "open")
    assert "Connected" in b.js(
        "return document.getElementById('status-label').textContent")

    # A live value shows within a second of the broker publish.
    t0 = time.monotonic()
    mosq.pub("it/room1/temp", "21.5")
    b.wait("live value", lambda: b.js(VAL % "it/room1/temp") == "21.5",
           timeout=2, step=0.02)
    took = time.monotonic() - t0
    assert took < 1.0, "value took %.3f s to show" % took

    # Numbers in JSON: one sparkline per numeric field.
    for i in range(6):
        mosq.pub("it/room1/climate",
                 '{"temperature":%.1f,"humidity":%d,"unit":"C"}'
                 % (20 + i * 0.5, 40 + i))
        mosq.pub("it/room1/temp", "%.1f" % (21 + i))
    b.wait("sparklines", lambda: b.js("""
        const r = document.querySelector('[data-topic="it/room1/climate"]');
        return [...r.querySelectorAll('.spark .k')].map(e => e.textContent)
            .join(',') === 'temperature,humidity' &&
            r.querySelector('.spark .v').textContent === '22.5';"""))
    pts = b.wait("temp series", lambda: b.js("""
        const p = document.querySelector(
            '[data-topic="it/room1/temp"] .spark polyline');
        return p && p.getAttribute('points').split(' ').length >= 7 &&
            p.getAttribute('points');"""))
    assert len(pts.split(" ")) == 7, pts  # 21.5 then 21.0 .. 26.0
    assert b.js(VAL % "it/room1/temp") == "26"

    # Binary payload (not UTF-8): shown as bytes.
    mosq.pub("it/raw", b"\x00\xff\x10")
    b.wait("binary", lambda: b.js(VAL % "it/raw") == "00 ff 10 (3 bytes)")

    # The publish form reaches the broker with the exact bytes.
    payload = '{"on": true,  "name": "lampe \u00e9"}'
    sub = mosq.sub("it/cmd/lamp")
    form(b, "it/cmd/lamp", payload, qos=1)
    b.wait("publish ok", lambda: b.js(
        "return document.getElementById('pub-result').dataset.result")
        == "ok")
    assert "ok" in b.js(
        "return document.getElementById('pub-result').textContent")
    out, _ = sub.communicate(timeout=20)
    assert out == payload.encode(), out

    # A topic with a wildcard is the daemon's bad_request, shown as such.
    form(b, "it/+/bad", "x", qos=0)
    b.wait("publish error", lambda: b.js(
        "return document.getElementById('pub-result').dataset.result")
        == "error")
    text = b.js("return document.getElementById('pub-result').textContent")
    assert "bad_request" in text, text

    # Relative update times move on.
    time.sleep(2.5)
    ago = b.js("return document.querySelector("
               "'[data-topic=\"it/raw\"] .ago').textContent")
    assert ago.endswith("s ago"), ago

    print("screenshot:", b.screenshot("dashboard.png"))
    b.color_scheme("dark")
    time.sleep(0.3)
    print("screenshot:", b.screenshot("dashboard-dark.png"))
    b.driver.set_window_size(420, 900)
    time.sleep(0.3)
    print("screenshot:", b.screenshot("dashboard-narrow.png"))
    b.js("document.getElementById('tree').scrollIntoView()")
    time.sleep(0.3)
    print("screenshot:", b.screenshot("dashboard-narrow-tree.png"))


def form(b, topic, payload, qos):
    b.js("""
        document.getElementById('pub-topic').value = arguments[0];
        document.getElementById('pub-payload').value = arguments[1];
        document.getElementById('pub-qos').value = String(arguments[2]);
        document.getElementById('pub-result').dataset.result = '';
        document.getElementById('pub-send').click();""", topic, payload, qos)


if __name__ == "__main__":
    main()
