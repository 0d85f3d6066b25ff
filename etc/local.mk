# etc: build and install rules (see Makefile.am)
