# etc: build and install rules (see Makefile.am): the sample configuration
# and the systemd unit.

# The documented sample configuration (tests/unit/test_conf loads it),
# installed as $(sysconfdir)/mqgate/mqgate.conf. An existing file there is
# the operator's: `make install` leaves it as it is, and `make uninstall`
# removes the file only while it is still the sample.
mqgateconfdir = $(sysconfdir)/mqgate
EXTRA_DIST += etc/mqgate.conf

install-data-local: install-mqgate-conf
install-mqgate-conf:
	@$(NORMAL_INSTALL)
	$(MKDIR_P) '$(DESTDIR)$(mqgateconfdir)'
	@f='$(DESTDIR)$(mqgateconfdir)/mqgate.conf'; \
	if test -f "$$f"; then \
		echo "$$f exists: kept (the new sample is not installed)"; \
	else \
		echo " $(INSTALL_DATA) $(srcdir)/etc/mqgate.conf '$$f'"; \
		$(INSTALL_DATA) $(srcdir)/etc/mqgate.conf "$$f" || exit 1; \
	fi

uninstall-local: uninstall-mqgate-conf
uninstall-mqgate-conf:
	@$(NORMAL_UNINSTALL)
	@f='$(DESTDIR)$(mqgateconfdir)/mqgate.conf'; \
	if cmp -s "$$f" $(srcdir)/etc/mqgate.conf; then \
		echo " rm -f '$$f'"; \
		rm -f "$$f" || exit 1; \
	elif test -f "$$f"; then \
		echo "$$f is not the sample: kept"; \
	fi

.PHONY: install-mqgate-conf uninstall-mqgate-conf

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
