# etc: build and install rules (see Makefile.am): the sample configuration
# and the systemd unit.

# The documented sample configuration (tests/unit/test_conf loads it).
mqgateconfdir = $(sysconfdir)/mqgate
dist_mqgateconf_DATA = etc/mqgate.conf

# The systemd unit, with the configured paths filled in. Where it goes is
# chosen by configure (--with-systemdsystemunitdir=DIR, default
# $(prefix)/lib/systemd/system, `no` = not installed) and can be changed
# at install time:
#   make install systemdsystemunitdir=/usr/lib/systemd/system
if INSTALL_SYSTEMD_UNIT
systemdsystemunit_DATA = etc/mqgate.service
endif

etc/mqgate.service: $(srcdir)/etc/mqgate.service.in Makefile
	$(AM_V_GEN)$(MKDIR_P) etc && \
	sed -e 's|@sbindir[@]|$(sbindir)|g' \
	    -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
	    $(srcdir)/etc/mqgate.service.in >$@.tmp && \
	mv $@.tmp $@

CLEANFILES += etc/mqgate.service etc/mqgate.service.tmp
EXTRA_DIST += etc/mqgate.service.in etc/demo.conf
