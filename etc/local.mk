# etc: build and install rules (see Makefile.am)

# The documented sample configuration (tests/unit/test_conf loads it).
mqgateconfdir = $(sysconfdir)/mqgate
dist_mqgateconf_DATA = etc/mqgate.conf
