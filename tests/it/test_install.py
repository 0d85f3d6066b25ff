#!/usr/bin/env python3
"""test_install.py - `make install` lays out what CONFIG.md ("Files
installed") lists, and the installed daemon works from there.

It runs `make install DESTDIR=<temporary dir>` in the build tree
($top_builddir, which `make check` sets), asks the same Makefile where
each directory is (prefix, sbindir, pkglibdir, ...), and checks every
file under DESTDIR: mqgate in sbindir; only the built plugins' .so in
pkglibdir (no .la, no static archive); the dashboard, mqgate.js and every
file the dashboard and the client library load in pkgdatadir/www, the
same bytes as the source; mqgate.conf in sysconfdir/mqgate; the systemd
unit with the configured paths filled in (when configure installs one);
the manual pages mqgate(8) and mqgate.conf(5); include/mqgate/backend.h;
and nothing else. A second `make install` keeps an edited mqgate.conf;
`make uninstall DESTDIR=...` removes every other file, and the config
once it is the sample again.

The installed `mqgate -t` accepts the installed sample config. The
sample's plugin_dir is empty, which means the pkglibdir compiled in; under
DESTDIR the plugins are not there but below DESTDIR, so that check sets
MQGATE_PLUGIN_DIR to the DESTDIR copy of pkglibdir. With a private
mosquitto, the installed daemon also runs on a copy of the sample (its
listen, broker url, plugin_dir and docroot pointed at this test's port,
broker and DESTDIR copies) and serves /healthz, the dashboard and
mqgate.js from the installed files.

Exit 77 when `make`, the build tree or the mqtt plugin is missing."""

import atexit
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgatetest  # noqa: E402
from mqgatetest import (CURRENT_USER, MOSQUITTO, Mosquitto, SRCDIR,  # noqa: E402
                        BUILDDIR, check, check_eq, http_request, run, say,
                        skip)

MAKE = shutil.which("make")

# The directories and lists asked of the build tree's Makefile.
VARS = ("prefix", "sbindir", "pkglibdir", "pkgdatadir", "sysconfdir",
        "includedir", "mandir", "systemdsystemunitdir",
        "systemdsystemunit_DATA", "pkglib_LTLIBRARIES")

# What the tests share: the DESTDIR tree lives for the whole script (the
# harness removes what a test registers when that test ends).
_state = {}


def _remove_tmp():
    if "tmp" in _state:
        shutil.rmtree(_state["tmp"], ignore_errors=True)


atexit.register(_remove_tmp)


def make_env():
    """The environment for a make of our own: without the parent make's
    flags (jobserver descriptors, variables of its command line)."""
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES",
              "DESTDIR"):
        env.pop(k, None)
    return env


