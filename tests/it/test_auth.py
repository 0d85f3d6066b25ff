#!/usr/bin/env python3
"""test_auth.py - JWT auth against the running daemon (PROTOCOL.md Auth,
CONFIG.md [auth]): tokens in `Authorization: Bearer` and in
`access_token=`, 401 before any stream without a valid one (none, wrong
algorithm, bad signature, expired, not yet valid, wrong audience or
issuer, garbage), topic claims narrowing subscribe and publish inside the
walls, RS256 with a public key, and a connection closed with 4001 when
its token expires. Tokens never appear in the log."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (Mosquitto, Mqgate, SseClient, TempDir, WsClient,  # noqa
                        check, check_eq, http_request, run, say, wait_for)
import websocket  # noqa: E402

SECRET = b"it-secret-0123456789"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(claims, alg="HS256", secret=SECRET, key=None, sig=None):
    head = b64u(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    signing = ("%s.%s" % (head, body)).encode()
    if sig is not None:
        s = sig
    elif alg == "none":
        s = b""
    elif alg == "RS256":
        s = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key],
                           input=signing, capture_output=True,
                           check=True).stdout
    else:
        digest = {"HS256": hashlib.sha256, "HS512": hashlib.sha512}[alg]
        s = hmac.new(secret, signing, digest).digest()
    return "%s.%s" % (signing.decode(), b64u(s))


def claims(**kw):
    c = {"sub": "it", "exp": int(time.time()) + 600,
         "sub_topics": ["it/a/#"], "pub_topics": ["it/a/cmd"],
         "aud": "dash", "iss": "it-issuer"}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def start(mosq, tmp, extra=None):
    secret = tmp.write("jwt.secret", SECRET + b"\n")
    auth = {"anonymous_subscribe": None, "anonymous_publish": None,
            "jwt_secret_file": secret, "jwt_audience": "dash",
            "jwt_issuer": "it-issuer"}
    auth.update(extra or {})
    return Mqgate(mosq, auth=auth)


def ws_status(gate, headers=None, query=""):
    """The HTTP status of a WebSocket upgrade (101 when accepted)."""
    try:
        c = WsClient(gate.ws_url + query, headers=headers)
        c.close()
        return 101
    except websocket.WebSocketBadStatusException as e:
        return e.status_code


def t_refused():
    """no token or a bad one: 401 for /ws, /events and /publish"""
    mosq, tmp = Mosquitto(), TempDir()
    gate = start(mosq, tmp)
    now = int(time.time())
    bad = {
        "no token": None,
        "garbage": "not.a.jwt",
        "alg none": token(claims(), alg="none"),
        "alg HS512": token(claims(), alg="HS512"),
        "bad signature": token(claims(), secret=b"other"),
        "expired": token(claims(exp=now - 120)),
        "not yet valid": token(claims(nbf=now + 600)),
        "wrong audience": token(claims(aud="other")),
        "wrong issuer": token(claims(iss="other")),
    }
    for what, tok in bad.items():
        h = ["Authorization: Bearer " + tok] if tok else None
        check_eq(ws_status(gate, headers=h), 401, "/ws, %s: 401" % what)
        s = SseClient(gate.port, ["it/a/#"],
                      headers={"Authorization": "Bearer " + tok} if tok else None)
        check_eq(s.status, 401, "/events, %s: 401 before any stream" % what)
        st, _, body = http_request(gate.port, "POST", "/publish",
                                   headers={"Authorization": "Bearer " + tok}
                                   if tok else None,
                                   body=json.dumps({"topic": "it/a/cmd",
                                                    "payload": 1}).encode())
        check_eq((st, json.loads(body)["error"]), (401, "unauthorized"),
                 "POST /publish, %s: 401 unauthorized" % what)
    log = gate.log()
    for what, tok in bad.items():
        parts = (tok or "").split(".")
        if len(parts) == 3 and len(parts[1]) > 8:
            check(tok not in log and parts[1] not in log and
                  (not parts[2] or parts[2] not in log),
                  "%s: the token appears nowhere in the log" % what)


def t_claims():
    """a valid token's claims narrow subscribe and publish"""
    mosq, tmp = Mosquitto(), TempDir()
    gate = start(mosq, tmp)
    tok = token(claims())
    c = WsClient(gate.ws_url, headers=["Authorization: Bearer " + tok])
    c.subscribe("it/a/#")
    r = c.request("subscribe", topics=["it/b/#"])
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "subscribe outside the claims: forbidden")
    r = c.request("subscribe", topics=["it/#"])
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "a wider filter than the claim: forbidden")
    c.subscribe("it/a/+/x")                    # a subset of it/a/#
    mosq.pub("it/a/v", "1")
    c.expect(op="message", topic="it/a/v")
    check_eq(c.publish("it/a/cmd", 1, qos=1)["op"], "ok",
             "publish inside pub_topics: ok")
    r = c.publish("it/a/other", 1)
    check_eq((r["op"], r.get("code")), ("error", "forbidden"),
             "publish outside pub_topics: forbidden")
    # The same token in the query string, for EventSource and browsers.
    q = WsClient(gate.ws_url + "?access_token=" + tok)
    q.subscribe("it/a/#")
    s = SseClient(gate.port, ["it/a/#"], query={"access_token": tok,
                                                "snapshot": "0"})
    check_eq(s.status, 200, "SSE with access_token in the query: 200")
    mosq.pub("it/a/w", "2")
    check_eq(s.events(1)[0].json()["topic"], "it/a/w",
             "the SSE stream delivers")
    s2 = SseClient(gate.port, ["it/b/#"], query={"access_token": tok})
    check_eq(s2.status, 403, "SSE outside the claims: 403")


def t_rs256():
    """RS256 with jwt_public_key_file; an HS256 token signed with the
    public key text (algorithm confusion) is refused"""
    mosq, tmp = Mosquitto(), TempDir()
    key = os.path.join(tmp.path, "key.pem")
    pub = os.path.join(tmp.path, "pub.pem")
    subprocess.run(["openssl", "genrsa", "-out", key, "2048"],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "rsa", "-in", key, "-pubout", "-out", pub],
                   check=True, capture_output=True)
    gate = Mqgate(mosq, auth={"anonymous_subscribe": None,
                              "anonymous_publish": None,
                              "jwt_public_key_file": pub})
    good = token(claims(aud=None, iss=None), alg="RS256", key=key)
    check_eq(ws_status(gate, headers=["Authorization: Bearer " + good]), 101,
             "a valid RS256 token is accepted")
    with open(pub, "rb") as f:
        confused = token(claims(aud=None, iss=None), secret=f.read())
    check_eq(ws_status(gate, headers=["Authorization: Bearer " + confused]),
             401, "HS256 signed with the public key: 401")


def t_expiry():
    """a token that expires while connected closes the WebSocket with 4001
    and ends the SSE stream"""
    mosq, tmp = Mosquitto(), TempDir()
    gate = start(mosq, tmp)
    # exp 28 s ago: still inside the 30 s leeway, gone 2 s from now.
    tok = token(claims(exp=int(time.time()) - 28))
    c = WsClient(gate.ws_url, headers=["Authorization: Bearer " + tok])
    c.subscribe("it/a/#")
    s = SseClient(gate.port, ["it/a/#"], query={"access_token": tok})
    check_eq(s.status, 200, "SSE accepted before expiry")
    closed = c.wait_closed(10)
    check_eq(closed.code, 4001, "closed with 4001 at expiry")
    check(s.wait_eof(10), "the SSE stream ends at expiry")


if __name__ == "__main__":
    run([t_refused, t_claims, t_rs256, t_expiry])
