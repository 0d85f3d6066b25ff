#!/usr/bin/env python3
"""test_tls.py - a TLS listener from tls_cert_file/tls_key_file: HTTPS
/healthz and WSS /ws with the hello frame, SSE over TLS, TLS 1.2 and 1.3
accepted, HTTP/1.1 offered in ALPN (not h2, which would lose
Last-Event-ID), a plain-text request to the TLS port refused without
disturbing a connected client."""

import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, TempDir, WsClient, check,  # noqa
                        check_eq, run, say)


def make_cert(tmp):
    key = os.path.join(tmp.path, "key.pem")
    cert = os.path.join(tmp.path, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                    "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


def tls_get(port, cert, path, maxver=None, until=None):
    """One GET over TLS; reads to the end, or until `until` is seen."""
    ctx = ssl.create_default_context(cafile=cert)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    if maxver:
        ctx.maximum_version = maxver
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       "Connection: close\r\n\r\n" % path).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                if until and until in data:
                    break
            return s.version(), s.selected_alpn_protocol(), data


def t_tls():
    """HTTPS, WSS and SSE over the TLS listener"""
    mosq, tmp = Mosquitto(), TempDir()
    cert, key = make_cert(tmp)
    gate = Mqgate(mosq, server={"tls_cert_file": cert,
                                "tls_key_file": key},
                  wait=None)
    ctx_ok = False
    for _ in range(100):
        try:
            ver, alpn, data = tls_get(gate.port, cert, "/healthz")
            ctx_ok = True
            break
        except OSError:
            import time
            time.sleep(0.1)
    check(ctx_ok, "the TLS listener answers")
    check(data.startswith(b"HTTP/1.1 200"), "HTTPS /healthz: 200", data[:40])
    check_eq(alpn, "http/1.1", "ALPN picks http/1.1, not h2")
    check(ver in ("TLSv1.2", "TLSv1.3"), "a modern TLS version", ver)
    ver12, _, data12 = tls_get(gate.port, cert, "/healthz",
                               maxver=ssl.TLSVersion.TLSv1_2)
    check_eq(ver12, "TLSv1.2", "TLS 1.2 is accepted")
    # A client that offers only TLS 1.1 (allowed on its side with
    # SECLEVEL=0) is refused by the server's TLS 1.2 minimum.
    old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    old.check_hostname = False
    old.verify_mode = ssl.CERT_NONE
    old.set_ciphers("DEFAULT:@SECLEVEL=0")
    old.minimum_version = ssl.TLSVersion.TLSv1_1
    old.maximum_version = ssl.TLSVersion.TLSv1_1
    try:
        with socket.create_connection(("127.0.0.1", gate.port), 5) as raw:
            with old.wrap_socket(raw) as tls:
                refused = "accepted " + str(tls.version())
    except (ssl.SSLError, OSError) as e:
        refused = True
        say("  ..   TLS 1.1 handshake: %s" % e)
    check_eq(refused, True, "a TLS 1.1-only client is refused")

    ws = WsClient("wss://127.0.0.1:%d/ws" % gate.port,
                  sslopt={"ca_certs": cert})
    check_eq(ws.hello["op"], "hello", "WSS: hello")
    ws.subscribe("it/t/#")
    mosq.pub("it/t/x", "over-tls")
    ws.expect(op="message", topic="it/t/x", payload="over-tls")
    say("  ok   WSS delivers")

    ver, alpn, data = tls_get(gate.port, cert,
                              "/events?topic=it%2Ft%2F%23&snapshot=1",
                              until=b"over-tls")
    check(b"text/event-stream" in data and b"over-tls" in data,
          "SSE over TLS streams the snapshot", data[:300])

    with socket.create_connection(("127.0.0.1", gate.port), 5) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = s.recv(100)
        except OSError:
            reply = b""
    check(not reply.startswith(b"HTTP/1.1 200"),
          "plain HTTP on the TLS port is not served", reply)
    ws.ping()
    check(gate.running(), "the daemon and the WSS client carry on")


if __name__ == "__main__":
    run([t_tls])
