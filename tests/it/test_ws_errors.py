#!/usr/bin/env python3
"""test_ws_errors.py - bad WebSocket frames and refused requests get the
`error` reply PROTOCOL.md names (code, id echoed where the frame could be
read), the connection stays open, and another client keeps receiving its
messages throughout. Also the walls of the broker's `topic` lines and
mounts, all-or-nothing subscribes, max_subscriptions, publish_rate,
max_message and binary frames."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, WsClosed, b64, check,  # noqa: E402
                        check_eq, run, say)

MAX_MESSAGE = 40 * 1024
NOID = object()     # the error must carry no id
ANYID = object()    # the id may be echoed or absent (unparsable frame)

BROKER = {"mount": "home/",
          "topic": ["it/# both 1", "cmd/# out 1", "sensors/# in 0"]}
SERVER = {"max_message": "40K", "max_subscriptions": "5"}


class Bystander:
    """A second client subscribed to home/it/live: after every bad frame
    a fresh message must reach it."""

    def __init__(self, mosq, gate):
        self.mosq = mosq
        self.ws = gate.ws()
        self.ws.subscribe("home/it/live")
        self.n = 0

    def tick(self, after):
        self.n += 1
        self.mosq.pub("it/live", str(self.n))
        try:
            m = self.ws.expect(op="message", topic="home/it/live",
                               payload=self.n)
        except AssertionError as e:
            raise AssertionError("after %s the other client stopped "
                                 "receiving: %s" % (after, e)) from None
        return m


def expect_error(c, label, code, rid):
    """The next error frame: code and id as required."""
    f = c.expect(op="error")
    check(f.get("code") == code, "%s -> error %s" % (label, code), f)
    check(isinstance(f.get("message"), str), "%s: error has a message" %
          label, f)
    if rid is NOID:
        check("id" not in f, "%s: no id in the error" % label, f)
    elif rid is not ANYID:
        check("id" in f and f["id"] == rid and type(f["id"]) is type(rid),
              "%s: id %r echoed" % (label, rid), f)
    return f


def send_case(c, data):
    if isinstance(data, dict):
        c.send(data)
    else:
        c.send_text(data)


def t_bad_frames():
    """each malformed or wrong frame gets error bad_request / too_large,
    the connection stays open, a bystander keeps receiving"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server=SERVER, broker=BROKER)
    watch = mosq.sub("#")
    by = Bystander(mosq, gate)
    c = gate.ws()
    long_topic = "home/it/" + "a" * (65536 - len("home/it/"))
    cases = [
        ("malformed JSON", '{"op":"ping",', "bad_request", NOID),
        ("not JSON at all", "hello there", "bad_request", NOID),
        ("empty frame", "", "bad_request", NOID),
        ("JSON array", "[1,2]", "bad_request", NOID),
        ("JSON string", '"ping"', "bad_request", NOID),
        ("JSON number", "42", "bad_request", NOID),
        ("JSON null", "null", "bad_request", NOID),
        ("unknown op", {"op": "frobnicate", "id": "u1"}, "bad_request",
         "u1"),
        ("missing op", {"id": 3}, "bad_request", 3),
        ("op not a string", {"op": 5, "id": 4}, "bad_request", 4),
        ("id an object", {"op": "ping", "id": {"a": 1}}, "bad_request",
         NOID),
        ("id an array", {"op": "ping", "id": [1]}, "bad_request", NOID),
        ("subscribe without topics", {"op": "subscribe", "id": 10},
         "bad_request", 10),
        ("topics a string", {"op": "subscribe", "id": 11,
                             "topics": "home/it/x"}, "bad_request", 11),
        ("topics empty", {"op": "subscribe", "id": 12, "topics": []},
         "bad_request", 12),
        ("topics holding a number", {"op": "subscribe", "id": 13,
                                     "topics": [1]}, "bad_request", 13),
        ("snapshot not a boolean", {"op": "subscribe", "id": 14,
                                    "topics": ["home/it/a"],
                                    "snapshot": "no"}, "bad_request", 14),
        ("since not a string", {"op": "subscribe", "id": 15,
                                "topics": ["home/it/a"], "since": 5},
         "bad_request", 15),
        ("filter # not last", {"op": "subscribe", "id": 16,
                               "topics": ["home/it/#/x"]}, "bad_request",
         16),
        ("filter a# inside a level", {"op": "subscribe", "id": 17,
                                      "topics": ["home/it/a#"]},
         "bad_request", 17),
        ("filter +x inside a level", {"op": "subscribe", "id": 18,
                                      "topics": ["home/+x/y"]},
         "bad_request", 18),
        ("empty filter", {"op": "subscribe", "id": 19, "topics": [""]},
         "bad_request", 19),
        ("unsubscribe without topics", {"op": "unsubscribe", "id": 20},
         "bad_request", 20),
        ("publish without topic", {"op": "publish", "id": 21,
                                   "payload": 1}, "bad_request", 21),
        ("publish topic a number", {"op": "publish", "id": 22, "topic": 7,
                                    "payload": 1}, "bad_request", 22),
        ("publish without payload", {"op": "publish", "id": 23,
                                     "topic": "home/it/x"}, "bad_request",
         23),
        ("publish qos 2", {"op": "publish", "id": 24, "topic": "home/it/x",
                           "payload": 1, "qos": 2}, "bad_request", 24),
        ("publish qos a string", {"op": "publish", "id": 25,
                                  "topic": "home/it/x", "payload": 1,
                                  "qos": "1"}, "bad_request", 25),
        ("publish retain a string", {"op": "publish", "id": 26,
                                     "topic": "home/it/x", "payload": 1,
                                     "retain": "yes"}, "bad_request", 26),
        ("publish encoding hex", {"op": "publish", "id": 27,
                                  "topic": "home/it/x", "payload": "00",
                                  "encoding": "hex"}, "bad_request", 27),
        ("base64 payload not a string", {"op": "publish", "id": 28,
                                         "topic": "home/it/x", "payload": 5,
                                         "encoding": "base64"},
         "bad_request", 28),
        ("base64 payload not base64", {"op": "publish", "id": 29,
                                       "topic": "home/it/x",
                                       "payload": "!!not base64!!",
                                       "encoding": "base64"},
         "bad_request", 29),
        ("publish to a + topic", {"op": "publish", "id": 30,
                                  "topic": "home/it/+", "payload": 1},
         "bad_request", 30),
        ("publish to a # topic", {"op": "publish", "id": 31,
                                  "topic": "home/it/#", "payload": 1},
         "bad_request", 31),
        ("publish to a+b", {"op": "publish", "id": 32,
                            "topic": "home/it/a+b", "payload": 1},
         "bad_request", 32),
        ("publish to an empty topic", {"op": "publish", "id": 33,
                                       "topic": "", "payload": 1},
         "bad_request", 33),
        ("NUL in a publish topic (JSON escape)",
         '{"op":"publish","id":34,"topic":"home/it/a\\u0000b","payload":1}',
         "bad_request", 34),
        ("NUL in a filter (JSON escape)",
         '{"op":"subscribe","id":35,"topics":["home/it/\\u0000"]}',
         "bad_request", 35),
        ("lone surrogate in a topic (JSON escape)",
         '{"op":"publish","id":36,"topic":"home/it/\\ud800","payload":1}',
         "bad_request", ANYID),
        ("raw NUL byte in a topic",
         b'{"op":"publish","id":37,"topic":"home/it/a\x00b","payload":1}',
         "bad_request", ANYID),
        ("topic of 65536 bytes", {"op": "publish", "id": 38,
                                  "topic": long_topic, "payload": 1},
         "bad_request", 38),
        ("filter of 65536 bytes", {"op": "subscribe", "id": 39,
                                   "topics": [long_topic]}, "bad_request",
         39),
        ("payload over max_message", {"op": "publish", "id": 40,
                                      "topic": "home/it/big",
                                      "payload": "x" * (MAX_MESSAGE + 1)},
         "too_large", 40),
        ("base64 payload over max_message",
         {"op": "publish", "id": 41, "topic": "home/it/big",
          "payload": b64(b"\xff" * (MAX_MESSAGE + 1)),
          "encoding": "base64"}, "too_large", 41),
        ("frame far over max_message",
         json.dumps({"op": "publish", "id": 42, "topic": "home/it/big",
                     "payload": "y" * (MAX_MESSAGE * 4)}),
         "too_large", ANYID),
    ]
    # Every case runs even when one fails; the failures are listed at
    # the end.
    cl = {"c": c}
    failures = []

    def attempt(label, fn):
        try:
            fn(cl["c"])
        except AssertionError as e:
            say("  FAILED %s: %s" % (label, e))
            failures.append("%s: %s" % (label, str(e).split("\n")[0]))
            if cl["c"].closed:
                cl["c"] = gate.ws()
            else:
                cl["c"].frames(timeout=0.5)
                cl["c"].backlog.clear()
        try:
            by.tick(label)
        except AssertionError as e:
            failures.append(str(e))
            raise AssertionError("\n".join(failures)) from None

    def simple(data, label, code, rid):
        def fn(c):
            send_case(c, data)
            expect_error(c, label, code, rid)
            c.ping()
        return fn

    for label, data, code, rid in cases:
        attempt(label, simple(data, label, code, rid))

    def bad_utf8(c):
        label = "invalid UTF-8 bytes in a text frame"
        c.send_text(b'{"op":"publish","id":50,"topic":"home/it/\xff\xfe",'
                    b'"payload":1}')
        try:
            f = c.expect(op="error")
            check_eq(f.get("code"), "bad_request", label + " -> bad_request")
            c.ping()
            say("  ok   %s: answered with an error, connection open" % label)
        except WsClosed as e:
            # RFC 6455: a text frame that is not UTF-8 fails the connection.
            check_eq(e.code, 1007, label + ": closed with 1007")
            cl["c"] = gate.ws()
    attempt("invalid UTF-8 bytes in a text frame", bad_utf8)

    def big_fragments(c):
        label = "a message over the limit in fragments"
        part = b"z" * (MAX_MESSAGE * 2)
        c.send_fragments([b'{"op":"ping","id":"frag","pad":"', part, part,
                          b'"}'])
        expect_error(c, label, "too_large", ANYID)
        check_eq(c.frames(timeout=0.5, op="pong", id="frag"), [],
                 label + ": its op is not executed")
        c.ping()
    attempt("a message over the limit in fragments", big_fragments)

    def small_fragments(c):
        c.send_fragments([b'{"op":"pi', b'ng","id":', b'"f3"}'])
        c.expect(op="pong", id="f3")
        say("  ok   a small message in three fragments: reassembled and "
            "answered")
    attempt("a small message in three fragments", small_fragments)

    def binary(c):
        label = "binary frame"
        c.send_binary(b'{"op":"ping","id":"bin"}')
        expect_error(c, label, "bad_request", NOID)
        check_eq(c.frames(timeout=0.5, op="pong", id="bin"), [],
                 label + ": its content is not executed")
        c.ping()
    attempt("binary frame", binary)

    def filter_65535(c):
        label = "a filter of exactly 65535 bytes"
        ok_topic = "home/it/" + "b" * (65535 - len("home/it/"))
        r = c.request("subscribe", topics=[ok_topic])
        check_eq(r["op"], "ok", label + " is valid")
        c.request("unsubscribe", topics=[ok_topic])
    attempt("a filter of exactly 65535 bytes", filter_65535)

    def max_payload(c):
        label = "a payload of exactly max_message bytes"
        r = c.publish("home/it/max", "m" * MAX_MESSAGE)
        check_eq(r["op"], "ok", label + " is accepted")
    attempt("a payload of exactly max_message bytes", max_payload)

    seen = watch.quiet(1.0)
    stray = sorted({m.topic for m in seen} - {"it/live", "it/max"})
    if stray:
        failures.append("refused publishes reached the broker on %s" %
                        stray)
    else:
        say("  ok   no refused publish reached the broker")
    mx = [m for m in seen if m.topic == "it/max"]
    check(len(mx) == 1 and len(mx[0].payload) == MAX_MESSAGE,
          "the max_message payload reached the broker whole",
          [(m.topic, len(m.payload)) for m in mx])
    check(gate.running(), "mqgate is still running")
    if failures:
        raise AssertionError("%d check(s) failed:\n  " % len(failures) +
                             "\n  ".join(failures))


