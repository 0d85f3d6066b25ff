"""browser.py - Selenium helpers for mqgate's real-browser tests.

Starts Debian's headless chromium through chromedriver (selenium 4 Service)
with a fresh profile directory, and offers small helpers the tests share:
waiting for a condition, running async JavaScript, loading mqgate.js into a
page of the daemon's origin, and saving screenshots under tests/out/.

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


def out_dir():
    """tests/out/ in the source tree (git-ignored): test artifacts."""
    top = os.environ.get("top_srcdir") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    d = os.path.join(top, "tests", "out")
    os.makedirs(d, exist_ok=True)
    return d


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
        path = os.path.join(out_dir(), name)
        self.driver.save_screenshot(path)
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
