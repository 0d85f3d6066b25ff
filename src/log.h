/*
 * log.h - the daemon's one logging path: level, module, message.
 * Foreground: one line per event on stderr ("LEVEL module: message").
 * Daemonized: syslog(3) with the same text. Thread-safe.
 */
#ifndef MQGATE_LOG_H
#define MQGATE_LOG_H

#include <stdarg.h>
#include <stdbool.h>

#include "mqgate/backend.h"

enum log_level {
	LOG_LEVEL_ERR = MQGATE_LOG_ERR,
	LOG_LEVEL_WARNING = MQGATE_LOG_WARNING,
	LOG_LEVEL_NOTICE = MQGATE_LOG_NOTICE,
	LOG_LEVEL_INFO = MQGATE_LOG_INFO,
	LOG_LEVEL_DEBUG = MQGATE_LOG_DEBUG,
};

void log_set_level(enum log_level max);
enum log_level log_get_level(void);
/* Switches output to syslog (after daemonizing). */
void log_use_syslog(bool on);
/* Parses "error|warning|notice|info|debug"; -1 if unknown. */
int log_level_parse(const char *name);
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *module, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *module, const char *fmt,
	      va_list ap)
	__attribute__((format(printf, 3, 0)));

#define log_err(mod, ...) log_msg(LOG_LEVEL_ERR, mod, __VA_ARGS__)
#define log_warning(mod, ...) log_msg(LOG_LEVEL_WARNING, mod, __VA_ARGS__)
#define log_notice(mod, ...) log_msg(LOG_LEVEL_NOTICE, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_LEVEL_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                           \
	do {                                                          \
		if (log_enabled(LOG_LEVEL_DEBUG))                     \
			log_msg(LOG_LEVEL_DEBUG, mod, __VA_ARGS__);   \
	} while (0)

#endif
