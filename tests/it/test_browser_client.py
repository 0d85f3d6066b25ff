#!/usr/bin/env python3
"""test_browser_client.py - mqgate.js's API in headless chromium against a
daemon that wants JWTs (subscribe and publish only under it/c/), beyond what
the dashboard, resume, SSE and sharing tests see:

- through the shared worker: the worker gets its token from the tab's
  tokenProvider, a refused filter reaches onError and `ready`, publish
  resolves or rejects with the error's .code, binary payloads both ways;
- a worker that cannot start: the tab connects by itself;
- a direct WebSocket: a publish made before the connection is open waits
  for it, unsubscribe stops delivery, snapshot: false skips the retained
  value, close() ends it and later publishes reject;
- SSE: a refused filter reaches onError while the stream goes on, POST
  /publish carries the token;
- no token: the refusal is an `error` event with code unauthorized; a
  tokenProvider that throws: an `error` event with its error;
- the example page of www/README.md, against a second (anonymous)
  daemon, logs what the README says it does."""

import base64
import hashlib
import hmac
import json
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import browser  # noqa: E402

SECRET = b"browser-client-secret-0123456789"


def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt(claims):
    """An HS256 token for SECRET."""
    head = b64u(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64u(json.dumps(claims).encode())
    signing = head + "." + body
    sig = hmac.new(SECRET, signing.encode(), hashlib.sha256).digest()
    return signing + "." + b64u(sig)


def main():
    browser.require()
    tmp = tempfile.mkdtemp(prefix="mqgate-browser-client-")
    secret = os.path.join(tmp, "jwt.secret")
    with open(secret, "wb") as f:
        f.write(SECRET + b"\n")
    mosq = browser.Mosquitto()
    gate = anon = None
    try:
        gate = browser.Mqgate(mosq, auth="jwt_secret_file = %s\n" % secret)
        anon = browser.Mqgate(mosq)
        with browser.Browser() as b:
            run(b, mosq, gate)
            readme_example(b, anon)
    finally:
        for g in (gate, anon):
            if g:
                g.cleanup()
        mosq.stop()
        os.remove(secret)
        os.rmdir(tmp)
    print("PASS")


def settle(b, expr):
    """[true, value] or [false, error code] of the promise `expr`."""
    return b.ajs("""const done = arguments[arguments.length - 1];
        Promise.resolve(%s).then(v => done([true, v === undefined ?
            null : v]), e => done([false, e.code || String(e)]));""" % expr)


def run(b, mosq, gate):
    token = jwt({"sub": "it", "exp": int(time.time()) + 600,
                 "sub_topics": ["it/c/#"], "pub_topics": ["it/c/#"]})
    mosq.pub("it/c/ret", "old", retain=True)
    b.load_library(gate.base)
    b.js("window.TOKEN = arguments[0];", token)
    shared(b, mosq)
    fallback(b, mosq)
    direct_ws(b, mosq)
    direct_sse(b, mosq)
    refused(b)


def shared(b, mosq):
    b.js("""window.calls = 0; window.log = []; window.errs = [];
        window.c = mqgate.connect(undefined, {tokenProvider: async () => {
            calls++; return TOKEN; }});
        c.subscribe('it/c/#', m => log.push([m.topic, m.payload,
            m.payload instanceof Uint8Array ? [...m.payload] : null,
            m.encoding || null]));
        window.bad = c.subscribe('it/secret/#', () => {},
                                 {onError: e => errs.push(e.code)});""")
    b.wait("shared open", lambda: b.js("return [c.state, c.transport]")
           == ["open", "ws"])
    assert b.js("return c.port instanceof MessagePort && !c.ws")
    assert b.js("return calls") >= 1, "the worker did not ask for a token"
    assert settle(b, "bad.ready") == [False, "forbidden"]
    assert b.js("return errs") == ["forbidden"]
    b.wait("snapshot through the worker", lambda: ["it/c/ret", "old", None,
                                                   None] in b.js("return log"))

    mosq.pub("it/c/raw", b"\x00\xff\x10")
    b.wait("binary to the tab", lambda: ["it/c/raw", None, [0, 255, 16],
                                         "base64"] in
           [[t, None if bs else p, bs, e]
            for t, p, bs, e in b.js("return log")])

    sub = mosq.sub("it/c/bin")
    assert settle(b, "c.publish('it/c/bin', new Uint8Array([0, 255, 1]))") \
        == [True, None]
    out, _ = sub.communicate(timeout=20)
    assert out == b"\x00\xff\x01", out
    assert settle(b, "c.publish('it/secret/x', 'no')") == [False, "forbidden"]
    assert settle(b, "c.publish('it/c/+', 'no')") == [False, "bad_request"]


def fallback(b, mosq):
    b.js("""window.dlog = [];
        window.d = mqgate.connect(undefined, {token: TOKEN,
                                  workerUrl: '/no-such-worker.js'});
        window.dsub = d.subscribe('it/c/fb', m => dlog.push(m.payload));""")
    b.wait("direct after the worker failed", lambda: b.js(
        "return [d.state, d.transport, d.port, !!d.ws]")
        == ["open", "ws", None, True])
    assert settle(b, "dsub.ready") == [True, ["it/c/fb"]]
    mosq.pub("it/c/fb", "1")
    b.wait("delivered", lambda: b.js("return dlog") == [1])
    b.js("d.close()")


def direct_ws(b, mosq):
    sub = mosq.sub("it/c/early")
    b.js("""window.states = []; window.elog = []; window.ulog = [];
        window.nlog = [];
        window.e = mqgate.connect(undefined, {token: TOKEN, share: false,
                                  transport: 'ws'});
        e.on('state', s => states.push(s));
        window.early = e.publish('it/c/early', 'before open');
        window.state0 = e.state;
        window.unsub = e.subscribe('it/c/u', m => ulog.push(m.payload));
        e.subscribe('it/c/#', m => elog.push(m.payload));""")
    assert b.js("return state0") == "connecting"
    assert settle(b, "early") == [True, None]
    out, _ = sub.communicate(timeout=20)
    assert out == b"before open", out
    assert settle(b, "unsub.ready") == [True, ["it/c/u"]]
    b.wait("snapshot", lambda: "old" in b.js("return elog"))
    # Neither from its own request nor from it/c/#'s snapshot.
    assert settle(b, """e.subscribe('it/c/ret', m => nlog.push(m.payload),
                                    {snapshot: false}).ready""") == \
        [True, ["it/c/ret"]]

    mosq.pub("it/c/u", "1")
    b.wait("before unsubscribe", lambda: b.js("return ulog") == [1])
    b.js("unsub()")
    mosq.pub("it/c/u", "2")
    mosq.pub("it/c/ret", "new", retain=True)
    b.wait("witness", lambda: b.js("return elog").count("new") == 1)
    assert b.js("return ulog") == [1], "delivered after unsubscribe"
    assert b.js("return nlog") == ["new"], b.js("return nlog")

    b.js("e.close()")
    assert b.js("return [e.state, states[states.length - 1]]") == \
        ["closed", "closed"]
    assert b.js("return states.indexOf('open')") >= 0, b.js("return states")
    assert settle(b, "e.publish('it/c/late', 'x')") == [False, "unavailable"]


def direct_sse(b, mosq):
    b.js("""window.slog = []; window.serrs = [];
        window.f = mqgate.connect(undefined, {token: TOKEN, share: false,
                                  transport: 'sse'});
        f.subscribe('it/c/s/#', m => slog.push(m.payload));""")
    b.wait("sse open", lambda: b.js("return [f.state, f.transport]")
           == ["open", "sse"])
    b.js("""window.sbad = f.subscribe('it/secret/#', () => {},
                                      {onError: e => serrs.push(e.code)});""")
    assert settle(b, "sbad.ready") == [False, "forbidden"]
    assert b.js("return serrs") == ["forbidden"]
    mosq.pub("it/c/s/1", "after the refusal")
    b.wait("the stream goes on", lambda: b.js("return slog")
           == ["after the refusal"])
    sub = mosq.sub("it/c/s/pub")
    assert settle(b, "f.publish('it/c/s/pub', {n: 1})") == [True, None]
    out, _ = sub.communicate(timeout=20)
    assert out == b'{"n":1}', out
    assert settle(b, "f.publish('it/secret/x', 'no')") == [False, "forbidden"]
    b.js("f.close()")


def refused(b):
    b.js("""window.gerrs = []; window.herrs = [];
        window.g = mqgate.connect(undefined, {share: false});
        g.on('error', e => gerrs.push(e.code));
        g.subscribe('it/c/#', () => {});
        window.h = mqgate.connect(undefined, {share: false,
            tokenProvider: () => { throw new Error('no token here'); }});
        h.on('error', e => herrs.push(e.message));""")
    b.wait("unauthorized", lambda: "unauthorized" in b.js("return gerrs"))
    assert b.js("return g.state") != "open"
    b.wait("tokenProvider error", lambda: "no token here" in
           b.js("return herrs"))
    b.js("g.close(); h.close();")


def readme_example(b, gate):
    """The script of www/README.md's example page, as written there."""
    top = os.environ.get("top_srcdir") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(top, "www", "README.md")) as f:
        text = f.read()
    block = re.search(r"## Example\n.*?```html\n(.*?)```", text, re.S)
    assert block, "no html example in www/README.md"
    script = re.findall(r"<script>\n(.*?)</script>", block.group(1), re.S)
    assert len(script) == 1, script
    b.load_library(gate.base)
    b.js("window.out = []; console.log = (...a) => out.push(a);")
    b.js(script[0])
    want = [["open", "ws"], ["published"], ["demo/hello", {"text": "hi"}]]
    b.wait("the README's console output", lambda: all(
        w in b.js("return out") for w in want), timeout=15)
    assert b.js("return out")[0] == ["open", "ws"], b.js("return out")


if __name__ == "__main__":
    main()
