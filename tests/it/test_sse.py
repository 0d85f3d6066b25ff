#!/usr/bin/env python3
"""test_sse.py - GET /events (Server-Sent Events) as PROTOCOL.md says:
stream headers and the retry line, events with id and one JSON data
line whatever bytes the payload holds, snapshot=0, several topic=
parameters, 400/403 before the stream, resume by Last-Event-ID header
or lastEventId parameter (header wins), reset for ids the history does
not cover, keepalive comments."""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, check, check_eq,  # noqa: E402
                        event_seq, run)

FIELDS = {"id", "data", "event", "retry"}


def setup(**kw):
    mosq = Mosquitto()
    return mosq, Mqgate(mosq, **kw)


def data_events(blocks):
    return [b for b in blocks if b.data is not None]


def check_block(b, what):
    """An event block holds only known fields and one data line."""
    names = [k for k, _ in b.lines if k != ""]
    check(set(names) <= FIELDS, "%s: only id/event/data/retry fields" % what,
          b.lines)
    check_eq(names.count("data"), 1, "%s: exactly one data line" % what)


def t_stream_headers():
    """200, text/event-stream, no-cache, X-Accel-Buffering: no, a retry:
    line first, then events with id and JSON data"""
    mosq, gate = setup()
    s = gate.sse(["it/h/#"])
    check_eq(s.status, 200, "GET /events answers 200")
    ct = s.headers.get("content-type") or ""
    check(ct.split(";")[0].strip() == "text/event-stream",
          "Content-Type: text/event-stream", ct)
    check("no-cache" in (s.headers.get("cache-control") or ""),
          "Cache-Control: no-cache", s.headers.get("cache-control"))
    check_eq((s.headers.get("x-accel-buffering") or "").lower(), "no",
             "X-Accel-Buffering: no")
    first = s.next(timeout=3)
    check(first is not None and first.lines and first.lines[0][0] ==
          "retry" and first.lines[0][1].isdigit(),
          "the stream starts with a retry: line", first)
    mosq.pub("it/h/a", "1")
    mosq.pub("it/h/b", '{"k":"v"}')
    evs = data_events(s.events(2))
    for b, (topic, payload) in zip(evs, (("it/h/a", 1),
                                         ("it/h/b", {"k": "v"}))):
        check_block(b, topic)
        event_seq(b.id)
        check_eq(b.event, "message", "%s: a plain message event" % topic)
        d = b.json()
        check_eq((d.get("topic"), d.get("payload")), (topic, payload),
                 "%s: data carries topic and payload" % topic)
        check(d.get("retain") is False and d.get("qos") in (0, 1) and
              isinstance(d.get("ts"), int), "%s: retain, qos, ts" % topic,
              d)
    a, b = (event_seq(e.id)[1] for e in evs)
    check_eq(b, a + 1, "consecutive event ids")


def t_snapshot_param():
    """the snapshot comes by default (retain:true); snapshot=0 leaves it
    out and live messages still come"""
    mosq = Mosquitto()
    mosq.pub("it/sn/a", "kept", retain=True)
    gate = Mqgate(mosq)
    s = gate.sse(["it/sn/#"])
    ev = s.events(1)[0]
    d = ev.json()
    check_eq((d["topic"], d["payload"], d["retain"]), ("it/sn/a", "kept",
                                                       True),
             "default: the retained value first, retain:true")
    n = gate.sse(["it/sn/#"], query={"snapshot": "0"})
    check_eq(n.status, 200, "snapshot=0: 200")
    check_eq(data_events(n.collect(1.0)), [], "snapshot=0: no snapshot")
    mosq.pub("it/sn/a", "live")
    ev = n.events(1)[0]
    check_eq(ev.json()["payload"], "live", "snapshot=0: live messages come")


def t_multiple_topics():
    """several topic= parameters: each filter delivers, nothing else"""
    mosq, gate = setup()
    s = gate.sse(["it/m/a", "it/m/b/#", "it/m/+/z"])
    check_eq(s.status, 200, "three topic= parameters: 200")
    for t in ("it/m/a", "it/m/q", "it/m/b/c", "it/m/x/z", "it/n/a"):
        mosq.pub(t, "1")
    mosq.pub("it/m/end", "0")
    got = [e.json()["topic"] for e in data_events(s.collect(1.5))]
    check_eq(sorted(got), ["it/m/a", "it/m/b/c", "it/m/x/z"],
             "exactly the matching topics, once each")


