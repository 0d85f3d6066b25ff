# tests/it: build and install rules (see Makefile.am)
