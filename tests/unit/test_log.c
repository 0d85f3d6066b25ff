/*
 * test_log.c - the logging path: level names both ways, level filtering,
 * the "LEVEL module: message" line on stderr, line breaks folded into
 * spaces, long messages cut, whole lines from concurrent threads, syslog
 * mode writing nothing to stderr, and the "<N>" priority prefix used only
 * when $JOURNAL_STREAM names stderr's own device:inode (as systemd.exec(5)
 * says to check).
 * log.c decides about the journal once per process, so every case that
 * writes runs in a child process whose stderr is a temporary file.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "log.h"

/* Runs fn in a child whose stderr is a temporary file, with
 * JOURNAL_STREAM set to journal (unset when NULL; "self" = the
 * device:inode of that file). Returns what the child wrote (malloc'd). */
static char *run_child(void (*fn)(void), const char *journal)
{
	FILE *tmp = tmpfile();
	pid_t pid;
	int status;
	long len;
	char *out;

	if (!tmp) {
		perror("tmpfile");
		exit(99);
	}
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(99);
	}
	if (pid == 0) {
		if (dup2(fileno(tmp), STDERR_FILENO) < 0)
			_exit(98);
		if (journal && strcmp(journal, "self") == 0) {
			struct stat st;
			char v[64];

			if (fstat(STDERR_FILENO, &st) < 0)
				_exit(98);
			snprintf(v, sizeof(v), "%llu:%llu",
				 (unsigned long long)st.st_dev,
				 (unsigned long long)st.st_ino);
			setenv("JOURNAL_STREAM", v, 1);
		} else if (journal) {
			setenv("JOURNAL_STREAM", journal, 1);
		} else {
			unsetenv("JOURNAL_STREAM");
		}
		fn();
		fflush(stderr);
		_exit(0);
	}
	if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) ||
	    WEXITSTATUS(status) != 0) {
		fprintf(stderr, "child failed (status %d)\n", status);
		exit(99);
	}
	/* The child wrote through the same open file: seek from scratch. */
	if (fseek(tmp, 0, SEEK_END) < 0)
		exit(99);
	len = ftell(tmp);
	if (len < 0 || fseek(tmp, 0, SEEK_SET) < 0 ||
	    !(out = calloc(1, (size_t)len + 1)) ||
	    fread(out, 1, (size_t)len, tmp) != (size_t)len) {
		fprintf(stderr, "cannot read the child's stderr\n");
		exit(99);
	}
	fclose(tmp);
	return out;
}

static void test_level_parse(void)
{
	CHECK_INT(log_level_parse("error"), LOG_LEVEL_ERR);
	CHECK_INT(log_level_parse("warning"), LOG_LEVEL_WARNING);
	CHECK_INT(log_level_parse("notice"), LOG_LEVEL_NOTICE);
	CHECK_INT(log_level_parse("info"), LOG_LEVEL_INFO);
	CHECK_INT(log_level_parse("debug"), LOG_LEVEL_DEBUG);
	/* the short forms and any case */
	CHECK_INT(log_level_parse("err"), LOG_LEVEL_ERR);
	CHECK_INT(log_level_parse("warn"), LOG_LEVEL_WARNING);
	CHECK_INT(log_level_parse("DEBUG"), LOG_LEVEL_DEBUG);
	CHECK_INT(log_level_parse("Info"), LOG_LEVEL_INFO);
	/* anything else */
	CHECK_INT(log_level_parse("verbose"), -1);
	CHECK_INT(log_level_parse(""), -1);
	CHECK_INT(log_level_parse("info "), -1);
	CHECK_INT(log_level_parse("inf"), -1);
	CHECK_INT(log_level_parse("7"), -1);
	CHECK_INT(log_level_parse("emerg"), -1);
}

static void test_enabled(void)
{
	enum log_level old = log_get_level();

	CHECK_INT(old, LOG_LEVEL_INFO);   /* the default */
	log_set_level(LOG_LEVEL_WARNING);
	CHECK_INT(log_get_level(), LOG_LEVEL_WARNING);
	CHECK(log_enabled(LOG_LEVEL_ERR));
	CHECK(log_enabled(LOG_LEVEL_WARNING));
	CHECK(!log_enabled(LOG_LEVEL_NOTICE));
	CHECK(!log_enabled(LOG_LEVEL_INFO));
	CHECK(!log_enabled(LOG_LEVEL_DEBUG));
	log_set_level(LOG_LEVEL_DEBUG);
	CHECK(log_enabled(LOG_LEVEL_DEBUG));
	log_set_level(old);
}

static int debug_args_evaluated;

static int count_evaluation(void)
{
	return ++debug_args_evaluated;
}