def t_refused():
    """a bad filter -> 400, a filter outside the walls or the ACL -> 403,
    each with a JSON body, before any stream"""
    mosq = Mosquitto()
    gate = Mqgate(mosq, auth={"anonymous_subscribe": "it/ok/#"},
                  broker={"topic": "it/# both 1"})
    for q, st, code, what in (
            ({"topic": "it/ok/#/x"}, 400, "bad_request", "# not last"),
            ({"topic": "it/ok/a+"}, 400, "bad_request", "+ inside a level"),
            ({}, 400, "bad_request", "no topic= at all"),
            ({"topic": "it/ok/a", "snapshot": "maybe"}, 400, "bad_request",
             "snapshot=maybe"),
            ({"topic": "it/no/x"}, 403, "forbidden", "outside the ACL"),
            ({"topic": "zzz/#"}, 403, "forbidden", "outside the walls"),
            ({"topic": ["it/ok/a", "it/no/b"]}, 403, "forbidden",
             "one of two filters not allowed")):
        topics = q.pop("topic", [])
        topics = topics if isinstance(topics, list) else [topics]
        s = gate.sse(topics, query=q)
        check_eq(s.status, st, "%s -> %d" % (what, st))
        ct = (s.headers.get("content-type") or "").split(";")[0]
        check_eq(ct, "application/json", "%s: a JSON body" % what)
        try:
            body = json.loads(s.body)
        except ValueError:
            body = s.body
        check(isinstance(body, dict) and body.get("error") == code and
              isinstance(body.get("message"), str),
              '%s: {"error":"%s","message":...}' % (what, code), body)
    ok = gate.sse(["it/ok/a"])
    check_eq(ok.status, 200, "an allowed filter still streams")


def t_no_raw_line_breaks():
    """payloads with CR, LF, U+2028/2029 never break an event: one data
    line of JSON that round-trips"""
    mosq, gate = setup()
    s = gate.sse(["it/crlf/#"])
    cases = [
        ("text", b"line1\r\nline2\rline3\nend",
         "line1\r\nline2\rline3\nend"),
        ("separators", "a\u2028b\u2029c\u0085d".encode(),
         "a\u2028b\u2029c\u0085d"),
        ("JSON with CRLF between tokens", b'{"a":\r\n 1,\n"b":"x\\ny"}',
         {"a": 1, "b": "x\ny"}),
        ("JSON string with U+2028", '"sep\u2028ara"'.encode(),
         "sep\u2028ara"),
        ("lone CR at the end", b"tail\r", "tail\r"),
        ("only newlines", b"\n\n\n", "\n\n\n"),
    ]
    for i, (what, raw, want) in enumerate(cases):
        mosq.pub("it/crlf/%d" % i, raw)
    mosq.pub("it/crlf/\u2028topic", "t")
    evs = s.events(len(cases) + 1)
    for i, (what, raw, want) in enumerate(cases):
        b = evs[i]
        check_block(b, what)
        d = b.json()
        check_eq(d.get("topic"), "it/crlf/%d" % i, what + ": topic")
        got = d.get("payload")
        check(got == want and type(got) is type(want),
              what + ": payload round-trips", got)
    b = evs[-1]
    check_block(b, "a topic with U+2028")
    check_eq(b.json()["topic"], "it/crlf/\u2028topic",
             "a topic with U+2028 round-trips")
    event_seq(evs[-1].id)


