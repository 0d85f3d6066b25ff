# doc: build and install rules (see Makefile.am)
