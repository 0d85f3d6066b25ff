# www: build and install rules (see Makefile.am)
