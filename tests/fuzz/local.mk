# tests/fuzz: build and install rules (see Makefile.am)
