"""browser.py - Selenium helpers for mqgate's real-browser tests.

Starts Debian's headless chromium through chromedriver (selenium 4 Service)
with a fresh profile directory, and offers small helpers the tests share:
waiting for a condition, running async JavaScript, loading mqgate.js into a
page of the daemon's origin, and saving screenshots under tests/out/ of the
build tree (never the source tree, which `make distcheck` makes read-only).

Missing chromium, chromedriver or selenium makes the test exit 77 (skipped).
Each Browser owns its chromedriver process and its profile directory and
removes both in quit().
"""

import os
import shutil
import sys
import tempfile
import time

SKIP = 77
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu",
    "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--disable-quic", "--window-size=1280,900",
]


def skip(why):
    print("SKIP: " + why, file=sys.stderr)
    sys.exit(SKIP)


def _import_selenium():
    """Import selenium; retry under Debian's python3 (which has
    python3-selenium) when this interpreter lacks it."""
    try:
        import selenium.webdriver  # noqa: F401
        return
    except ImportError:
        pass
    sysp = "/usr/bin/python3"
    if (os.path.exists(sysp) and os.path.realpath(sys.executable) !=
            os.path.realpath(sysp) and not os.environ.get("MQGATE_REEXEC")):
        os.environ["MQGATE_REEXEC"] = "1"
        os.execv(sysp, [sysp] + sys.argv)
    skip("python selenium module not installed")


def require():
    """Exit 77 unless chromium, chromedriver and selenium are all here."""
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not os.access(exe, os.X_OK):
            skip(exe + " not found")
    _import_selenium()


_out = None


def out_dir():
    """Where test artifacts go: tests/out/ in the build tree
    ($top_builddir, which `make check` sets; `make clean` removes the
    files), or a new temporary directory when there is none or it cannot
    be written. The same directory for the whole process."""
    global _out
    if _out is None:
        top = os.environ.get("top_builddir")
        d = os.path.join(top, "tests", "out") if top else None
        try:
            os.makedirs(d, exist_ok=True)
            if not os.access(d, os.W_OK):
                raise OSError("not writable")
        except (OSError, TypeError):
            d = tempfile.mkdtemp(prefix="mqgate-test-out-")
        _out = d
    return _out


class Browser:
    """One headless chromium. Use as a context manager or call quit()."""

    def __init__(self, width=1280, height=900):
        require()
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self.profile = tempfile.mkdtemp(prefix="mqgate-chromium-")
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for f in FLAGS:
            opts.add_argument(f)
        opts.add_argument("--user-data-dir=" + self.profile)
        log = open(os.path.join(self.profile, "chromedriver.log"), "w")
        try:
            self.driver = webdriver.Chrome(
                service=Service(CHROMEDRIVER, log_output=log)
                if _service_takes_log_output()
                else Service(CHROMEDRIVER, log_path=log.name),
                options=opts)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        finally:
            log.close()
        self.driver.set_window_size(width, height)
        self.driver.set_script_timeout(30)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.quit()

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- helpers ----------------------------------------------------------

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def ajs(self, script, *args):
        """Run async JS: the script's last argument is the callback
        (`arguments[arguments.length - 1]`)."""
        return self.driver.execute_async_script(script, *args)

    def wait(self, what, cond, timeout=10.0, step=0.05):
        """Poll cond() until it returns a true value; fail with `what`."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            try:
                last = cond()
            except Exception as e:  # page not ready yet, stale element...
                last = e
            else:
                if last:
                    return last
            time.sleep(step)
        raise AssertionError("timed out waiting for %s (last: %r)"
                             % (what, last))

    def load_library(self, base):
        """Open a page of the daemon's origin and load /mqgate.js in it."""
        self.driver.get(base + "/mqgate.js")
        ok = self.ajs("""
            const done = arguments[arguments.length - 1];
            const s = document.createElement('script');
            s.src = '/mqgate.js?' + Date.now();
            s.onload = () => done(typeof mqgate === 'object');
            s.onerror = () => done(false);
            document.head.append(s);""")
        if not ok:
            raise AssertionError("mqgate.js did not load from " + base)

    def color_scheme(self, scheme):
        """Emulate prefers-color-scheme: 'light' or 'dark'."""
        self.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {
            "features": [{"name": "prefers-color-scheme", "value": scheme}]})

    def screenshot(self, name):
        """Saves a PNG of the window as `name` in out_dir(); its path."""
        path = os.path.join(out_dir(), name)
        if not self.driver.save_screenshot(path):
            raise AssertionError("could not save " + path)
        return path

    def console(self):
        """Browser console lines since the last call (severe ones)."""
        try:
            return [e["message"] for e in self.driver.get_log("browser")]
        except Exception:
            return []


