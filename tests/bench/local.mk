# tests/bench: build and install rules (see Makefile.am)
