# Unit tests: one program per module, tests/unit/test_MODULE.c mirroring
# src/MODULE.c (and plugins/NAME.c). Each links the core library.
# To add one, append a block like:
#   check_PROGRAMS += tests/unit/test_topic
#   tests_unit_test_topic_LDADD = $(UNIT_LIBS)
# (TESTS picks up every check program below.)

UNIT_LIBS = $(MQGATE_CORE_LIBS) $(MOSQUITTO_LIBS) $(LIBS)
UNIT_CFLAGS = $(AM_CFLAGS) $(LWS_CFLAGS) $(CJSON_CFLAGS)
EXTRA_DIST += tests/unit/check.h
# Block pattern (append with one `cat >>`):
#   check_PROGRAMS += tests/unit/test_topic
#   TESTS += tests/unit/test_topic
#   tests_unit_test_topic_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_acl
TESTS += tests/unit/test_acl
tests_unit_test_acl_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_auth
TESTS += tests/unit/test_auth
tests_unit_test_auth_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_inbox
TESTS += tests/unit/test_inbox
tests_unit_test_inbox_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_payload
TESTS += tests/unit/test_payload
tests_unit_test_payload_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_msg
TESTS += tests/unit/test_msg
tests_unit_test_msg_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_history
TESTS += tests/unit/test_history
tests_unit_test_history_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_lvc
TESTS += tests/unit/test_lvc
tests_unit_test_lvc_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_topic
TESTS += tests/unit/test_topic
tests_unit_test_topic_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_session
TESTS += tests/unit/test_session
tests_unit_test_session_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_trie
TESTS += tests/unit/test_trie
tests_unit_test_trie_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_conf
TESTS += tests/unit/test_conf
tests_unit_test_conf_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_proto
TESTS += tests/unit/test_proto
tests_unit_test_proto_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_hub
TESTS += tests/unit/test_hub
tests_unit_test_hub_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_utf8
TESTS += tests/unit/test_utf8
tests_unit_test_utf8_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_json
TESTS += tests/unit/test_json
tests_unit_test_json_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_backoff
TESTS += tests/unit/test_backoff
tests_unit_test_backoff_SOURCES = tests/unit/test_backoff.c plugins/backoff.c
tests_unit_test_backoff_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins
tests_unit_test_backoff_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_url
TESTS += tests/unit/test_url
tests_unit_test_url_SOURCES = tests/unit/test_url.c plugins/url.c
tests_unit_test_url_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/plugins
tests_unit_test_url_LDADD = $(UNIT_LIBS)

# Plugin tests drive a built module (from $MQGATE_PLUGIN_DIR) through a
# fake host.
check_PROGRAMS += tests/unit/test_loopback
TESTS += tests/unit/test_loopback
tests_unit_test_loopback_SOURCES = tests/unit/test_loopback.c \
	tests/unit/plugin_host.c tests/unit/plugin_host.h
tests_unit_test_loopback_LDADD = $(UNIT_LIBS)

if BUILD_MQTT
check_PROGRAMS += tests/unit/test_mqtt
TESTS += tests/unit/test_mqtt
tests_unit_test_mqtt_SOURCES = tests/unit/test_mqtt.c \
	tests/unit/plugin_host.c tests/unit/plugin_host.h
tests_unit_test_mqtt_CFLAGS = $(AM_CFLAGS) $(MOSQUITTO_CFLAGS)
tests_unit_test_mqtt_LDADD = $(UNIT_LIBS)
endif

check_PROGRAMS += tests/unit/test_netaddr
TESTS += tests/unit/test_netaddr
tests_unit_test_netaddr_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_metrics
TESTS += tests/unit/test_metrics
tests_unit_test_metrics_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_log
TESTS += tests/unit/test_log
tests_unit_test_log_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_notify
TESTS += tests/unit/test_notify
tests_unit_test_notify_LDADD = $(UNIT_LIBS)

# test_backend loads these broken and key-testing plugins from
# tests/unit/.libs; -rpath makes libtool build them as shared modules.
TEST_PLUGIN_LDFLAGS = -module -avoid-version -shared -rpath /nowhere
check_LTLIBRARIES += tests/unit/testkeys.la tests/unit/badabi.la \
	tests/unit/small.la tests/unit/nosym.la tests/unit/incomplete.la \
	tests/unit/wrongname.la
tests_unit_testkeys_la_SOURCES = tests/unit/plugin_keys.c
tests_unit_testkeys_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_unit_badabi_la_SOURCES = tests/unit/plugin_bad.c
tests_unit_badabi_la_CPPFLAGS = $(AM_CPPFLAGS) -DPLUGIN_BAD_ABI
tests_unit_badabi_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_unit_small_la_SOURCES = tests/unit/plugin_bad.c
tests_unit_small_la_CPPFLAGS = $(AM_CPPFLAGS) -DPLUGIN_BAD_SMALL
tests_unit_small_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_unit_nosym_la_SOURCES = tests/unit/plugin_bad.c
tests_unit_nosym_la_CPPFLAGS = $(AM_CPPFLAGS) -DPLUGIN_BAD_NOSYM
tests_unit_nosym_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_unit_incomplete_la_SOURCES = tests/unit/plugin_bad.c
tests_unit_incomplete_la_CPPFLAGS = $(AM_CPPFLAGS) -DPLUGIN_BAD_INCOMPLETE
tests_unit_incomplete_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_unit_wrongname_la_SOURCES = tests/unit/plugin_bad.c
tests_unit_wrongname_la_CPPFLAGS = $(AM_CPPFLAGS) -DPLUGIN_BAD_WRONGNAME
tests_unit_wrongname_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)

check_PROGRAMS += tests/unit/test_backend
TESTS += tests/unit/test_backend
tests_unit_test_backend_LDADD = $(UNIT_LIBS)

# test_amqp starts a private RabbitMQ node (tests/tools/rabbitmq-node;
# skipped without RabbitMQ) and talks to it with rabbitmq-c too.
EXTRA_DIST += tests/tools/rabbitmq-node
if BUILD_AMQP
check_PROGRAMS += tests/unit/test_amqp
TESTS += tests/unit/test_amqp
tests_unit_test_amqp_SOURCES = tests/unit/test_amqp.c \
	tests/unit/plugin_host.c tests/unit/plugin_host.h
tests_unit_test_amqp_CFLAGS = $(AM_CFLAGS) $(RABBITMQ_CFLAGS)
tests_unit_test_amqp_LDADD = $(UNIT_LIBS) $(RABBITMQ_LIBS)
endif

check_PROGRAMS += tests/unit/test_publish
TESTS += tests/unit/test_publish
tests_unit_test_publish_LDADD = $(UNIT_LIBS)

check_PROGRAMS += tests/unit/test_ratelimit
TESTS += tests/unit/test_ratelimit
tests_unit_test_ratelimit_LDADD = $(UNIT_LIBS)
