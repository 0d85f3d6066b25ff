# Benchmarks: built by `make bench`, never by `make check`.
EXTRA_PROGRAMS = tests/bench/loadgen
tests_bench_loadgen_SOURCES = tests/bench/loadgen.c
tests_bench_loadgen_LDADD = $(MOSQUITTO_LIBS) -lpthread
CLEANFILES += tests/bench/loadgen
EXTRA_DIST += tests/bench

.PHONY: bench
bench: tests/bench/loadgen$(EXEEXT) mqgate$(EXEEXT)
	$(top_srcdir)/tests/bench/run.sh

# Bad input and abusive load against one daemon (tests/bench/battery.py):
# prints figures per stage; exits non-zero when the daemon died or a
# client that must lose nothing lost something. `make check` runs its
# quick version, tests/it/test_battery.py.
.PHONY: battery
battery: mqgate$(EXEEXT) $(pkglib_LTLIBRARIES)
	$(AM_TESTS_ENVIRONMENT) $(top_srcdir)/tests/bench/battery.py
