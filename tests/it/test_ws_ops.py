#!/usr/bin/env python3
"""test_ws_ops.py - the WebSocket ops of PROTOCOL.md against a real
mosquitto: hello, subscribe (ids echoed, snapshot of retained and cached
values, snapshot:false), live messages and their event ids, unsubscribe,
ping, resume with `since`, publish of every payload kind to the broker as
exact bytes, and the broker -> browser payload encoding."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, b64, check, check_eq,  # noqa: E402
                        event_seq, run, unb64)


def setup(**kw):
    mosq = Mosquitto()
    return mosq, Mqgate(mosq, **kw)


def check_message_shape(m, what):
    """The fields every message frame carries."""
    for k in ("topic", "payload", "event", "retain", "qos", "ts"):
        if k not in m:
            raise AssertionError("%s: message lacks %r: %s" % (what, k, m))
    event_seq(m["event"])
    if not isinstance(m["retain"], bool) or m["qos"] not in (0, 1):
        raise AssertionError("%s: bad retain/qos in %s" % (what, m))
    now = time.time() * 1000
    if not isinstance(m["ts"], int) or abs(m["ts"] - now) > 120000:
        raise AssertionError("%s: ts %r is not milliseconds near now (%d)"
                             % (what, m["ts"], now))


def t_hello():
    """hello frame: version 1, server mqgate/X.Y.Z, a session; the
    subprotocol is mqgate.v1; a client offering none is accepted"""
    mosq, gate = setup()
    a = gate.ws()
    h = a.hello
    check_eq(h.get("version"), 1, "hello version is 1")
    srv = h.get("server")
    check(isinstance(srv, str) and srv.startswith("mqgate/") and
          len(srv.split("/", 1)[1].split(".")) == 3,
          "hello server is mqgate/X.Y.Z", srv)
    check(isinstance(h.get("session"), str) and h["session"] != "",
          "hello carries a session string", h)
    check_eq(a.ws.getsubprotocol(), "mqgate.v1",
             "the server selects subprotocol mqgate.v1")
    b = gate.ws(subprotocol=None)
    check_eq(b.hello.get("op"), "hello",
             "a client that offers no subprotocol is accepted")
    check(b.hello["session"] != h["session"],
          "two connections get different sessions",
          (h["session"], b.hello["session"]))
    b.ping()
    a.ping()


def t_subscribe_ok():
    """subscribe answers ok with the topics granted and the id echoed
    (string and number ids)"""
    mosq, gate = setup()
    c = gate.ws()
    c.send({"op": "subscribe", "id": "s-1", "topics": ["it/a/#", "it/b"]})
    r = c.expect(id="s-1")
    check_eq(r.get("op"), "ok", "subscribe with string id: ok")
    check_eq(r.get("topics"), ["it/a/#", "it/b"], "ok lists the topics")
    c.send({"op": "subscribe", "id": 7, "topics": ["it/c/+/x"]})
    r = c.expect(id=7)
    check_eq((r.get("op"), r.get("topics")), ("ok", ["it/c/+/x"]),
             "subscribe with number id 7: ok, topics, id 7 (a number)")
    c.send({"op": "subscribe", "topics": ["it/d"]})
    r = c.expect(op="ok")
    check("id" not in r, "a subscribe without id gets an ok without id", r)


def t_retained_snapshot():
    """a subscribe gets the retained messages first, with retain:true,
    after the ok"""
    mosq = Mosquitto()
    mosq.pub("it/r/a", '{"v":1}', retain=True)
    mosq.pub("it/r/b", "text", retain=True)
    mosq.pub("it/q/other", "1", retain=True)
    gate = Mqgate(mosq)
    c = gate.ws()
    c.send({"op": "subscribe", "id": 1, "topics": ["it/r/#"]})
    frames = c.frames(timeout=1.5)
    check(len(frames) >= 1 and frames[0].get("op") == "ok" and
          frames[0].get("id") == 1, "the ok comes first", frames)
    msgs = frames[1:]
    check_eq(sorted((m["topic"], m["payload"]) for m in msgs),
             [("it/r/a", {"v": 1}), ("it/r/b", "text")],
             "snapshot: exactly the two retained values of it/r/#")
    for m in msgs:
        check_message_shape(m, "snapshot message")
        check_eq(m.get("op"), "message", "snapshot frame is a message")
        check(m["retain"] is True, "%s has retain:true" % m["topic"], m)


def t_live_event_ids():
    """live messages arrive in order with ids <epoch>-<seq>, seq up by
    one per message accepted from the broker, one epoch"""
    mosq, gate = setup()
    c = gate.ws()
    c.subscribe("it/live/#")
    for i in range(20):
        mosq.pub("it/live/x", str(i))
    msgs = c.messages(20, topic="it/live/x")
    check_eq([m["payload"] for m in msgs], list(range(20)),
             "20 live messages in publish order")
    for m in msgs:
        check_message_shape(m, "live message")
    ids = [event_seq(m["event"]) for m in msgs]
    check_eq(len({e for e, _ in ids}), 1, "one epoch for every message")
    seqs = [s for _, s in ids]
    check_eq([b - a for a, b in zip(seqs, seqs[1:])], [1] * 19,
             "sequence numbers increase by exactly one")
    check(all(m["retain"] is False for m in msgs), "live: retain:false")
    # A message nobody subscribed to still takes a sequence number.
    mosq.pub("it/elsewhere", "x")
    mosq.pub("it/live/x", "after")
    m = c.expect(op="message", topic="it/live/x")
    check_eq(m["payload"], "after", "the next live message arrives")
    check_eq(event_seq(m["event"])[1], seqs[-1] + 2,
             "seq counts the unsubscribed message in between")


def t_unsubscribe():
    """unsubscribe answers ok and stops delivery of that filter only"""
    mosq, gate = setup()
    c = gate.ws()
    c.subscribe(["it/u/a", "it/u/b"])
    mosq.pub("it/u/a", "1")
    c.expect(op="message", topic="it/u/a")
    c.send({"op": "unsubscribe", "id": "u1", "topics": ["it/u/a"]})
    r = c.expect(id="u1")
    check_eq(r.get("op"), "ok", "unsubscribe: ok with id echoed")
    mosq.pub("it/u/a", "2")
    mosq.pub("it/u/b", "3")
    m = c.expect(op="message", topic="it/u/b")
    check_eq(m["payload"], 3, "the filter still subscribed delivers")
    late = c.frames(timeout=1.0, op="message", topic="it/u/a")
    check_eq(late, [], "nothing arrives on the unsubscribed filter")


def t_ping():
    """ping gets pong with the id echoed, or without id"""
    mosq, gate = setup()
    c = gate.ws()
    for rid in ("p-1", 99, 0.5):
        c.send({"op": "ping", "id": rid})
        r = c.expect(op="pong", id=rid)
        check_eq(r["id"], rid, "pong echoes id %r" % (rid,))
    c.send({"op": "ping"})
    r = c.expect(op="pong")
    check("id" not in r, "a ping without id: pong without id", r)


def t_publish_payloads():
    """publish qos 0 and 1: each payload kind reaches a mosquitto
    subscriber as exact bytes, ok after the broker accepted it"""
    mosq, gate = setup()
    sub = mosq.sub("it/p/#")
    c = gate.ws()
    cases = [
        ("object", {"a": 1, "b": [True, None], "c": "x"}, None,
         b'{"a":1,"b":[true,null],"c":"x"}'),
        ("array", [1, "two", {}], None, b'[1,"two",{}]'),
        ("integer", 42, None, b"42"),
        ("negative", -3, None, b"-3"),
        ("fraction", 21.5, None, b"21.5"),
        ("true", True, None, b"true"),
        ("null", None, None, b"null"),
        ("string", "h\u00e9llo w\u00f6rld \u2713", None,
         "h\u00e9llo w\u00f6rld \u2713".encode()),
        ("string that looks like JSON", '{"not":"parsed"}', None,
         b'{"not":"parsed"}'),
        ("string with quotes and newline", 'say "hi"\nbye', None,
         b'say "hi"\nbye'),
        ("empty string", "", None, b""),
        ("base64", b64(b"\x00\x01\x02\xff\xfe"), "base64",
         b"\x00\x01\x02\xff\xfe"),
    ]
    for qos in (0, 1):
        for i, (what, payload, enc, want) in enumerate(cases):
            topic = "it/p/q%d/%d" % (qos, i)
            fields = {"qos": qos}
            if enc:
                fields["encoding"] = enc
            r = c.publish(topic, payload, **fields)
            check_eq(r["op"], "ok", "qos %d %s: ok" % (qos, what))
            m = sub.recv(topic=topic)
            check_eq(m.payload, want, "qos %d %s: broker gets exact bytes"
                     % (qos, what))
            check(m.retain is False, "qos %d %s: not retained" % (qos, what))
    r = c.publish("it/p/kept", "v", retain=True, qos=1)
    check_eq(r["op"], "ok", "publish with retain:true: ok")
    late = mosq.sub("it/p/kept")
    m = late.recv(topic="it/p/kept")
    check((m.payload, m.retain) == (b"v", True),
          "retain:true is retained by the broker", m)


def t_broker_payload_encoding():
    """broker bytes -> JSON: a JSON value embedded, other UTF-8 as a
    string, anything else base64 with encoding:base64"""
    mosq, gate = setup()
    c = gate.ws()
    c.subscribe("it/e/#")
    cases = [
        (b'{"x": [1, 2], "y": null}', {"x": [1, 2], "y": None}, False),
        (b"3.25", 3.25, False),
        (b"-17", -17, False),
        (b'"quoted"', "quoted", False),
        (b"true", True, False),
        (b"null", None, False),
        (b" 7 ", 7, False),
        (b"[]", [], False),
        (b"plain text", "plain text", False),
        ("\u00fcn\u00ef \u2713 \U0001f600".encode(),
         "\u00fcn\u00ef \u2713 \U0001f600", False),
        (b"a\x00b", "a\x00b", False),
        (b'{"broken": ', '{"broken": ', False),
        (b"1 2", "1 2", False),
        (b"NaN", "NaN", False),
        (b"line1\r\nline2", "line1\r\nline2", False),
        (b"\x00\xff\xfe\x80", "AP/+gA==", True),
        (b"\xc3\x28", "wyg=", True),
        (b"\xed\xa0\x80", "7aCA", True),   # an encoded surrogate: not UTF-8
    ]
    for i, (raw, want, is_b64) in enumerate(cases):
        mosq.pub("it/e/%d" % i, raw)
    for i, (raw, want, is_b64) in enumerate(cases):
        m = c.expect(op="message", topic="it/e/%d" % i)
        got = m.get("payload")
        check(got == want and type(got) is type(want),
              "%r arrives as %r" % (raw, want), got)
        if is_b64:
            check_eq(m.get("encoding"), "base64",
                     "%r carries encoding:base64" % raw)
            check_eq(unb64(got), raw, "base64 of %r decodes to it" % raw)
        else:
            check("encoding" not in m, "%r has no encoding field" % raw, m)


def t_snapshot_false():
    """subscribe with snapshot:false gets no snapshot, then live
    messages"""
    mosq = Mosquitto()
    mosq.pub("it/n/a", "kept", retain=True)
    gate = Mqgate(mosq)
    ref = gate.ws()
    ref.subscribe("it/n/#")
    m = ref.expect(op="message", topic="it/n/a")
    check_eq(m["payload"], "kept", "a default subscribe gets the snapshot")
    c = gate.ws()
    c.send({"op": "subscribe", "id": 1, "topics": ["it/n/#"],
            "snapshot": False})
    r = c.expect(id=1)
    check_eq(r["op"], "ok", "snapshot:false: ok")
    check_eq(c.frames(timeout=1.0, op="message"), [],
             "snapshot:false: no snapshot message")
    mosq.pub("it/n/a", "new")
    m = c.expect(op="message", topic="it/n/a")
    check_eq((m["payload"], m["retain"]), ("new", False),
             "snapshot:false: live messages still arrive")


def t_wildcard_last_values():
    """a wildcard subscribe gets the last value of every matching topic,
    non-retained ones too (retain:false), nothing else"""
    mosq = Mosquitto()
    mosq.pub("it/w/r", "kept", retain=True)
    gate = Mqgate(mosq)
    watch = gate.ws()
    watch.subscribe("it/#")
    watch.expect(op="message", topic="it/w/r")
    for topic, value in (("it/w/a", "1"), ("it/w/b/c", "2"),
                         ("it/w/a", "3"), ("it/x/z", "9")):
        mosq.pub(topic, value)
        watch.expect(op="message", topic=topic, payload=int(value))
    c = gate.ws()
    c.send({"op": "subscribe", "id": 1, "topics": ["it/w/#"]})
    c.expect(op="ok", id=1)
    snap = c.frames(timeout=1.0, op="message")
    got = sorted((m["topic"], m["payload"], m["retain"]) for m in snap)
    check_eq(got, [("it/w/a", 3, False), ("it/w/b/c", 2, False),
                   ("it/w/r", "kept", True)],
             "it/w/#: the newest value of each topic, retain flags kept")
    d = gate.ws()
    d.send({"op": "subscribe", "id": 2, "topics": ["it/w/+"]})
    d.expect(op="ok", id=2)
    got = sorted((m["topic"], m["payload"])
                 for m in d.frames(timeout=1.0, op="message"))
    check_eq(got, [("it/w/a", 3), ("it/w/r", "kept")],
             "it/w/+: only the topics one level down")


def t_resume_since():
    """subscribe with since: exactly the missed messages, no snapshot;
    a foreign id: reset then the snapshot"""
    mosq, gate = setup()
    a = gate.ws()
    a.subscribe("it/s/#")
    for i in range(3):
        mosq.pub("it/s/x", str(i))
    seen = a.messages(3, topic="it/s/x")
    last = seen[-1]["event"]
    a.close()
    for i in range(3, 8):
        mosq.pub("it/s/x", str(i))
    b = gate.ws()
    b.send({"op": "subscribe", "id": 1, "topics": ["it/s/#"], "since": last})
    b.expect(op="ok", id=1)
    msgs = b.messages(5, topic="it/s/x")
    check_eq([m["payload"] for m in msgs], [3, 4, 5, 6, 7],
             "since: exactly the 5 messages after the id, in order")
    check_eq(b.frames(timeout=1.0, op="message"), [],
             "since: no snapshot and no duplicates")
    check_eq(b.frames(timeout=0.1, op="reset"), [], "since: no reset")
    epoch, _ = event_seq(last)
    foreign = "%d-%d" % (epoch - 1000, 1)
    c = gate.ws()
    c.send({"op": "subscribe", "id": 2, "topics": ["it/s/#"],
            "since": foreign})
    c.expect(op="ok", id=2)
    frames = c.frames(timeout=1.5)
    check_eq([f["op"] for f in frames], ["reset", "message"],
             "foreign id: reset, then the snapshot, nothing else")
    check(isinstance(frames[0].get("reason"), str),
          "reset carries a reason", frames[0])
    check_eq((frames[1]["topic"], frames[1]["payload"]), ("it/s/x", 7),
             "the snapshot is the last value (7)")
    b.ping()
    c.ping()


if __name__ == "__main__":
    run([t_hello, t_subscribe_ok, t_retained_snapshot, t_live_event_ids,
         t_unsubscribe, t_ping, t_publish_payloads,
         t_broker_payload_encoding, t_snapshot_false, t_wildcard_last_values,
         t_resume_since])
