#!/usr/bin/python3
"""sensor-sim.py - simulated room sensors for the mqgate demo.

Speaks MQTT 3.1.1 to a broker over a plain socket (standard library only)
and publishes, every interval, for each room:

    sensors/ROOM/climate   {"temperature": 21.4, "humidity": 43.8}
    sensors/ROOM/temp      21.4

with random-walk values, plus a retained sensors/status = "online" (the
will and a clean stop set it to "offline"). It subscribes to cmd/# and
prints each command it receives, so a publish from the dashboard shows up
here. Reconnects with a growing delay when the broker goes away; stops on
SIGTERM or SIGINT.

    tools/sensor-sim.py --port 1883 [--host 127.0.0.1] [--rooms a,b,c]
                        [--interval 1.0] [--count N] [--quiet]
"""

import argparse
import json
import os
import random
import select
import signal
import socket
import struct
import sys
import time

KEEPALIVE = 30


def _varint(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s):
    b = s.encode()
    return struct.pack("!H", len(b)) + b


def _packet(ptype_flags, body):
    return bytes([ptype_flags]) + _varint(len(body)) + body


class Client:
    """One MQTT 3.1.1 connection: CONNECT with a will, QoS 0 publishes,
    one QoS 0 subscription, incoming PUBLISH packets parsed."""

    def __init__(self, host, port, client_id):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = b""
        flags = 0x02 | 0x04 | 0x20  # clean session, will, will retain
        body = (_str("MQTT") + bytes([4, flags]) +
                struct.pack("!H", KEEPALIVE) + _str(client_id) +
                _str("sensors/status") + _str("offline"))
        self.sock.sendall(_packet(0x10, body))
        ptype, _, body = self.read_packet(5.0)
        if ptype != 2 or len(body) != 2 or body[1] != 0:
            raise ConnectionError("broker refused the connection")
        self.last_out = time.monotonic()

    def close(self):
        try:
            self.sock.sendall(_packet(0xE0, b""))  # DISCONNECT
        except OSError:
            pass
        self.sock.close()

    def publish(self, topic, payload, retain=False):
        if not isinstance(payload, bytes):
            payload = payload.encode()
        self.sock.sendall(_packet(0x30 | (1 if retain else 0),
                                  _str(topic) + payload))
        self.last_out = time.monotonic()

    def subscribe(self, topic):
        self.sock.sendall(_packet(0x82, struct.pack("!H", 1) + _str(topic) +
                                  b"\x00"))
        self.last_out = time.monotonic()

    def ping_if_idle(self):
        if time.monotonic() - self.last_out > KEEPALIVE / 2:
            self.sock.sendall(_packet(0xC0, b""))
            self.last_out = time.monotonic()

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.sock], [], [], left)
        if not r:
            return False
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("broker closed the connection")
        self.buf += data
        return True

    def read_packet(self, timeout):
        """(type, flags, body) of the next packet, or (None, 0, b"") when
        nothing complete arrives within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            n, mult = 0, 1
            for i in range(1, min(len(self.buf), 5)):
                n += (self.buf[i] & 0x7F) * mult
                mult *= 128
                if not self.buf[i] & 0x80:
                    end = i + 1 + n
                    if len(self.buf) >= end:
                        head, body = self.buf[0], self.buf[i + 1:end]
                        self.buf = self.buf[end:]
                        return head >> 4, head & 0x0F, body
                    break
            else:
                if len(self.buf) >= 5:
                    raise ConnectionError("malformed packet from broker")
            if not self._fill(deadline):
                return None, 0, b""


def parse_publish(flags, body):
    (tlen,) = struct.unpack("!H", body[:2])
    topic = body[2:2 + tlen].decode("utf-8", "replace")
    rest = body[2 + tlen:]
    if (flags >> 1) & 3:
        rest = rest[2:]  # packet id of a QoS 1/2 message
    return topic, rest


class Room:
    def __init__(self, name):
        self.name = name
        self.temp = random.uniform(19.0, 23.0)
        self.hum = random.uniform(35.0, 55.0)

    def step(self):
        self.temp = min(30.0, max(15.0, self.temp + random.gauss(0, 0.15)))
        self.hum = min(80.0, max(20.0, self.hum + random.gauss(0, 0.5)))


running = True


def _stop(signum, frame):
    global running
    running = False


def _sleep(seconds):
    """Sleeps, returning early once a signal asked to stop."""
    end = time.monotonic() + seconds
    while running and time.monotonic() < end:
        time.sleep(min(0.1, end - time.monotonic()))


def run(args):
    rooms = [Room(r) for r in args.rooms.split(",") if r]
    client_id = "sensor-sim-%d" % os.getpid()
    delay = 0.5
    sent_rounds = 0
    while running:
        try:
            c = Client(args.host, args.port, client_id)
        except (OSError, ConnectionError) as e:
            if not args.quiet:
                print("sensor-sim: %s:%d: %s; retrying in %.1f s"
                      % (args.host, args.port, e, delay), file=sys.stderr)
            _sleep(delay)
            delay = min(delay * 2, 10.0)
            continue
        delay = 0.5
        if not args.quiet:
            print("sensor-sim: connected to %s:%d, rooms %s"
                  % (args.host, args.port, ", ".join(r.name for r in rooms)))
        try:
            c.publish("sensors/status", "online", retain=True)
            c.subscribe("cmd/#")
            next_round = time.monotonic()
            while running:
                now = time.monotonic()
                if now >= next_round:
                    for r in rooms:
                        r.step()
                        t = round(r.temp, 2)
                        c.publish("sensors/%s/climate" % r.name, json.dumps(
                            {"temperature": t,
                             "humidity": round(r.hum, 1)},
                            separators=(",", ":")))
                        c.publish("sensors/%s/temp" % r.name, "%.2f" % t)
                    sent_rounds += 1
                    if args.count and sent_rounds >= args.count:
                        c.publish("sensors/status", "offline", retain=True)
                        c.close()
                        return 0
                    next_round += args.interval
                    if next_round < now:
                        next_round = now + args.interval
                c.ping_if_idle()
                ptype, flags, body = c.read_packet(
                    max(0.0, next_round - time.monotonic()))
                if ptype == 3:
                    topic, payload = parse_publish(flags, body)
                    print("sensor-sim: command on %s: %s" % (
                        topic, payload.decode("utf-8", "replace")),
                        flush=True)
            c.publish("sensors/status", "offline", retain=True)
            c.close()
        except (OSError, ConnectionError) as e:
            if not args.quiet:
                print("sensor-sim: connection lost: %s" % e, file=sys.stderr)
            try:
                c.sock.close()
            except OSError:
                pass
    return 0


def main():
    p = argparse.ArgumentParser(description="simulated MQTT room sensors")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--rooms", default="kitchen,living,bedroom,office")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--count", type=int, default=0,
                   help="stop after this many rounds (0 = run until stopped)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    if args.interval <= 0:
        p.error("--interval must be positive")
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    sys.stdout.reconfigure(line_buffering=True)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