def t_resume():
    """Last-Event-ID: exactly the messages published while away, in
    order, no duplicates, no snapshot; lastEventId= works; the header
    wins over the parameter"""
    mosq, gate = setup()
    s = gate.sse(["it/r/#"])
    for i in range(3):
        mosq.pub("it/r/x", str(i))
    seen = s.events(3)
    last = seen[-1].id
    _, last_seq = event_seq(last)
    epoch = event_seq(last)[0]
    s.close()
    for i in range(100, 150):
        mosq.pub("it/r/x", str(i))

    def exact(stream, what):
        evs = stream.events(50, timeout=10)
        check_eq([e.json()["payload"] for e in evs], list(range(100, 150)),
                 what + ": the 50 messages published while away, in order")
        seqs = [event_seq(e.id)[1] for e in evs]
        check_eq(seqs, list(range(last_seq + 1, last_seq + 51)),
                 what + ": ids follow the last one without a gap")
        check(all(e.event == "message" for e in evs), what + ": no reset",
              [e.event for e in evs])
        rest = data_events(stream.collect(1.0))
        check_eq(rest, [], what + ": nothing more (no snapshot, no "
                 "duplicates)")
        stream.close()

    exact(gate.sse(["it/r/#"], headers={"Last-Event-ID": last}),
          "Last-Event-ID header")
    exact(gate.sse(["it/r/#"], query={"lastEventId": last}),
          "lastEventId parameter")
    foreign = "%d-%d" % (epoch - 5000, 3)
    exact(gate.sse(["it/r/#"], query={"lastEventId": foreign},
                   headers={"Last-Event-ID": last}),
          "header (valid) and parameter (foreign)")
    w = gate.sse(["it/r/#"], query={"lastEventId": last},
                 headers={"Last-Event-ID": foreign})
    b = w.events(1)[0]
    check_eq(b.event, "reset", "header (foreign) and parameter (valid): "
             "the header wins, reset")


def expect_reset_then_snapshot(s, what, last_value):
    blocks = data_events(s.collect(1.5))
    check(len(blocks) >= 1 and blocks[0].event == "reset",
          what + ": event: reset first", blocks[:3])
    r = blocks[0].json()
    check(isinstance(r, dict) and isinstance(r.get("reason"), str),
          what + ': reset data {"reason":...}', blocks[0].data)
    rest = blocks[1:]
    check_eq([(b.event, b.json().get("topic"), b.json().get("payload"))
              for b in rest], [("message", "it/g/x", last_value)],
             what + ": then the snapshot (the last value), nothing else")


def t_reset():
    """an id older than the history, of another epoch, from the future
    or not an id at all -> event: reset, then the snapshot"""
    mosq, gate = setup(server={"history": "20"})
    s = gate.sse(["it/g/#"])
    mosq.pub("it/g/x", "0")
    first = s.events(1)[0].id
    epoch, seq = event_seq(first)
    for i in range(1, 51):
        mosq.pub("it/g/x", str(i))
    s.events(50)
    s.close()
    for what, eid in (("an id older than the history", first),
                      ("an id of another epoch", "%d-%d" % (epoch - 1,
                                                            seq + 10)),
                      ("an id from the future", "%d-%d" % (epoch,
                                                           seq + 100000)),
                      ("not an id", "banana")):
        r = gate.sse(["it/g/#"], headers={"Last-Event-ID": eid})
        check_eq(r.status, 200, what + ": 200")
        expect_reset_then_snapshot(r, what, 50)
        r.close()


def t_keepalive():
    """keepalive = 1s: comment lines arrive on an idle stream, and the
    stream keeps working"""
    mosq, gate = setup(server={"keepalive": "1s"})
    s = gate.sse(["it/k/#"])
    t0 = time.monotonic()
    comments = []
    # The daemon's tick is one second: two keepalives take up to 4 s.
    while time.monotonic() - t0 < 5.5 and len(comments) < 3:
        b = s.next(timeout=0.5)
        if b is not None:
            comments += b.comments
    check(len(comments) >= 2, "at least 2 comment lines in 5.5 s idle",
          comments)
    check(any("keepalive" in c for c in comments),
          "a ': keepalive' comment", comments)
    mosq.pub("it/k/a", "1")
    ev = s.events(1)[0]
    check_eq(ev.json()["payload"], 1, "the stream still delivers")


if __name__ == "__main__":
    run([t_stream_headers, t_snapshot_param, t_multiple_topics, t_refused,
         t_no_raw_line_breaks, t_resume, t_reset, t_keepalive])