static void write_every_level(void)
{
	log_set_level(LOG_LEVEL_NOTICE);
	log_err("mod", "e %d", 1);
	log_warning("mod", "w %s", "two");
	log_notice("mod", "n");
	log_info("mod", "i");       /* filtered */
	log_debug("mod", "d %d", count_evaluation()); /* filtered, args unused */
	if (debug_args_evaluated)
		log_err("test", "log_debug evaluated its arguments");
	log_set_level(LOG_LEVEL_DEBUG);
	log_info("other", "i");
	log_debug("other", "d");
	log_msg(LOG_LEVEL_NOTICE, "x[y]", "%s", "plain");
}

static void test_format_and_filter(void)
{
	char *out = run_child(write_every_level, NULL);

	CHECK_STR(out, "error mod: e 1\n"
		       "warning mod: w two\n"
		       "notice mod: n\n"
		       "info other: i\n"
		       "debug other: d\n"
		       "notice x[y]: plain\n");
	free(out);
}

static void write_breaks(void)
{
	log_warning("m", "a\nb\r\nc\n");
	log_info("m", "%s", "line1\nline2");
}

static void test_line_breaks(void)
{
	char *out = run_child(write_breaks, NULL);

	CHECK_STR(out, "warning m: a b  c \ninfo m: line1 line2\n");
	free(out);
}

static void write_long(void)
{
	char big[3000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	log_info("m", "%s", big);
	log_info("m", "after");
}

/* A message over the buffer is cut, still one line, and the next one is
 * intact. */
static void test_long(void)
{
	char *out = run_child(write_long, NULL);
	char *nl = strchr(out, '\n');

	CHECK(nl != NULL);
	if (nl) {
		CHECK(strncmp(out, "info m: xxxx", 12) == 0);
		CHECK(nl - out > 512);
		CHECK(nl - out < 3000);
		CHECK_STR(nl + 1, "info m: after\n");
	}
	free(out);
}

static void *log_thread(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < 300; i++)
		log_notice("thread", "t=%d i=%d some padding to make lines longer %0200d",
			   t, i, 0);
	return NULL;
}

static void write_threads(void)
{
	pthread_t th[4];

	for (int i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, log_thread, (void *)(intptr_t)i) != 0)
			_exit(97);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
}

/* Lines from several threads never interleave. */
static void test_threads(void)
{
	char *out = run_child(write_threads, NULL), *p = out, *nl;
	int seen[4] = { 0 };
	unsigned bad = 0, lines = 0;

	for (; (nl = strchr(p, '\n')); p = nl + 1) {
		int t, i, n = 0;

		*nl = 0;
		lines++;
		if (sscanf(p, "notice thread: t=%d i=%d some padding to make lines "
			   "longer %*d%n", &t, &i, &n) != 2 ||
		    (size_t)n != strlen(p) || t < 0 || t > 3 || i != seen[t]) {
			bad++;
			continue;
		}
		seen[t]++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(lines, 1200);
	CHECK_STR(p, "");
	for (int t = 0; t < 4; t++)
		CHECK_INT(seen[t], 300);
	free(out);
}

static void write_journal(void)
{
	log_set_level(LOG_LEVEL_DEBUG);
	log_err("m", "e");
	log_warning("m", "w");
	log_notice("m", "n");
	log_info("m", "i\nj");
	log_debug("m", "d");
}

static const char plain_levels[] = "error m: e\nwarning m: w\nnotice m: n\n"
				   "info m: i j\ndebug m: d\n";

/* JOURNAL_STREAM naming stderr: "<N>" prefixes, syslog numbering. */
static void test_journal(void)
{
	char *out = run_child(write_journal, "self");

	CHECK_STR(out, "<3>m: e\n<4>m: w\n<5>m: n\n<6>m: i j\n<7>m: d\n");
	free(out);
}

/* JOURNAL_STREAM set but naming another stream (inherited from a parent
 * whose output went to the journal, while ours is redirected): plain
 * lines. */
static void test_journal_elsewhere(void)
{
	static const char *const values[] = { "1:2", "", "garbage", "12" };

	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char *out = run_child(write_journal, values[i]);

		CHECK_STR(out, plain_levels);
		if (strcmp(out, plain_levels) != 0)
			fprintf(stderr, "  with JOURNAL_STREAM=\"%s\"\n", values[i]);
		free(out);
	}
	{
		char *out = run_child(write_journal, NULL);

		CHECK_STR(out, plain_levels);
		free(out);
	}
}

static void write_syslog(void)
{
	log_use_syslog(true);
	log_err("m", "to syslog, not stderr");
	log_use_syslog(false);
	log_err("m", "back on stderr");
}

static void test_syslog(void)
{
	char *out = run_child(write_syslog, NULL);

	CHECK_STR(out, "error m: back on stderr\n");
	free(out);
}

int main(void)
{
	test_level_parse();
	test_enabled();
	test_format_and_filter();
	test_line_breaks();
	test_long();
	test_threads();
	test_journal();
	test_journal_elsewhere();
	test_syslog();
	return check_summary("test_log");
}
