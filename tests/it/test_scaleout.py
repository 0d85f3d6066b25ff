#!/usr/bin/env python3
"""test_scaleout.py - two mqgate instances on one mosquitto behind
haproxy (Debian's package), the deployment doc/HACKING.md and the README
describe: mqgate holds no state a cluster must share, the broker is the
distributed engine. Clients on either instance get every message; a
client whose instance goes away reconnects through haproxy to the other
one with its last event id, gets `reset` (the id is another run's) and
the snapshot, and so holds the full current state, nothing missing; an
SSE client does the same with Last-Event-ID."""

import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, SseClient, TempDir, WsClient,  # noqa
                        _register, check, check_eq, event_seq, free_port,
                        http_request, run, say, skip, wait_for)

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"

CFG = """global
    maxconn 1000
defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
frontend gate
    bind 127.0.0.1:{port}
    default_backend mqgate
backend mqgate
    balance roundrobin
    option httpchk GET /healthz
    default-server inter 300ms fall 1 rise 1
    server one 127.0.0.1:{p1} check
    server two 127.0.0.1:{p2} check
"""


class Haproxy:
    def __init__(self, p1, p2):
        if not os.access(HAPROXY, os.X_OK):
            skip("haproxy is not installed")
        self.port = free_port()
        self.dir = TempDir("mqgate-it-haproxy-")
        cfg = self.dir.write("haproxy.cfg", CFG.format(port=self.port,
                                                       p1=p1, p2=p2))
        self.log = open(os.path.join(self.dir.path, "haproxy.log"), "wb")
        self.proc = subprocess.Popen([HAPROXY, "-db", "-f", cfg],
                                     stdout=self.log, stderr=self.log)
        _register(self)
        wait_for("haproxy answers /healthz",
                 lambda: self._healthy(), timeout=10)

    def _healthy(self):
        try:
            return http_request(self.port, "GET", "/healthz",
                                timeout=1)[0] == 200
        except OSError:
            return False

    def dump(self):
        with open(os.path.join(self.dir.path, "haproxy.log"), "rb") as f:
            print("---- haproxy log ----\n" +
                  f.read().decode(errors="replace")[-4000:])

    def cleanup(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()

    def ws(self):
        return WsClient("ws://127.0.0.1:%d/ws" % self.port)

    def sse(self, topics, headers=None):
        return SseClient(self.port, topics, headers=headers)


def epoch_of(client):
    return client.hello["session"].split("-")[0]


def instance_epoch(gate):
    """The epoch of one instance, asked directly (not through haproxy)."""
    c = gate.ws()
    e = epoch_of(c)
    c.close()
    return e


def only_on(lb, epoch):
    """True when two fresh connections through haproxy both land on the
    instance with this epoch."""
    eps = []
    for _ in range(2):
        c = lb.ws()
        eps.append(epoch_of(c))
        c.close()
    return eps == [epoch, epoch]


def t_two_instances():
    """clients on both instances get every message; a moved client
    recovers the full current state"""
    mosq = Mosquitto()
    one, two = Mqgate(mosq), Mqgate(mosq)
    lb = Haproxy(one.port, two.port)
    clients = [lb.ws() for _ in range(4)]
    epochs = {epoch_of(c) for c in clients}
    check_eq(len(epochs), 2, "round robin put clients on both instances")
    for c in clients:
        c.subscribe("it/s/#")
    for i in range(10):
        mosq.pub("it/s/t%d" % (i % 5), str(i))
    for n, c in enumerate(clients):
        got = [c.expect(op="message")["payload"] for _ in range(10)]
        check_eq(got, list(range(10)), "client %d got all 10, in order" % n)
    say("  ok   4 clients over 2 instances: every message everywhere")

    # The clients of instance one lose it; they come back through haproxy.
    ep_one, ep_two = instance_epoch(one), instance_epoch(two)
    victims = [c for c in clients if epoch_of(c) == ep_one]
    check(victims, "some clients are on instance one")
    last = {}
    mosq.pub("it/s/t0", "while-moving")   # the state changes meanwhile
    for c in clients:
        m = c.expect(op="message", topic="it/s/t0", payload="while-moving")
        last[id(c)] = m["event"]
    one.stop()
    wait_for("haproxy sees instance one down",
             lambda: only_on(lb, ep_two), timeout=10)
    mosq.pub("it/s/t1", "after-move")
    for c in clients:
        if c not in victims:   # on two: two has ingested it
            c.expect(op="message", topic="it/s/t1", payload="after-move")
    for c in victims:
        moved = lb.ws()
        check_eq(epoch_of(moved), ep_two,
                 "the moved client lands on instance two")
        moved.subscribe("it/s/#", since=last[id(c)])
        r = moved.expect(op="reset")
        check_eq(r.get("reason"), "history_gap",
                 "an id of another instance gets reset")
        state = {}
        for _ in range(5):
            m = moved.expect(op="message")
            state[m["topic"]] = m["payload"]
        check_eq(state, {"it/s/t0": "while-moving", "it/s/t1": "after-move",
                         "it/s/t2": 7, "it/s/t3": 8, "it/s/t4": 9},
                 "the snapshot holds the current value of every topic")
    say("  ok   moved clients recovered the full current state")


def t_sse_moved():
    """an EventSource reconnecting with Last-Event-ID of the other
    instance gets reset and the snapshot"""
    mosq = Mosquitto()
    one, two = Mqgate(mosq), Mqgate(mosq)
    lb = Haproxy(one.port, two.port)
    mosq.pub("it/e/a", "A1")
    ep_two = instance_epoch(two)
    s = one.sse(["it/e/#"])
    ev = s.events(1)[0]
    one.stop()
    wait_for("haproxy routes to two only", lambda: only_on(lb, ep_two),
             timeout=10)
    # A watcher on instance two: once it has B1, two's cache has the
    # state the moved client must get (delivery from the broker is
    # asynchronous to the publisher's ack).
    watch = two.ws()
    watch.subscribe("it/e/#", snapshot=False)
    mosq.pub("it/e/a", "A2")
    mosq.pub("it/e/b", "B1")
    watch.expect(op="message", topic="it/e/b", payload="B1")
    s2 = lb.sse(["it/e/#"], headers={"Last-Event-ID": ev.id})
    evs = s2.events(3)
    check_eq(evs[0].field("event"), "reset", "first comes event: reset")
    got = sorted((e.json()["topic"], e.json()["payload"]) for e in evs[1:])
    check_eq(got, [("it/e/a", "A2"), ("it/e/b", "B1")],
             "then the current state")


if __name__ == "__main__":
    run([t_two_instances, t_sse_moved])
