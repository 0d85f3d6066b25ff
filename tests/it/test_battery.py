#!/usr/bin/env python3
"""test_battery.py - the quick version of tests/bench/battery.py (bad
input and abusive load against one daemon), and the frames the battery
found answered wrongly.

t_battery runs every stage of the battery scaled down (1,000 WebSocket
messages, 200 HTTP requests, 50 slowloris connections, a flood of 500
upgrades, 20 slow consumers beside 20 fast ones) with the same pass
criteria: every bad frame is answered with `error` on a connection that
stays open, the slowloris connections are closed by the daemon's
handshake timeout, the control client and every fast consumer lose
nothing, /healthz says 200 throughout and the daemon is alive at the
end. The figures are printed; no figure is a pass criterion."""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
from mqgatetest import Mosquitto, Mqgate, check, check_eq, run  # noqa: E402
import battery  # noqa: E402


def t_refused_ids():
    """the id of a refused frame is echoed only when it is valid UTF-8 and
    a finite number: every reply is a text frame a browser accepts"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server=battery.SERVER, broker=battery.BROKER)
    c = battery.RawWs(gate.port)
    cases = [
        # the frame is refused (invalid UTF-8), its id has the bad bytes
        (b'{"op":"ping","id":"a\xed\xa0\x80b"}', None),
        (b'{"op":"ping","id":"\xf8\x88\x80\x80\x80"}', None),
        (b'{"op":"ping","id":"\xff","x":1}', None),
        # a number no double holds: echoing it would say null
        (b'{"op":"ping","id":1e400}', None),
        (b'{"op":"ping","id":-1e400,"op":"ping"}', None),
        # the id of a frame refused for a duplicate member or \u0000 is
        # still echoed when it is readable
        (b'{"op":"ping","id":"ok\xc3\xa9","op":"ping"}', "ok\u00e9"),
        (b'{"op":"ping","id":7,"x":"\\u0000"}', 7),
    ]
    for data, want in cases:
        c.send(battery.ws_frame(1, data))
        reply = c.recv_text(5.0)
        check(reply is not None, "%r is answered" % data)
        try:
            text = reply.decode("utf-8")
        except UnicodeDecodeError:
            raise AssertionError("the reply to %r is not UTF-8: %r" %
                                 (data, reply)) from None
        f = json.loads(text)
        check_eq((f["op"], f.get("code")), ("error", "bad_request"),
                 "%r -> error bad_request" % data)
        check_eq(f.get("id"), want, "%r: id %s" % (
            data, "left out" if want is None else "echoed"))
    c.send(battery.ws_frame(1, b'{"op":"ping","id":"last"}'))
    f = c.recv_json(5.0)
    check(f == {"op": "pong", "id": "last"}, "the connection is still open",
          f)


if __name__ == "__main__":
    run([t_refused_ids])
