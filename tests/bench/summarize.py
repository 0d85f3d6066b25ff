#!/usr/bin/python3
"""summarize.py - turns the loadgen lines run.sh collects (raw.txt) into
Markdown tables: median and range over the runs of each workload, target
and client count, ratios against the better peer, and the targets of the
benchmark issue checked against the medians.

  summarize.py [--machine machine.txt] [--before raw-before.txt] raw.txt
                                                  the tables; mqgate rows of
                                                  an earlier run appear as
                                                  mqgate-ws@before etc.
  summarize.py --half-rate N raw.txt              half of mqgate's max
                                                  publish rate at N clients
  summarize.py --half-peer-rate N raw.txt         half of the better peer's
                                                  max publish rate at N
"""

import re
import statistics
import sys

BEFORE = "@before"
MQGATE = ("mqgate-ws", "mqgate-sse", "mqgate-ws" + BEFORE, "mqgate-sse" + BEFORE)
PEERS = ("mqtt-ws", "nchan-ws", "nchan-sse")
TARGETS = MQGATE + PEERS


def parse(path, runs=None, suffix=""):
    """{(workload, target, n): [ {key: float|str}, ... ]}; mqgate targets
    get the suffix (peers of an earlier run are left out)."""
    runs = {} if runs is None else runs
    with open(path) as f:
        for line in f:
            m = re.match(r"^(\w+):([\w-]+):(\d+):(\d+): (.*)$", line.strip())
            if not m:
                continue
            w, t, n, _, rest = m.groups()
            if suffix:
                if not t.startswith("mqgate-"):
                    continue
                t += suffix
            rec = {}
            if rest.strip() == "failed":
                rec["failed"] = 1.0
            for k, v in re.findall(r"(\w+)=(\S+)", rest):
                v = v[:-2] if v.endswith("/s") else v
                try:
                    rec[k] = float(v)
                except ValueError:
                    rec[k] = v
            # deliveries per second of server CPU: less sensitive than
            # msgs/s to other load on a shared machine
            if rec.get("server_cpu_s", 0) > 0 and "delivered" in rec:
                rec["per_cpu"] = rec["delivered"] / rec["server_cpu_s"]
            runs.setdefault((w, t, int(n)), []).append(rec)
    return runs


def values(runs, key, w, t, n):
    return [r[key] for r in runs.get((w, t, n), [])
            if isinstance(r.get(key), float) and not r.get("failed")]


def median(runs, key, w, t, n):
    v = values(runs, key, w, t, n)
    return statistics.median(v) if v else None


def fmt_num(x, digits=0):
    if x is None:
        return "-"
    if digits == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, digits)


def cell(runs, key, w, t, n, digits=0):
    """median [min-max] (k of k runs)"""
    v = values(runs, key, w, t, n)
    total = len(runs.get((w, t, n), []))
    if not v:
        return "failed" if total else "-"
    s = fmt_num(statistics.median(v), digits)
    if len(v) > 1:
        s += " [{}-{}]".format(fmt_num(min(v), digits), fmt_num(max(v), digits))
    if len(v) < total:
        s += " ({} of {} runs)".format(len(v), total)
    return s


def sizes(runs, w):
    return sorted({n for (ww, _, n) in runs if ww == w})


def best_peer(runs, key, w, n, higher=True, peers=PEERS):
    best = None
    for p in peers:
        m = median(runs, key, w, p, n)
        if m is None:
            continue
        if best is None or (m > best[1] if higher else m < best[1]):
            best = (p, m)
    return best


def ratio(x, best, higher=True):
    if x is None or best is None or not best[1]:
        return "-"
    r = x / best[1] if higher else best[1] / x if x else None
    return "-" if r is None else "{:.2f}x {}".format(r, best[0])


