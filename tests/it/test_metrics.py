#!/usr/bin/env python3
"""test_metrics.py - the operational metrics of /metrics beyond the
counters test_http.py checks: the delivery latency histogram counts live
deliveries only (not snapshots, not replays from history), its buckets
are cumulative and end in +Inf = count; bytes received per broker; queue
depth gauges."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, check, check_eq, run,  # noqa
                        wait_for)

H = "mqgate_delivery_latency_seconds"


def histogram(gate):
    m = gate.metrics()
    buckets = sorted(((float(k.split('le="')[1].rstrip('"}'))
                       if "+Inf" not in k else float("inf")), v)
                     for k, v in m.items() if k.startswith(H + "_bucket"))
    return m, buckets


def t_latency_live_only():
    """latency histogram: live deliveries counted, snapshots and replays not"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    for i in range(3):
        mosq.pub("it/m/r%d" % i, "snap", retain=True)
    first = gate.ws()
    first.subscribe("it/m/#", snapshot=False)
    mosq.pub("it/m/go", "x")
    last = first.expect(op="message", topic="it/m/go")["event"]
    base = gate.metric(H + "_count")

    c = gate.ws()
    c.subscribe("it/m/#")                     # snapshot of 4 topics
    for _ in range(4):
        c.expect(op="message")
    check_eq(gate.metric(H + "_count"), base,
             "a snapshot adds nothing to the latency count")

    for i in range(5):
        mosq.pub("it/m/live", str(i))
    for i in range(5):
        c.expect(op="message", topic="it/m/live", payload=i)
        first.expect(op="message", topic="it/m/live", payload=i)
    wait_for("10 live deliveries counted",
             lambda: gate.metric(H + "_count") == base + 10)

    r = gate.ws()
    r.subscribe("it/m/#", since=last)         # replays the 5 live ones
    for i in range(5):
        r.expect(op="message", topic="it/m/live", payload=i)
    check_eq(gate.metric(H + "_count"), base + 10,
             "a replay adds nothing to the latency count")

    m, buckets = histogram(gate)
    counts = [v for _, v in buckets]
    check(counts == sorted(counts), "buckets are cumulative", buckets)
    check_eq(buckets[-1], (float("inf"), m[H + "_count"]),
             "the +Inf bucket equals the count")
    check(0 <= m[H + "_sum"] < 10 * m[H + "_count"],
          "the sum is plausible (seconds)", m[H + "_sum"])
    check(buckets[0][0] <= 0.001 and len(buckets) >= 10,
          "sub-millisecond to second buckets", buckets)


def t_bytes_in_and_queues():
    """bytes received per broker; queue depth gauges"""
    mosq = Mosquitto()
    gate = Mqgate(mosq)
    b0 = gate.metric("mqgate_bytes_in_total", broker="home")
    c = gate.ws()
    c.subscribe("it/q/#")
    mosq.pub("it/q/a", "x" * 1000)
    c.expect(op="message", topic="it/q/a")
    check_eq(gate.metric("mqgate_bytes_in_total", broker="home") - b0, 1000,
             "1000 payload bytes in from broker home")
    m = gate.metrics()
    check("mqgate_queued_messages" in m and "mqgate_queued_messages_max" in m,
          "queue depth gauges are present")
    check_eq(m["mqgate_queued_messages"], 0, "nothing waits in any queue")


if __name__ == "__main__":
    run([t_latency_live_only, t_bytes_in_and_queues])
