# tests/fuzz: libFuzzer targets. Built by `make fuzz` with clang and
# -fsanitize=fuzzer,address,undefined, whatever CC configure picked; never
# part of `make check` (tools/check.sh runs each target for a while).
#
# A target is tests/fuzz/fuzz_NAME.c defining LLVMFuzzerTestOneInput,
# seed inputs committed under tests/fuzz/corpus/NAME/ (optional:
# tests/fuzz/NAME.dict), and ONE line below:
#   FUZZ_TARGETS += tests/fuzz/fuzz_NAME
# Every target links tests/fuzz/libmqgate-fuzz.a, the core modules of
# libmqgate.a compiled again with the fuzzing flags: the linker takes from
# it only the modules the target needs. The project's warning flags apply,
# but not as errors: the sanitizer build is where clang's warnings fail.
#
#   make fuzz                 build every target
#   make fuzz-targets         list them, one path per line
#   tests/fuzz/fuzz_NAME -max_total_time=30 NEWDIR $(srcdir)/tests/fuzz/corpus/NAME

FUZZ_TARGETS =
FUZZ_TARGETS += tests/fuzz/fuzz_conf
FUZZ_TARGETS += tests/fuzz/fuzz_topic
FUZZ_TARGETS += tests/fuzz/fuzz_request
FUZZ_TARGETS += tests/fuzz/fuzz_payload
FUZZ_TARGETS += tests/fuzz/fuzz_netaddr

FUZZ_CC = clang-14
FUZZ_SANITIZE = address,undefined
FUZZ_CFLAGS = -g -O1 -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
	-Wno-error
FUZZ_CPPFLAGS = $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) $(CPPFLAGS) \
	$(LWS_CFLAGS) $(CJSON_CFLAGS) $(OPENSSL_CFLAGS)
FUZZ_LIBS = $(LWS_LIBS) $(CJSON_LIBS) $(OPENSSL_LIBS) $(MOSQUITTO_LIBS) \
	-lpthread $(LIBS)
FUZZ_LIB = tests/fuzz/libmqgate-fuzz.a

# The core modules, rebuilt as a whole when any source or header changes.
$(FUZZ_LIB): $(libmqgate_a_SOURCES) $(include_mqgate_HEADERS) config.h
	@rm -f $@ tests/fuzz/obj/*.o
	@$(MKDIR_P) tests/fuzz/obj
	@for s in $(libmqgate_a_SOURCES); do \
		case $$s in *.c) ;; *) continue ;; esac; \
		o=tests/fuzz/obj/`basename $$s .c`.o; \
		echo "  FUZZCC   $$o"; \
		$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(WARN_CFLAGS) $(FUZZ_CFLAGS) \
			-fsanitize=fuzzer-no-link,$(FUZZ_SANITIZE) \
			-c -o $$o $(srcdir)/$$s || exit 1; \
	done
	@echo "  AR       $@"
	@$(AR) cr $@ tests/fuzz/obj/*.o

.PHONY: fuzz fuzz-targets
fuzz: $(FUZZ_LIB)
	@for t in $(FUZZ_TARGETS); do \
		echo "  FUZZLD   $$t"; \
		$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(WARN_CFLAGS) $(FUZZ_CFLAGS) \
			-fsanitize=fuzzer,$(FUZZ_SANITIZE) -o $$t \
			$(srcdir)/$$t.c $(FUZZ_LIB) $(FUZZ_LIBS) || exit 1; \
	done

fuzz-targets:
	@for t in $(FUZZ_TARGETS); do echo $$t; done

CLEANFILES += $(FUZZ_TARGETS) $(FUZZ_LIB) tests/fuzz/obj/*.o
EXTRA_DIST += tests/fuzz
