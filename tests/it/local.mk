# tests/it: build and install rules (see Makefile.am)

# Real-browser tests (headless chromium via selenium; 77 = skipped).
TESTS += tests/it/test_browser_dashboard.py \
	tests/it/test_browser_resume.py \
	tests/it/test_browser_sse.py \
	tests/it/test_browser_share.py
EXTRA_DIST += tests/it/browser.py tests/it/test_browser_dashboard.py \
	tests/it/test_browser_resume.py tests/it/test_browser_sse.py \
	tests/it/test_browser_share.py