def t_walls():
    """topic walls and mounts: publish outside every out filter or mount
    and subscribe outside the in filters are forbidden; wider filters
    are granted and deliver only what comes in"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server=SERVER, broker=BROKER)
    by = Bystander(mosq, gate)
    devices = mosq.sub("#")
    c = gate.ws()
    for topic, what in (("home/sensors/t", "an in-only topic"),
                        ("home/zzz/x", "a topic outside every filter"),
                        ("other/x", "a topic no mount covers"),
                        ("homeless", "a topic beside the mount"),
                        ("sensors/t", "a broker topic without its mount")):
        r = c.publish(topic, 1)
        check_eq((r["op"], r.get("code")), ("error", "forbidden"),
                 "publish to %s (%s) -> forbidden" % (topic, what))
        by.tick("publish to " + topic)
    r = c.publish("home/cmd/go", {"speed": 2}, qos=1)
    check_eq(r["op"], "ok", "publish to home/cmd/go (an out filter): ok")
    m = devices.recv(topic="cmd/go")
    check_eq(m.payload, b'{"speed":2}', "the broker gets cmd/go, mount "
             "stripped, exact bytes")
    r = c.publish("home/it/x", "both", qos=1)
    check_eq(r["op"], "ok", "publish to home/it/x (a both filter): ok")
    devices.recv(topic="it/x")

    for filt, what in (("home/other/#", "outside every in filter"),
                       ("home/cmd/#", "an out-only filter"),
                       ("other/#", "no mount covers it"),
                       ("home/it2/x", "beside an in filter")):
        r = c.request("subscribe", topics=[filt])
        check_eq((r["op"], r.get("code")), ("error", "forbidden"),
                 "subscribe %s (%s) -> forbidden" % (filt, what))
        check(filt in r.get("message", ""), "the error names %s" % filt, r)
        by.tick("subscribe " + filt)

    wide = gate.ws()
    r = wide.request("subscribe", topics=["#"])
    check_eq(r["op"], "ok", "subscribe # (wider than the walls): granted")
    r = wide.request("subscribe", topics=["home/sensors/+/temp"])
    check_eq(r["op"], "ok", "subscribe home/sensors/+/temp (inside): ok")
    mosq.pub("sensors/a/temp", "21")
    mosq.pub("cmd/x", "9")
    mosq.pub("zzz/q", "8")
    mosq.pub("it/y", "7")
    got = wide.frames(timeout=1.5, op="message")
    topics = sorted(f["topic"] for f in got)
    check("home/sensors/a/temp" in topics and "home/it/y" in topics,
          "# delivers what comes in, with the mount", topics)
    check(not any(t in ("home/cmd/x", "home/zzz/q", "cmd/x", "zzz/q")
                  for t in topics),
          "# delivers nothing from outside the in filters", topics)

    # All or nothing.
    d = gate.ws()
    r = d.request("subscribe", topics=["home/it/a1", "home/it/#/bad"])
    check_eq((r["op"], r.get("code")), ("error", "bad_request"),
             "subscribe with one invalid filter -> bad_request")
    check("home/it/#/bad" in r.get("message", ""),
          "the error names the invalid filter", r)
    r = d.request("subscribe", topics=["home/it/a1", "home/zzz/#"])
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "subscribe with one forbidden filter -> forbidden")
    check("home/zzz/#" in r.get("message", ""),
          "the error names the forbidden filter", r)
    d.subscribe("home/it/a2")
    mosq.pub("it/a1", "1")
    mosq.pub("it/a2", "2")
    d.expect(op="message", topic="home/it/a2")
    check_eq(d.frames(timeout=1.0, op="message", topic="home/it/a1"), [],
             "nothing of a refused subscribe was subscribed")


def t_max_subscriptions():
    """max_subscriptions: a request that would exceed it -> too_large and
    nothing subscribed; re-subscribing a held filter is not new"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server=SERVER, broker=BROKER)
    by = Bystander(mosq, gate)
    c = gate.ws()
    six = ["home/it/m%d" % i for i in range(6)]
    r = c.request("subscribe", topics=six)
    check_eq((r["op"], r.get("code")), ("error", "too_large"),
             "6 filters at once with max_subscriptions 5 -> too_large")
    mosq.pub("it/m0", "0")
    check_eq(c.frames(timeout=1.0, op="message"), [],
             "nothing of the refused request was subscribed")
    by.tick("too_large")
    r = c.request("subscribe", topics=six[:5])
    check_eq(r["op"], "ok", "5 filters: ok")
    r = c.request("subscribe", topics=[six[5]])
    check_eq((r["op"], r.get("code")), ("error", "too_large"),
             "a 6th filter -> too_large")
    r = c.request("subscribe", topics=[six[0]])
    check_eq(r["op"], "ok", "subscribing a held filter again: ok")
    c.request("unsubscribe", topics=[six[1]])
    r = c.request("subscribe", topics=[six[5]])
    check_eq(r["op"], "ok", "after an unsubscribe there is room again")
    mosq.pub("it/m5", "5")
    c.expect(op="message", topic="home/it/m5")
    c.ping()
    by.tick("max_subscriptions")