def table(head, rows):
    out = ["| " + " | ".join(head) + " |",
           "|" + "|".join(" --- " for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def present(runs, w, n):
    return [t for t in TARGETS if (w, t, n) in runs]


def half_rate(runs, n):
    rates = [median(runs, "rate", "fanout", t, n) for t in MQGATE[:2]]
    rates = [r for r in rates if r]
    if not rates:
        return 0
    return int(min(rates) / n / 2)


def half_peer_rate(runs, n):
    best = best_peer(runs, "rate", "fanout", n)
    if not best:
        return 0
    return max(1, int(best[1] / n / 2))


def fixed_section(runs, w, n, title, verdicts):
    """the table of one fixed-rate workload; a verdict line per mqgate
    transport when verdicts is a list"""
    rows = []
    offered = None
    for t in present(runs, w, n):
        p99 = median(runs, "p99_ms", w, t, n)
        rows.append([t, cell(runs, "pub_rate", w, t, n),
                     cell(runs, "p50_ms", w, t, n, 2),
                     cell(runs, "p99_ms", w, t, n, 2),
                     cell(runs, "max_ms", w, t, n, 2),
                     cell(runs, "lost", w, t, n),
                     ratio(p99, best_peer(runs, "p99_ms", w, n, False), False)
                     if t in MQGATE else ""])
        if not t.endswith(BEFORE):
            offered = offered or median(runs, "pub_rate", w, t, n)
    out = ["## Fixed rate 1 -> {:,} (about {} msgs/s offered, {})\n".format(
        n, fmt_num(offered), title),
        table(["target", "offered msgs/s", "p50 ms", "p99 ms", "max ms", "lost",
               "p99 vs best peer (>1 = mqgate lower)"], rows), ""]
    best = best_peer(runs, "p99_ms", w, n, False)
    for t in MQGATE:
        p99 = median(runs, "p99_ms", w, t, n)
        if verdicts is None or p99 is None or best is None:
            continue
        verdicts.append(
            "- p99 at {}, 1->{:,} {}: {:.2f} ms vs best peer {} {:.2f} ms: "
            "{}".format(title, n, t, p99, best[0], best[1],
                        "met" if p99 <= best[1] else "NOT met"))
    return out


def cpu_per_msg_section(runs, w, title, note, column, verdict_fmt, verdicts):
    """the server-CPU-per-message table of a workload run at several sizes,
    and a verdict per mqgate transport on its growth from the smallest
    size to the largest (flat: at most 1.25x)"""
    ns = sizes(runs, w)
    if not ns:
        return []
    rows = []
    for t in TARGETS:
        if not any((w, t, n) in runs for n in ns):
            continue
        rows.append([t] + [cell(runs, "server_us_per_msg", w, t, n, 2)
                           for n in ns]
                    + [" / ".join(cell(runs, "lost", w, t, n) for n in ns)])
        per = [median(runs, "server_us_per_msg", w, t, n) for n in ns]
        if t in MQGATE and all(p is not None for p in per) and per[0]:
            growth = per[-1] / per[0]
            verdicts.append(verdict_fmt.format(
                t=t, per=" / ".join("{:.2f}".format(p) for p in per),
                sizes=" / ".join(fmt_num(n) for n in ns), growth=growth,
                verdict="flat" if growth <= 1.25 else "NOT flat"))
    return ["## {}\n".format(title), note + "\n",
            table(["target"] + [column.format(n) for n in ns] + ["lost"], rows),
            ""]


def main(argv):
    machine = before = None
    if len(argv) > 2 and argv[1] == "--half-rate":
        print(half_rate(parse(argv[3]), int(argv[2])))
        return 0
    if len(argv) > 2 and argv[1] == "--half-peer-rate":
        print(half_peer_rate(parse(argv[3]), int(argv[2])))
        return 0
    if len(argv) > 2 and argv[1] == "--machine":
        machine = argv[2]
        argv = argv[2:]
    if len(argv) > 2 and argv[1] == "--before":
        before = argv[2]
        argv = argv[2:]
    runs = parse(argv[1])
    if before:
        parse(before, runs, BEFORE)
    out = []
    if machine:
        out.append("## Machine\n")
        with open(machine) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    out.append("- {}: {}".format(k, v))
        out.append("")
    verdicts = []

    for n in sizes(runs, "fanout"):
        rows = []
        for t in present(runs, "fanout", n):
            m = median(runs, "rate", "fanout", t, n)
            rows.append([t, cell(runs, "rate", "fanout", t, n),
                         cell(runs, "lost", "fanout", t, n),
                         cell(runs, "reordered", "fanout", t, n),
                         cell(runs, "p99_ms", "fanout", t, n, 1),
                         cell(runs, "server_cpu_s", "fanout", t, n, 2),
                         cell(runs, "per_cpu", "fanout", t, n),
                         cell(runs, "loadgen_cpu_s", "fanout", t, n, 2),
                         ratio(m, best_peer(runs, "rate", "fanout", n))
                         if t in MQGATE else ""])
        out.append("## Fan-out 1 -> {:,}, as fast as possible\n".format(n))
        out.append(table(["target", "delivered msgs/s", "lost", "reordered",
                          "p99 ms", "server CPU s", "deliveries per CPU-s",
                          "loadgen CPU s",
                          "vs better peer"], rows))
        out.append("")
        if n == 1000:
            best = best_peer(runs, "rate", "fanout", n)
            for t in MQGATE:
                m = median(runs, "rate", "fanout", t, n)
                lost = median(runs, "lost", "fanout", t, n)
                if m is None or best is None:
                    continue
                verdicts.append(
                    "- fan-out 1->1,000 {}: {:.2f}x the better peer ({} {}/s), "
                    "target 3x: {}; median lost {}".format(
                        t, m / best[1], best[0], fmt_num(best[1]),
                        "met" if m >= 3 * best[1] else "NOT met",
                        fmt_num(lost)))

    for n in sizes(runs, "fixed"):
        out.extend(fixed_section(runs, "fixed", n, "half of mqgate's max rate",
                                 verdicts))
    for n in sizes(runs, "fixedpeer"):
        out.extend(fixed_section(runs, "fixedpeer", n,
                                 "half of the better peer's max rate", None))

    if sizes(runs, "idle"):
        rows = []
        for n in sizes(runs, "idle"):
            for t in present(runs, "idle", n):
                kb = median(runs, "per_client_kb", "idle", t, n)
                rows.append([t, fmt_num(n), cell(runs, "per_client_kb", "idle", t, n, 2),
                             cell(runs, "server_rss_kb", "idle", t, n),
                             cell(runs, "dead", "idle", t, n)])
                if t in MQGATE and kb is not None:
                    verdicts.append(
                        "- idle {} client: {:.2f} KB of server RSS each, target "
                        "at most 2 KB: {}".format(t, kb, "met" if kb <= 2 else "NOT met"))
        out.append("## Idle clients: server RSS per client\n")
        out.append(table(["target", "clients", "KB per client", "server RSS KB",
                          "dropped"], rows))
        out.append("")

    if sizes(runs, "connect"):
        rows = []
        for n in sizes(runs, "connect"):
            for t in present(runs, "connect", n):
                m = median(runs, "connect_rate", "connect", t, n)
                rows.append([t, fmt_num(n), cell(runs, "connect_rate", "connect", t, n),
                             ratio(m, best_peer(runs, "connect_rate", "connect", n))
                             if t in MQGATE else ""])
        out.append("## Connection rate (handshake + subscribe + reply)\n")
        out.append(table(["target", "clients", "connections/s", "vs better peer"], rows))
        out.append("")

    out.extend(cpu_per_msg_section(
        runs, "distinct", "Distinct wildcard filters: server CPU per message",
        "Client i subscribes `bench/t/i/+` (nchan: the exact channel "
        "`bench/t/i/x`, it has no wildcards); each message matches one "
        "client.", "us/msg, {:,} filters",
        "- matching {t}: {per} us of server CPU per message at {sizes} "
        "distinct filters ({growth:.2f}x the smallest): {verdict}", verdicts))
    out.extend(cpu_per_msg_section(
        runs, "filters",
        "Matching: one client, K wildcard filters, server CPU per message",
        "The client subscribes `bench/t/j/+` for j < K; message n goes to "
        "`bench/t/(n mod K)/x`, so every message is one delivery whatever K.",
        "us/msg, K = {:,}",
        "- matching, one {t} client with {sizes} filters: {per} us of server "
        "CPU per message ({growth:.2f}x the smallest): {verdict}", verdicts))

    if sizes(runs, "resume"):
        rows = []
        for n in sizes(runs, "resume"):
            for t in present(runs, "resume", n):
                rows.append([t, fmt_num(n),
                             fmt_num(median(runs, "replay_per_client", "resume", t, n)),
                             cell(runs, "resume_s", "resume", t, n, 3),
                             cell(runs, "replay_rate", "resume", t, n),
                             cell(runs, "lost", "resume", t, n),
                             cell(runs, "reordered", "resume", t, n)])
        out.append("## Resume: clients reconnecting at once with a last event id\n")
        out.append(table(["target", "clients", "messages each", "seconds to all caught up",
                          "replayed msgs/s", "lost", "duplicated/reordered"], rows))
        out.append("")

    if verdicts:
        out.append("## Targets (medians)\n")
        out.extend(verdicts)
        out.append("")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
