# plugins: the broker backends, libtool modules that src/backend.c loads
# with dlopen from the plugin dir (plugins/.libs during `make check`).
# Each exports only `mqgate_backend`; backoff.c and url.c, and the core's
# topic.c and utf8.c, are compiled into every module that uses them (no
# shared helper library).

PLUGIN_LDFLAGS = -module -avoid-version -shared \
	-export-symbols-regex '^mqgate_backend$$'

# loopback: an in-process broker for tests; built, never installed. A
# noinst libtool library is a convenience archive unless given -rpath.
noinst_LTLIBRARIES += plugins/loopback.la
plugins_loopback_la_SOURCES = plugins/loopback.c \
	src/topic.c src/topic.h src/utf8.c src/utf8.h
plugins_loopback_la_CFLAGS = $(AM_CFLAGS)
plugins_loopback_la_LDFLAGS = $(PLUGIN_LDFLAGS) -rpath /nowhere
plugins_loopback_la_LIBADD = -lpthread

if BUILD_MQTT
pkglib_LTLIBRARIES += plugins/mqtt.la
plugins_mqtt_la_SOURCES = plugins/mqtt.c \
	plugins/backoff.c plugins/backoff.h \
	plugins/url.c plugins/url.h
plugins_mqtt_la_CFLAGS = $(AM_CFLAGS) $(MOSQUITTO_CFLAGS)
plugins_mqtt_la_LDFLAGS = $(PLUGIN_LDFLAGS)
plugins_mqtt_la_LIBADD = $(MOSQUITTO_LIBS) -lpthread
endif

# amqp: AMQP 0-9-1 brokers (RabbitMQ) through rabbitmq-c.
if BUILD_AMQP
pkglib_LTLIBRARIES += plugins/amqp.la
plugins_amqp_la_SOURCES = plugins/amqp.c \
	plugins/backoff.c plugins/backoff.h \
	plugins/url.c plugins/url.h \
	src/topic.c src/topic.h src/utf8.c src/utf8.h
plugins_amqp_la_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS) $(OPENSSL_CFLAGS)
plugins_amqp_la_LDFLAGS = $(PLUGIN_LDFLAGS)
# libssl: the TLS context rabbitmq-c hands out (IP address checks).
plugins_amqp_la_LIBADD = $(RABBITMQ_LIBS) -lssl $(OPENSSL_LIBS) -lpthread
endif

# The daemon dlopens NAME.so; libtool's .la files are of no use beside
# them (and configure disables static archives), so none stays in
# $(pkglibdir). Without its .la, `libtool --mode=uninstall` no longer
# knows the module, so uninstall removes the .so itself.
install-exec-hook: install-exec-plugins
install-exec-plugins:
	@for la in $(pkglib_LTLIBRARIES); do \
		f="$(DESTDIR)$(pkglibdir)/`basename $$la .la`.la"; \
		echo " rm -f '$$f'"; \
		rm -f "$$f" || exit 1; \
	done

uninstall-hook: uninstall-plugins
uninstall-plugins:
	@for la in $(pkglib_LTLIBRARIES); do \
		f="$(DESTDIR)$(pkglibdir)/`basename $$la .la`.so"; \
		echo " rm -f '$$f'"; \
		rm -f "$$f" || exit 1; \
	done

.PHONY: install-exec-plugins uninstall-plugins