def t_rate_limit():
    """publish_rate: a burst beyond it -> rate_limited, per client, and
    the bucket refills"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, server={"publish_rate": "5/s"})
    other = gate.ws()
    other.subscribe("it/rl/#")
    c = gate.ws()
    n = 40
    for i in range(n):
        c.send({"op": "publish", "id": i, "topic": "it/rl/x", "payload": i})
    replies = [c.expect(id=i, pred=lambda f: f["op"] in ("ok", "error"))
               for i in range(n)]
    codes = [r.get("code", "ok") if r["op"] == "error" else "ok"
             for r in replies]
    nok = codes.count("ok")
    nlim = codes.count("rate_limited")
    check(nok + nlim == n, "every reply is ok or rate_limited",
          sorted(set(codes)))
    check(nlim >= 1, "a burst of %d publishes at 5/s is rate limited" % n,
          codes)
    check(1 <= nok < n - 20, "some went through, most did not "
          "(%d ok)" % nok, codes)
    c.ping()
    r = other.publish("it/rl/y", "other")
    check_eq(r["op"], "ok", "another client is not limited by this one")
    time.sleep(1.5)
    r = c.publish("it/rl/x", "later")
    check_eq(r["op"], "ok", "after a pause the client may publish again")
    m = other.expect(op="message", topic="it/rl/x", payload="later")
    check_eq(m["payload"], "later", "and its message is delivered")
    v = gate.metric("mqgate_publishes_total", result="rate_limited")
    check(v is not None and v >= nlim,
          "mqgate_publishes_total{result=rate_limited} >= %d" % nlim, v)


if __name__ == "__main__":
    run([t_bad_frames, t_walls, t_max_subscriptions, t_rate_limit])
