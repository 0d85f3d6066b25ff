# Benchmarks: built by `make bench`, never by `make check`.
EXTRA_PROGRAMS = tests/bench/loadgen
tests_bench_loadgen_SOURCES = tests/bench/loadgen.c
tests_bench_loadgen_LDADD = $(MOSQUITTO_LIBS) -lpthread
CLEANFILES += tests/bench/loadgen
EXTRA_DIST += tests/bench

.PHONY: bench
bench: tests/bench/loadgen$(EXEEXT) mqgate$(EXEEXT)
	$(top_srcdir)/tests/bench/run.sh
