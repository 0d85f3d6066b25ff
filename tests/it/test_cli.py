#!/usr/bin/env python3
"""test_cli.py - the command line of CONFIG.md: -V, -h, an unknown flag
(exit 64 with usage), -t on a valid config ("FILE: configuration is
valid", exit 0) and on broken ones (a FILE:LINE: message naming the
faulty line, exit 78), and a listen port that is already taken."""

import os
import re
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mqgatetest import (CURRENT_USER, MQGATE_BIN, PLUGIN_DIR, TempDir, check,  # noqa: E402
                        check_eq, free_port, run, say)

UNSET = "MQGATE_IT_SURELY_UNSET_VAR"


def mqgate(*args, env=None, timeout=15):
    e = dict(os.environ)
    e.pop(UNSET, None)
    e.update(env or {})
    p = subprocess.run([MQGATE_BIN] + list(args), capture_output=True,
                       timeout=timeout, env=e)
    return p.returncode, p.stdout.decode("utf-8", "replace"), \
        p.stderr.decode("utf-8", "replace")


def base_lines(port=1):
    return [
        "# mqgate test config",
        "[server]",
        "listen = 127.0.0.1:%d" % port,
        "plugin_dir = %s" % PLUGIN_DIR,
        "max_message = 64K",
        "user = %s" % CURRENT_USER,
        "",
        "[auth]",
        "anonymous_subscribe = #",
        "anonymous_publish = it/#",
        "",
        "[broker home]",
        "type = mqtt",
        "url = mqtt://127.0.0.1:1883",
        "topic = it/# both 1",
    ]


def with_line(after, line, lines=None):
    """base_lines() with `line` inserted after the first line equal to
    `after` ("" = at the very start, None = at the end)."""
    lines = list(lines or base_lines())
    if after is None:
        lines.append(line)
    elif after == "":
        lines.insert(0, line)
    else:
        lines.insert(lines.index(after) + 1, line)
    return lines


def second_broker(extra, header="[broker away]"):
    return [header] + extra


def t_version_help_usage():
    """-V prints the version, -h the usage (exit 0); an unknown flag or
    argument exits 64 with the usage on stderr"""
    st, out, err = mqgate("-V")
    check_eq(st, 0, "-V exits 0")
    check(re.match(r"^mqgate \d+\.\d+\.\d+", out) is not None,
          "-V prints 'mqgate X.Y.Z'", out)
    st, out, err = mqgate("-h")
    check_eq(st, 0, "-h exits 0")
    check("usage" in out.lower() and "-c" in out and "-t" in out,
          "-h prints the usage with -c and -t on stdout", out)
    st, out, err = mqgate("-Z")
    check_eq(st, 64, "an unknown flag exits 64")
    check("usage" in err.lower(), "... with the usage on stderr", err)
    st, out, err = mqgate("-c")
    check_eq(st, 64, "-c without its FILE exits 64")
    st, out, err = mqgate("stray-argument")
    check_eq(st, 64, "an unexpected argument exits 64")


def t_check_valid():
    """-t on a valid config: "FILE: configuration is valid", exit 0;
    ${ENV} and *_file secrets resolve"""
    tmp = TempDir()
    path = tmp.write("good.conf", "\n".join(base_lines()) + "\n")
    st, out, err = mqgate("-t", "-c", path)
    check_eq((st, out.strip()), (0, "%s: configuration is valid" % path),
             "-t on a valid config")
    pw = tmp.write("pw", "s3cret\n")
    lines = base_lines()
    lines[lines.index("url = mqtt://127.0.0.1:1883")] = \
        "url = mqtt://${MQGATE_IT_HOST}:1883"
    lines += ["username = it", "password_file = %s" % pw]
    path = tmp.write("env.conf", "\n".join(lines) + "\n")
    st, out, err = mqgate("-t", "-c", path,
                          env={"MQGATE_IT_HOST": "127.0.0.1"})
    check_eq(st, 0, "-t with ${MQGATE_IT_HOST} set and a readable "
             "password_file: valid (%s)" % err.strip())


