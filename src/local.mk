# The daemon. Its modules live in libmqgate.a so unit tests link them too.
noinst_LIBRARIES += libmqgate.a
libmqgate_a_SOURCES = \
	src/log.c src/log.h \
	src/topic.c src/topic.h \
	src/trie.c src/trie.h \
	src/utf8.c src/utf8.h \
	src/json.c src/json.h \
	src/payload.c src/payload.h \
	src/msg.c src/msg.h \
	src/history.c src/history.h \
	src/lvc.c src/lvc.h \
	src/conf.c src/conf.h \
	src/acl.c src/acl.h \
	src/netaddr.c src/netaddr.h \
	src/ratelimit.c src/ratelimit.h \
	src/auth.c src/auth.h \
	src/inbox.c src/inbox.h \
	src/backend.c src/backend.h \
	src/metrics.c src/metrics.h \
	src/proto.c src/proto.h \
	src/session.c src/session.h \
	src/hub.c src/hub.h \
	src/publish.c src/publish.h \
	src/server.c src/server.h \
	src/notify.c src/notify.h \
	src/ws.c src/sse.c src/http.c
libmqgate_a_CFLAGS = $(AM_CFLAGS) $(LWS_CFLAGS) $(CJSON_CFLAGS) $(OPENSSL_CFLAGS)

MQGATE_CORE_LIBS = libmqgate.a $(LWS_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) -lpthread

sbin_PROGRAMS += mqgate
mqgate_SOURCES = src/main.c
mqgate_CFLAGS = $(AM_CFLAGS) $(LWS_CFLAGS) $(CJSON_CFLAGS)
mqgate_LDADD = $(MQGATE_CORE_LIBS) $(LIBS)