def _service_takes_log_output():
    import inspect
    from selenium.webdriver.chrome.service import Service
    return "log_output" in inspect.signature(Service.__init__).parameters


# -- daemons --------------------------------------------------------------
#
# The launchers are the integration harness's (mqgatetest.py): free ports,
# a private mosquitto, mqgate with readiness by polling /healthz. These
# subclasses keep what the browser tests rely on: a mosquitto_sub-based
# sub(), and one MQTT broker (`topic = # both 1`) with anonymous subscribe
# and publish and the source tree's www/ as docroot. Each object owns its
# process and temporary directory; stop()/cleanup() end what it started.


sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mqgatetest  # noqa: E402

free_port = mqgatetest.free_port


class Mosquitto(mqgatetest.Mosquitto):
    """A private mosquitto; pub() publishes exact bytes (qos 1 waits for
    the broker's ack)."""

    def sub(self, topic, count=1):
        """A subscriber of topic, subscribed when this returns (the broker
        has answered SUBACK); its communicate(timeout) gives the raw
        payloads of the next `count` messages, joined."""
        return Subscriber(self.port, topic, count)


class Subscriber:
    """One MQTT subscription with the interface of a finished
    `mosquitto_sub -C count -N` process: communicate() -> (bytes, None)."""

    def __init__(self, port, topic, count):
        self.count = count
        self.client = mqgatetest.MqttClient(port)
        self.client.subscribe(topic, 1)

    def communicate(self, timeout=20):
        try:
            end = time.monotonic() + timeout
            return b"".join(
                self.client.recv(max(end - time.monotonic(), 0.1)).payload
                for _ in range(self.count)), None
        finally:
            self.client.close()

    def stop(self):
        """Stops the broker and removes its directory (final)."""
        mqgatetest.Mosquitto.stop(self)
        shutil.rmtree(self.dir, ignore_errors=True)

    def cleanup(self):
        self.stop()


class Mqgate(mqgatetest.Mqgate):
    """mqgate with one MQTT broker (`topic = # both 1`), the source tree's
    www/ as docroot and, unless `auth` gives other lines for [auth],
    anonymous subscribe and publish."""

    def __init__(self, mosq, origins=None, extra_server="", auth=None):
        self._origins = origins
        self._extra_server = extra_server
        self._auth = auth or "anonymous_subscribe = #\nanonymous_publish = #\n"
        mqgatetest.Mqgate.__init__(self, mosq)

    def write_conf(self, *args, **kw):
        src = os.environ.get("top_srcdir") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..")
        text = ("[server]\nlisten = 127.0.0.1:%d\ndocroot = %s\n"
                "origins = %s\nplugin_dir = %s\nkeepalive = 5s\nuser = %s\n%s\n"
                "[auth]\n%s\n"
                "[broker home]\ntype = mqtt\n"
                "url = mqtt://127.0.0.1:%d\ntopic = # both 1\n"
                % (self.port, os.path.abspath(os.path.join(src, "www")),
                   self._origins or self.base, mqgatetest.PLUGIN_DIR,
                   mqgatetest.CURRENT_USER, self._extra_server, self._auth,
                   self.mosq.port))
        with open(self.conf, "w") as f:
            f.write(text)
        return text

    def logtext(self):
        return self.log()[-4000:]
