/*
 * check.h - the unit tests' assertion macros. A test program runs its
 * checks, prints each failure with file:line, and ends with
 * `return check_summary(name);`: exit 0 when every check passed, 1 when
 * any failed (automake's test driver reads the exit status).
 */
#ifndef MQGATE_CHECK_H
#define MQGATE_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static unsigned check_run, check_failed;

#define CHECK(cond)                                                          \
	do {                                                                 \
		check_run++;                                                 \
		if (!(cond)) {                                               \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: check failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
		}                                                            \
	} while (0)

#define CHECK_INT(got, want)                                                 \
	do {                                                                 \
		long long g_ = (long long)(got), w_ = (long long)(want);     \
		check_run++;                                                 \
		if (g_ != w_) {                                              \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: %s is %lld, want %lld\n",    \
				__FILE__, __LINE__, #got, g_, w_);           \
		}                                                            \
	} while (0)

#define CHECK_STR(got, want)                                                 \
	do {                                                                 \
		const char *g_ = (got), *w_ = (want);                        \
		check_run++;                                                 \
		if (!g_ || !w_ || strcmp(g_, w_) != 0) {                     \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: %s is \"%s\", want \"%s\"\n",\
				__FILE__, __LINE__, #got, g_ ? g_ : "(null)", \
				w_ ? w_ : "(null)");                         \
		}                                                            \
	} while (0)

/* Compares got[0..got_len) with the NUL-terminated want. */
#define CHECK_MEM(got, got_len, want)                                        \
	do {                                                                 \
		const char *g_ = (const char *)(got), *w_ = (want);          \
		size_t gl_ = (got_len);                                      \
		check_run++;                                                 \
		if (!g_ || gl_ != strlen(w_) || memcmp(g_, w_, gl_) != 0) {  \
			check_failed++;                                      \
			fprintf(stderr, "%s:%d: %s is \"%.*s\", want \"%s\"\n", \
				__FILE__, __LINE__, #got, g_ ? (int)gl_ : 6, \
				g_ ? g_ : "(null)", w_);                     \
		}                                                            \
	} while (0)

static inline int check_summary(const char *name)
{
	printf("%s: %u checks, %u failed\n", name, check_run, check_failed);
	if (check_run == 0) {
		fprintf(stderr, "%s: no check ran\n", name);
		return 99;
	}
	return check_failed ? 1 : 0;
}

#endif
