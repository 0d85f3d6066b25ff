# tests/it: build and install rules (see Makefile.am)

# Integration tests against the real daemon and a private mosquitto on
# free loopback ports (tests/it/mqgatetest.py is the harness; 77 = skipped
# when mosquitto, python3-websocket or mqgate is missing). Each starts its
# own processes, so `make check -j` runs them side by side.
TESTS += tests/it/test_ws_ops.py \
	tests/it/test_ws_errors.py \
	tests/it/test_sse.py \
	tests/it/test_http.py \
	tests/it/test_outage.py \
	tests/it/test_drain.py \
	tests/it/test_cli.py \
	tests/it/test_slow.py
EXTRA_DIST += tests/it/mqgatetest.py tests/it/test_ws_ops.py \
	tests/it/test_ws_errors.py tests/it/test_sse.py tests/it/test_http.py \
	tests/it/test_outage.py tests/it/test_drain.py tests/it/test_cli.py \
	tests/it/test_slow.py

# Real-browser tests (headless chromium via selenium; 77 = skipped).
TESTS += tests/it/test_browser_dashboard.py \
	tests/it/test_browser_resume.py \
	tests/it/test_browser_sse.py \
	tests/it/test_browser_share.py \
	tests/it/test_browser_client.py
EXTRA_DIST += tests/it/browser.py tests/it/test_browser_dashboard.py \
	tests/it/test_browser_resume.py tests/it/test_browser_sse.py \
	tests/it/test_browser_share.py tests/it/test_browser_client.py
# Their screenshots (browser.py: tests/out/ of the build tree).
CLEANFILES += tests/out/*.png

# Size of the client library; minified too when MQGATE_TERSER names terser.
TESTS += tests/it/test_browser_size.py
EXTRA_DIST += tests/it/test_browser_size.py

# Reload of broker sections (SIGHUP) with clients connected.
TESTS += tests/it/test_reload.py
EXTRA_DIST += tests/it/test_reload.py

# Operational metrics: latency histogram, bytes in, queue depths.
TESTS += tests/it/test_metrics.py
EXTRA_DIST += tests/it/test_metrics.py

# Two instances behind haproxy (scale-out).
TESTS += tests/it/test_scaleout.py
EXTRA_DIST += tests/it/test_scaleout.py

# JWT auth, claims, expiry.
TESTS += tests/it/test_auth.py
EXTRA_DIST += tests/it/test_auth.py

# AMQP broker beside MQTT (a private RabbitMQ node; skipped without one).
EXTRA_DIST += tests/it/test_amqp.py
if BUILD_AMQP
TESTS += tests/it/test_amqp.py
endif

# Bad input and abusive load, the quick version of tests/bench/battery.py.
TESTS += tests/it/test_battery.py
EXTRA_DIST += tests/it/test_battery.py

# TLS listener.
TESTS += tests/it/test_tls.py
EXTRA_DIST += tests/it/test_tls.py

# make install DESTDIR=<tmp> from the build tree: the layout of CONFIG.md,
# the installed daemon on the installed sample, make uninstall.
TESTS += tests/it/test_install.py
EXTRA_DIST += tests/it/test_install.py
