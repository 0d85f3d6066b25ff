#!/usr/bin/env python3
"""test_slow.py - a client that never reads (small socket buffer) beside
one that reads normally, on a fast topic. slow_client = disconnect closes
the slow one; drop_oldest keeps serving it (newest messages kept). In
both cases the reading client loses nothing (exact event-id continuity)
and mqgate_drops_total moves."""

import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, WsClosed, check, check_eq,  # noqa
                        event_seq, run, say, wait_for)

MIN_N = 320         # messages at least: 5 MB
MAX_N = 2560        # at most: 40 MB, far over any socket buffer
SIZE = 16 * 1024    # payload bytes
BATCH = 20          # the fast client catches up after each batch
SERVER = {"queue": "50", "queue_bytes": "2M", "history": "1000",
          "keepalive": "30s"}


def payload(i):
    return ("%06d|" % i + "x" * (SIZE - 7)).encode()


def index_of(m):
    return int(m["payload"].split("|", 1)[0])


def load(mosq, fast, done):
    """Publishes batches until done() holds (and at least MIN_N messages
    went out) or MAX_N is reached; the fast client reads each batch before
    the next. Returns the fast client's messages."""
    pub = mosq.client()
    got = []
    try:
        for start in range(0, MAX_N, BATCH):
            for i in range(start, start + BATCH):
                pub.publish("it/f/x", payload(i), qos=0)
            pub.publish("it/f/sync", b"1", qos=1)   # broker has them all
            got += fast.messages(BATCH, topic="it/f/x", timeout=15)
            if len(got) >= MIN_N and done():
                break
    finally:
        pub.close()
    say("  (%d messages of %d bytes published)" % (len(got), SIZE))
    return got


def check_fast(got, n, label):
    idx = [index_of(m) for m in got]
    check_eq(idx, list(range(n)), "%s: the reading client got all %d "
             "messages in order" % (label, n))
    # Event ids count every message from the broker, the it/f/sync one
    # published after each batch included: the ids of it/f/x step by one
    # inside a batch and by two across a batch boundary, nothing else.
    seqs = [event_seq(m["event"])[1] for m in got]
    steps = [b - a for a, b in zip(seqs, seqs[1:])]
    want = [2 if (i + 1) % BATCH == 0 else 1 for i in range(len(steps))]
    check_eq(steps, want, "%s: its event ids step by one, and by two over "
             "each sync message" % label)


def clients(gate):
    return gate.metric("mqgate_clients", protocol="ws")


def setup(policy):
    mosq = Mosquitto()
    gate = Mqgate(mosq, server=dict(SERVER, slow_client=policy))
    fast = gate.ws(timeout=15)
    fast.subscribe("it/f/x")
    slow = gate.ws(sockopt=((socket.SOL_SOCKET, socket.SO_RCVBUF, 4096),))
    slow.subscribe("it/f/x")
    wait_for("2 WebSocket clients", lambda: clients(gate) == 2)
    return mosq, gate, fast, slow


def t_disconnect():
    """slow_client = disconnect: the slow client is closed, the fast one
    loses nothing"""
    mosq, gate, fast, slow = setup("disconnect")
    d0 = gate.metric("mqgate_drops_total", reason="slow_disconnect")
    got = load(mosq, fast, lambda: gate.metric(
        "mqgate_drops_total", reason="slow_disconnect") > d0)
    n = len(got)
    check_fast(got, n, "disconnect")
    wait_for("the slow client is gone (clients{ws} = 1)",
             lambda: clients(gate) == 1, timeout=15)
    say("  ok   the slow client was disconnected")
    d1 = gate.metric("mqgate_drops_total", reason="slow_disconnect")
    check(d1 >= d0 + 1, "mqgate_drops_total{reason=slow_disconnect} moved",
          (d0, d1))
    try:
        closed = slow.wait_closed(timeout=15)
    except AssertionError as e:
        raise AssertionError("reading the slow client to its end: %s" % e)
    check(closed.code in (None, 1008),
          "the slow client's connection ended (close code %s, %r)" % (
              closed.code, closed.reason), closed.code)
    if closed.code is None:
        say("  note the daemon closed the socket without a close frame "
            "reaching the client")
    fast.ping()
    mosq.pub("it/f/x", payload(n))
    m = fast.expect(op="message", topic="it/f/x")
    check_eq(index_of(m), n, "the fast client is still served")


def t_drop_oldest():
    """slow_client = drop_oldest: the slow client stays and gets the
    newest messages; the fast one loses nothing"""
    mosq, gate, fast, slow = setup("drop_oldest")
    q0 = gate.metric("mqgate_drops_total", reason="queue_full")
    got = load(mosq, fast, lambda: gate.metric(
        "mqgate_drops_total", reason="queue_full") > q0)
    n = len(got)
    check_fast(got, n, "drop_oldest")
    q1 = gate.metric("mqgate_drops_total", reason="queue_full")
    check(q1 > q0, "mqgate_drops_total{reason=queue_full} moved", (q0, q1))
    check_eq(clients(gate), 2.0, "both clients still connected")
    # Now the slow client reads everything it was left.
    seen = []
    end = time.monotonic() + 30
    while time.monotonic() < end:
        f = slow.recv(2.0)
        if f is None:
            break
        if f.get("op") == "message":
            seen.append(f)
            if index_of(f) == n - 1:
                break
    idx = [index_of(m) for m in seen]
    check(idx and idx[-1] == n - 1,
          "the slow client gets the newest message (%d)" % (n - 1),
          idx[-5:])
    check(len(idx) < n, "the slow client lost some messages (%d of %d)" %
          (len(idx), n))
    check(all(b > a for a, b in zip(idx, idx[1:])),
          "what it got is in order without duplicates", idx)
    try:
        slow.ping(timeout=10)
    except WsClosed as e:
        raise AssertionError("drop_oldest closed the slow client: %s" % e)
    say("  ok   the slow client is still served")
    fast.ping()


if __name__ == "__main__":
    run([t_disconnect, t_drop_oldest])