def make(*args, timeout=300):
    p = subprocess.run([MAKE, "-C", BUILDDIR] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       env=make_env(), timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace")


def configured_dirs():
    """{name: value} of VARS, as the build tree's Makefile expands them."""
    fd, extra = tempfile.mkstemp(prefix="mqgate-it-vars-", suffix=".mk")
    try:
        with os.fdopen(fd, "w") as f:
            f.write("mqgate-it-print-vars:\n")
            for v in VARS:
                f.write("\t@echo '%s=$(%s)'\n" % (v, v))
        rc, out = make("-s", "--no-print-directory", "-f", "Makefile",
                       "-f", extra, "mqgate-it-print-vars")
    finally:
        os.unlink(extra)
    if rc != 0:
        raise AssertionError("cannot read the directories from the "
                             "Makefile:\n" + out[-3000:])
    vals = {}
    for line in out.splitlines():
        k, sep, v = line.partition("=")
        if sep and k in VARS:
            vals[k] = v.strip()
    for v in VARS:
        check(v in vals, "the Makefile defines %s" % v, out)
    for v in ("prefix", "sbindir", "pkglibdir", "pkgdatadir", "sysconfdir",
              "includedir", "mandir"):
        check(vals[v].startswith("/"), "%s is an absolute path (%s)"
              % (v, vals[v]))
    return vals


def in_dest(path):
    return _state["dest"] + path


def www_references():
    """The files the dashboard and the client library load: index.html,
    mqgate.js, mqgate.esm.js and, recursively, every local file named in
    an index.html src=/href= or a string literal of a script (such as
    importScripts('mqgate.js') and the shared worker's URL)."""
    www = os.path.join(SRCDIR, "www")
    want = set()
    todo = ["index.html", "mqgate.js", "mqgate.esm.js"]
    local = re.compile(r"^(?:\./|/)?([A-Za-z0-9_.-]+\.(?:js|css|html))$")
    while todo:
        name = todo.pop()
        if name in want:
            continue
        want.add(name)
        with open(os.path.join(www, name), encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".html"):
            refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""",
                              text)
        elif name.endswith(".js"):
            refs = []
            for line in text.splitlines():
                s = line.strip()
                if s.startswith(("*", "/*", "//")):
                    continue  # comments name files as examples
                refs += re.findall(r"""['"`]([^'"`\s]+)['"`]""", s)
        else:
            refs = []
        for r in refs:
            m = local.match(r)
            if m:
                check(os.path.exists(os.path.join(www, m.group(1))),
                      "www/%s names www/%s, which exists" % (name,
                                                             m.group(1)))
                todo.append(m.group(1))
    return want


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def installed_files():
    dest = _state["dest"]
    out = []
    for root, _, files in os.walk(dest):
        out += [os.path.join(root, f)[len(dest):] for f in files]
    return sorted(out)


def test_install_layout():
    """make install DESTDIR=... puts each file where CONFIG.md says"""
    d = configured_dirs()
    _state["dirs"] = d
    _state["tmp"] = tempfile.mkdtemp(prefix="mqgate-it-install-")
    dest = os.path.join(_state["tmp"], "root")
    _state["dest"] = dest
    rc, out = make("install", "DESTDIR=" + dest)
    check(rc == 0, "make install DESTDIR=%s succeeds" % dest, out[-4000:])

    found = set(installed_files())
    expected = {}  # installed path -> source file it copies, or None

    # The daemon.
    sbin = d["sbindir"] + "/mqgate"
    expected[sbin] = None
    check(os.access(in_dest(sbin), os.X_OK), "%s is executable" % sbin)

    # The plugins: one NAME.so per module built, nothing else.
    built = [os.path.basename(la)[:-3] for la in
             d["pkglib_LTLIBRARIES"].split()]
    check("mqtt" in built, "the MQTT plugin is built", built)
    for name in built:
        so = "%s/%s.so" % (d["pkglibdir"], name)
        expected[so] = None
        check(so in found, "%s installed" % so)
    in_pkglib = sorted(p for p in found
                       if os.path.dirname(p) == d["pkglibdir"])
    check_eq(in_pkglib, sorted("%s/%s.so" % (d["pkglibdir"], n)
                               for n in built),
             "only the plugins' .so in %s (no .la, no .a)" % d["pkglibdir"])

    # The dashboard and the client library.
    www = d["pkgdatadir"] + "/www"
    for name in sorted(www_references()):
        p = www + "/" + name
        check(p in found, "%s installed" % p)
    for p in sorted(found):
        if os.path.dirname(p) == www:
            src = os.path.join(SRCDIR, "www", os.path.basename(p))
            check(os.path.exists(src) and same_bytes(in_dest(p), src),
                  "%s is www/%s of the source" % (p, os.path.basename(p)))
            expected[p] = src

    # The sample configuration.
    conf = d["sysconfdir"] + "/mqgate/mqgate.conf"
    expected[conf] = os.path.join(SRCDIR, "etc", "mqgate.conf")

    # The public header and the manual pages.
    expected[d["includedir"] + "/mqgate/backend.h"] = os.path.join(
        SRCDIR, "include", "mqgate", "backend.h")
    expected[d["mandir"] + "/man8/mqgate.8"] = os.path.join(
        SRCDIR, "doc", "mqgate.8")
    expected[d["mandir"] + "/man5/mqgate.conf.5"] = os.path.join(
        SRCDIR, "doc", "mqgate.conf.5")

    # The systemd unit, unless configured --with-systemdsystemunitdir=no.
    if d["systemdsystemunit_DATA"]:
        check(d["systemdsystemunitdir"].startswith("/"),
              "systemdsystemunitdir is an absolute path (%s)"
              % d["systemdsystemunitdir"])
        unit = d["systemdsystemunitdir"] + "/mqgate.service"
        expected[unit] = None
        check(unit in found, "%s installed" % unit)
        if unit in found:
            with open(in_dest(unit)) as f:
                text = f.read()
            check(not re.search(r"@[A-Za-z_]+@", text),
                  "no @placeholder@ left in the unit")
            cf = d["sysconfdir"] + "/mqgate/mqgate.conf"
            check("\nExecStart=%s -c %s\n" % (sbin, cf) in text,
                  "the unit starts %s -c %s" % (sbin, cf),
                  [ln for ln in text.splitlines() if "Exec" in ln])
            check("\nExecStartPre=%s -t -c %s\n" % (sbin, cf) in text,
                  "the unit checks the config with %s -t first" % sbin)
            check("\nType=notify\n" in text, "the unit is Type=notify")
    else:
        say("  (configured --with-systemdsystemunitdir=no: no unit)")

    for p, src in sorted(expected.items()):
        check(p in found, "%s installed" % p)
        if src is not None and p in found:
            check(same_bytes(in_dest(p), src), "%s is %s of the source" % (
                p, os.path.relpath(src, SRCDIR)))
    for p in (conf, www + "/index.html", www + "/mqgate.js",
              "%s/mqtt.so" % d["pkglibdir"]):
        mode = os.stat(in_dest(p)).st_mode
        check(mode & stat.S_IROTH, "%s is readable by any user (the "
              "unit's dynamic user)" % p)
    check_eq(sorted(found - set(expected)), [],
             "nothing else installed")


def test_installed_check():
    """the installed mqgate -t accepts the installed sample config"""
    d = _state["dirs"]
    mqgate = in_dest(d["sbindir"] + "/mqgate")
    conf = in_dest(d["sysconfdir"] + "/mqgate/mqgate.conf")
    # plugin_dir is empty in the sample: the compiled-in pkglibdir, which
    # DESTDIR moved; the environment points at the DESTDIR copy instead.
    env = dict(os.environ, MQGATE_PLUGIN_DIR=in_dest(d["pkglibdir"]))
    p = subprocess.run([mqgate, "-t", "-c", conf], capture_output=True,
                       env=env, timeout=30)
    out = p.stdout.decode("utf-8", "replace")
    err = p.stderr.decode("utf-8", "replace")
    check(p.returncode == 0, "mqgate -t on the sample exits 0",
          "exit %d: %s" % (p.returncode, err.strip()[-1000:]))
    check_eq(out.strip(), "%s: configuration is valid" % conf,
             "mqgate -t says the sample is valid")

    # A plugin directory without the plugins is refused, so the check
    # above did load the DESTDIR copy.
    empty = os.path.join(_state["tmp"], "noplugins")
    os.makedirs(empty, exist_ok=True)
    env = dict(os.environ, MQGATE_PLUGIN_DIR=empty)
    p = subprocess.run([mqgate, "-t", "-c", conf], capture_output=True,
                       env=env, timeout=30)
    check_eq(p.returncode, 78, "mqgate -t with no mqtt.so in the plugin "
             "dir exits 78")


def sample_copy():
    """The installed sample with only listen, the broker url, plugin_dir,
    docroot and user changed; a template for mqgatetest.Mqgate(text=)
    ({port} and {mosq_url} are filled in there)."""
    d = _state["dirs"]
    with open(in_dest(d["sysconfdir"] + "/mqgate/mqgate.conf")) as f:
        text = f.read().replace("{", "{{").replace("}", "}}")
    repl = [
        (r"(?m)^listen = .*$", "listen = 127.0.0.1:{port}"),
        (r"(?m)^url = mqtt://127\.0\.0\.1:1883\b", "url = {mosq_url}"),
        (r"(?m)^plugin_dir =.*$", "plugin_dir = " + in_dest(d["pkglibdir"])),
        (r"(?m)^#?docroot =.*$",
         "docroot = " + in_dest(d["pkgdatadir"] + "/www")),
        (r"(?m)^user =.*$", "user = " + CURRENT_USER),
    ]
    for pat, new in repl:
        text, n = re.subn(pat, new.replace("\\", "\\\\"), text, count=1)
        check_eq(n, 1, "the sample has a line for %r" % new.split(" =")[0])
    return text


def test_installed_runs():
    """the installed daemon serves /healthz, / and /mqgate.js"""
    if not os.access(MOSQUITTO, os.X_OK):
        say("  (no mosquitto at %s: the installed daemon is not started)"
            % MOSQUITTO)
        return
    d = _state["dirs"]
    www = in_dest(d["pkgdatadir"] + "/www")
    mosq = Mosquitto()
    # The harness starts MQGATE_BIN: the installed one, for this daemon.
    saved = mqgatetest.MQGATE_BIN
    mqgatetest.MQGATE_BIN = in_dest(d["sbindir"] + "/mqgate")
    try:
        gate = mqgatetest.Mqgate(mosq, text=sample_copy())
        st, body = gate.healthz()
        check_eq(st, 200, "/healthz of the installed daemon is 200")
        check_eq(body.get("brokers", {}).get("home", {}).get("state"),
                 "connected", "the sample's broker 'home' is connected")
        for path, name in (("/", "index.html"), ("/mqgate.js", "mqgate.js"),
                           ("/dashboard.js", "dashboard.js"),
                           ("/mqgate-worker.js", "mqgate-worker.js")):
            st, _, data = http_request(gate.port, "GET", path)
            check_eq(st, 200, "GET %s is 200" % path)
            with open(os.path.join(www, name), "rb") as f:
                check(data == f.read(), "GET %s is the installed %s" % (
                    path, name))
        check_eq(gate.stop(), 0, "the installed daemon exits 0 on SIGTERM")
    finally:
        mqgatetest.MQGATE_BIN = saved


def test_reinstall_keeps_config():
    """make install again keeps an edited mqgate.conf"""
    d = _state["dirs"]
    conf = in_dest(d["sysconfdir"] + "/mqgate/mqgate.conf")
    before = installed_files()
    with open(conf, "a") as f:
        f.write("# edited by the operator\n")
    with open(conf, "rb") as f:
        edited = f.read()
    rc, out = make("install", "DESTDIR=" + _state["dest"])
    check(rc == 0, "make install over an installed tree succeeds",
          out[-4000:])
    check("exists: kept" in out, "make install says it kept mqgate.conf",
          out[-2000:])
    with open(conf, "rb") as f:
        check(f.read() == edited, "the edited mqgate.conf is unchanged")
    check_eq(installed_files(), before, "the same files installed")


def test_uninstall():
    """make uninstall removes every file (an edited config once restored)"""
    d = _state["dirs"]
    dest = _state["dest"]
    conf = d["sysconfdir"] + "/mqgate/mqgate.conf"
    rc, out = make("uninstall", "DESTDIR=" + dest)
    check(rc == 0, "make uninstall DESTDIR=%s succeeds" % dest, out[-4000:])
    check_eq(installed_files(), [conf], "only the edited mqgate.conf left")
    shutil.copyfile(os.path.join(SRCDIR, "etc", "mqgate.conf"),
                    in_dest(conf))
    rc, out = make("uninstall", "DESTDIR=" + dest)
    check(rc == 0, "make uninstall again succeeds", out[-4000:])
    check_eq(installed_files(), [], "no file left under DESTDIR once "
             "mqgate.conf is the sample")


if __name__ == "__main__":
    if not MAKE:
        skip("make not found")
    if not os.path.exists(os.path.join(BUILDDIR, "Makefile")):
        skip("no configured build tree at %s (set top_builddir)" % BUILDDIR)
    # One DESTDIR for the whole script: the later tests use the files the
    # first one installed, so no test may be run alone.
    run([test_install_layout, test_installed_check, test_installed_runs,
         test_reinstall_keeps_config, test_uninstall], mosquitto=False)
