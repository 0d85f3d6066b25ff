# tests/unit: build and install rules (see Makefile.am)
