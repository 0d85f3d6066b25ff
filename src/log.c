/*
 * log.c - the daemon's logging: level filter, stderr or syslog output.
 * Owns only the output settings (set at start-up and on reload).
 */
#include "log.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_max = LOG_LEVEL_INFO;
static bool log_syslog;
static int log_journal = -1;      /* stderr is read by journald */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const log_names[] = {
	[LOG_LEVEL_ERR] = "error",     [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level max)
{
	log_max = max;
}

enum log_level log_get_level(void)
{
	return log_max;
}

void log_use_syslog(bool on)
{
	if (on && !log_syslog)
		openlog("mqgate", LOG_PID | LOG_NDELAY, LOG_DAEMON);
	else if (!on && log_syslog)
		closelog();
	log_syslog = on;
}

int log_level_parse(const char *name)
{
	for (int l = LOG_LEVEL_ERR; l <= LOG_LEVEL_DEBUG; l++)
		if (strcasecmp(name, log_names[l]) == 0)
			return l;
	if (strcasecmp(name, "err") == 0)
		return LOG_LEVEL_ERR;
	if (strcasecmp(name, "warn") == 0)
		return LOG_LEVEL_WARNING;
	return -1;
}

/* systemd.exec(5): $JOURNAL_STREAM is "DEV:INODE" of the stream that goes
 * to the journal; it is inherited, so it counts only while stderr is still
 * that stream. */
static bool log_stderr_is_journal(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char extra;

	if (!env || sscanf(env, "%llu:%llu%c", &dev, &ino, &extra) != 2 ||
	    fstat(STDERR_FILENO, &st) < 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	       (unsigned long long)st.st_ino == ino;
}

bool log_enabled(enum log_level level)
{
	return level <= log_max;
}

void log_vmsg(enum log_level level, const char *module, const char *fmt,
	      va_list ap)
{
	char text[1024];

	if (!log_enabled(level))
		return;
	vsnprintf(text, sizeof(text), fmt, ap);
	/* One event, one line: fold any line break a message carries. */
	for (char *p = text; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (log_syslog) {
		syslog((int)level, "%s: %s", module, text);
		return;
	}
	if (log_journal < 0)
		log_journal = log_stderr_is_journal();
	pthread_mutex_lock(&log_lock);
	if (log_journal) /* sd-daemon(3) priority prefix */
		fprintf(stderr, "<%d>%s: %s\n", (int)level, module, text);
	else
		fprintf(stderr, "%s %s: %s\n",
			level <= LOG_LEVEL_DEBUG ? log_names[level] : "?",
			module, text);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, module, fmt, ap);
	va_end(ap);
}