# (what, lines with the faulty one marked by a leading "!")
BAD = [
    ("unknown key", with_line("[server]", "!bogus_key = 1")),
    ("bad size", with_line("[server]", "!queue_bytes = 12Q")),
    ("size not a number", with_line("[server]", "!history_bytes = lots")),
    ("bad duration", with_line("[server]", "!keepalive = 10x")),
    ("negative duration", with_line("[server]", "!keepalive = -3s")),
    ("count out of range", with_line("[server]", "!max_clients = 0")),
    ("bad slow_client", with_line("[server]", "!slow_client = sometimes")),
    ("bad log_level", with_line("[server]", "!log_level = chatty")),
    ("bad publish_rate", with_line("[server]",
                                   "!publish_rate = 50/fortnight")),
    ("bad listen port", with_line("[server]", "!listen = 127.0.0.1:99999")),
    ("bad listen address", with_line("[server]", "!listen = nowhere")),
    ("line without =", with_line("[server]", "!max_clients 10")),
    ("key outside any section", with_line("", "!stray = 1")),
    ("unknown section", with_line(None, "![nonsense]")),
    ("unreadable jwt_secret_file",
     with_line("[auth]", "!jwt_secret_file = /nonexistent/mqgate-it/k")),
    ("duplicate broker", base_lines() + second_broker(
        ["type = mqtt", "url = mqtt://127.0.0.1:1884", "mount = b/",
         "topic = # in 0"], header="![broker home]")),
    ("broker without type", base_lines() + second_broker(
        ["url = mqtt://127.0.0.1:1884", "mount = b/", "topic = # in 0"],
        header="![broker away]")),
    ("broker without topic", base_lines() + second_broker(
        ["type = mqtt", "url = mqtt://127.0.0.1:1884", "mount = b/"],
        header="![broker away]")),
    ("unknown plugin type", base_lines() + second_broker(
        ["!type = zmq", "url = mqtt://127.0.0.1:1884", "mount = b/",
         "topic = # in 0"])),
    ("bad plugin key value", with_line("type = mqtt", "!keepalive = banana")),
    ("unknown plugin key", with_line("type = mqtt", "!frobnicate = 1")),
    ("bad topic direction", with_line("type = mqtt",
                                      "!topic = a/# sideways 1")),
    ("bad topic qos", with_line("type = mqtt", "!topic = a/# in 7")),
    ("bad topic filter", with_line("type = mqtt", "!topic = a/#/b in 1")),
    ("identical mounts", with_line("type = mqtt", "mount = a/") +
     second_broker(["type = mqtt", "url = mqtt://127.0.0.1:1884",
                    "!mount = a/", "topic = # in 0"])),
    ("environment variable unset",
     with_line("type = mqtt", "!username = ${%s}" % UNSET)),
    ("unreadable secret file",
     with_line("type = mqtt", "!password_file = /nonexistent/mqgate-it/pw")),
]


def t_check_invalid():
    """-t on each broken config: FILE:LINE: naming the faulty line,
    exit 78"""
    tmp = TempDir()
    for i, (what, marked) in enumerate(BAD):
        lines, bad_line = [], None
        for n, line in enumerate(marked, 1):
            if line.startswith("!"):
                bad_line = n
                line = line[1:]
            lines.append(line)
        path = tmp.write("bad%02d.conf" % i, "\n".join(lines) + "\n")
        st, out, err = mqgate("-t", "-c", path)
        mark = "%s:%d:" % (path, bad_line)
        check(st == 78 and mark in err and "valid" not in out,
              "%s: exit 78 and '%s' on stderr" % (what, mark.replace(
                  tmp.path + "/", "")),
              "exit %d, stdout %r, stderr %r" % (st, out, err))
        for other in re.findall(re.escape(path) + r":(\d+):", err):
            if int(other) != bad_line:
                say("  note %s: also reported line %s: %s" % (
                    what, other, err.strip().replace("\n", " | ")))
    st, out, err = mqgate("-t", "-c", "/nonexistent/mqgate-it.conf")
    check(st == 78 and "/nonexistent/mqgate-it.conf" in err,
          "a missing config file: exit 78 naming the file", (st, err))


def t_listen_in_use():
    """a listen port already in use: mqgate fails at once with a clear
    message"""
    tmp = TempDir()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        lines = base_lines(port)
        path = tmp.write("busy.conf", "\n".join(lines) + "\n")
        try:
            st, out, err = mqgate("-c", path, timeout=15)
        except subprocess.TimeoutExpired:
            raise AssertionError("mqgate kept running on a busy port")
    check(st != 0, "mqgate exits non-zero (%d)" % st)
    listen_line = lines.index("listen = 127.0.0.1:%d" % port) + 1
    check(str(port) in err and "listen" in err.lower(),
          "the message names the listener and port %d" % port, err)
    check("%s:%d:" % (path, listen_line) in err,
          "and points at the listen line (%d)" % listen_line, err)
    # The same config is valid on a free port.
    lines = base_lines(free_port())
    path = tmp.write("free.conf", "\n".join(lines) + "\n")
    st, out, err = mqgate("-t", "-c", path)
    check_eq(st, 0, "the same config with a free port is valid")


def t_root_needs_user():
    """as root without `user =`: refused at start with the file named and
    exit 78 (-t still checks the file alone); `user = root` is the explicit
    consent"""
    if os.geteuid() != 0:
        say("  --   not root: nothing to refuse")
        return
    tmp = TempDir()
    lines = [l for l in base_lines(free_port()) if not l.startswith("user")]
    path = tmp.write("root.conf", "\n".join(lines) + "\n")
    st, out, err = mqgate("-c", path, timeout=15)
    check_eq(st, 78, "root without user: exit 78")
    check(path in err and "refusing to run as root" in err and
          "user" in err, "the message names the file and the fix", err)
    st, out, err = mqgate("-t", "-c", path)
    check_eq(st, 0, "-t checks the file, not who runs it")


if __name__ == "__main__":
    run([t_version_help_usage, t_check_valid, t_check_invalid,
         t_listen_in_use, t_root_needs_user], mosquitto=False)
