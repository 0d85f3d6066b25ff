/*
 * main.c - mqgate's entry point: command line, configuration, start-up
 * order (config, plugins, listeners, privileges, daemon, brokers), reload
 * on SIGHUP and the orderly exit after a drain. Owns the configurations in
 * force.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth.h"
#include "backend.h"
#include "conf.h"
#include "hub.h"
#include "inbox.h"
#include "log.h"
#include "msg.h"
#include "notify.h"
#include "server.h"

#include "config.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/usr/local/etc"
#endif

#define EX_USAGE_STATUS 64
#define INBOX_MAX_MSGS 20000
#define INBOX_MAX_BYTES (64u << 20)

static const char *main_conf_path = SYSCONFDIR "/mqgate/mqgate.conf";
static struct conf *main_conf;          /* in force */
static struct conf *main_broker_conf;   /* the brokers were built from */
static int main_verbosity;              /* -v minus -q */

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: mqgate [-c FILE] [-t] [-d] [-v|-q] [-V] [-h]\n"
		"  -c FILE  config file (default: %s)\n"
		"  -t       check the config and exit: 0 valid, 78 invalid\n"
		"  -d       run as a daemon (logs go to syslog)\n"
		"  -v / -q  more / less logging (repeatable)\n"
		"  -V       print the version and exit\n"
		"  -h       print this help and exit\n",
		SYSCONFDIR "/mqgate/mqgate.conf");
}

static void main_apply_log_level(const struct conf *c)
{
	int level = c->server.log_level + main_verbosity;

	if (level < LOG_LEVEL_ERR)
		level = LOG_LEVEL_ERR;
	if (level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	log_set_level((enum log_level)level);
}

/* Checks what the key table cannot: the pieces that must go together. */
static int main_check_supported(const struct conf *c, FILE *errs)
{
	const struct conf_server *s = &c->server;
	bool cert = s->tls_cert_file && s->tls_cert_file[0];
	bool key = s->tls_key_file && s->tls_key_file[0];

	if (cert != key) {
		fprintf(errs, "%s: tls_cert_file and tls_key_file go together\n",
			c->file);
		return -EINVAL;
	}
	if (c->auth.jwt_secret && c->auth.jwt_public_key) {
		fprintf(errs, "%s: set jwt_secret_file or jwt_public_key_file, "
			"not both\n", c->file);
		return -EINVAL;
	}
	return 0;
}

/* Loads config + plugins; errors to errs. Returns 0, -EINVAL or -errno. */
static int main_load(const char *path, FILE *errs, struct conf **out,
		     struct broker_set **brokers)
{
	struct conf *c = NULL;
	int r = conf_load(path, errs, &c);

	if (r < 0)
		return r;
	if (main_check_supported(c, errs) < 0) {
		conf_free(c);
		return -EINVAL;
	}
	r = broker_set_load(c, broker_plugin_dir(c), errs, brokers);
	if (r < 0) {
		conf_free(c);
		return r;
	}
	*out = c;
	return 0;
}

/* Logs every line a failed load wrote. */
static void main_log_lines(const char *text)
{
	const char *p = text;

	while (p && *p) {
		const char *nl = strchr(p, '\n');
		int n = nl ? (int)(nl - p) : (int)strlen(p);

		if (n)
			log_err("config", "%.*s", n, p);
		p = nl ? nl + 1 : NULL;
	}
}

/* Brokers are compared by their sections' text: when nothing changed they
 * keep their connections; any change restarts every broker connection
 * (clients stay connected). A change of listeners needs a restart. */
static bool main_brokers_equal(const struct conf *a, const struct conf *b)
{
	if (a->nbrokers != b->nbrokers)
		return false;
	for (size_t i = 0; i < a->nbrokers; i++) {
		const struct conf_broker *x = &a->brokers[i], *y = &b->brokers[i];

		if (strcmp(x->name, y->name) || strcmp(x->type, y->type) ||
		    strcmp(x->mount, y->mount) || x->ntopics != y->ntopics ||
		    x->nkv != y->nkv)
			return false;
		for (size_t j = 0; j < x->ntopics; j++)
			if (strcmp(x->topics[j].filter, y->topics[j].filter) ||
			    x->topics[j].dir != y->topics[j].dir ||
			    x->topics[j].qos != y->topics[j].qos)
				return false;
		for (size_t j = 0; j < x->nkv; j++)
			if (strcmp(x->kv[j].key, y->kv[j].key) ||
			    strcmp(x->kv[j].value, y->kv[j].value))
				return false;
	}
	return true;
}

/* Starts `next` (loaded from the new config) and retires the running
 * set. Events of a set's brokers are handled before its structs go, since
 * inbox events point to them. 0 (next now runs) or -errno (the running
 * set stays; next was stopped and freed). */
static int main_swap_brokers(struct broker_set *next)
{
	int r = broker_set_start(next, hub.inbox);
	struct broker_set *stop = r < 0 ? next : hub.brokers;

	if (r == 0)
		hub.brokers = next;
	inbox_retire(hub.inbox, stop->v, stop->n);
	broker_set_stop(stop);
	inbox_retire(hub.inbox, NULL, 0);
	hub_drain_inbox();
	broker_set_free(stop);
	return r;
}

static void main_reload(void)
{
	char *errtext = NULL;
	size_t errlen = 0;
	FILE *errs = open_memstream(&errtext, &errlen);
	struct conf *c = NULL, *old_conf, *old_bconf;
	struct broker_set *check = NULL;
	int r;

	if (!errs) {
		log_err("config", "reload: out of memory");
		return;
	}
	notify_send("RELOADING=1");
	r = main_load(main_conf_path, errs, &c, &check);
	fclose(errs);
	if (r < 0) {
		main_log_lines(errtext);
		log_err("config", "reload of %s failed; the running configuration stays",
			main_conf_path);
		free(errtext);
		notify_send("READY=1\nSTATUS=serving (last reload failed)");
		return;
	}
	free(errtext);
	old_conf = main_conf;
	old_bconf = main_broker_conf;
	main_apply_log_level(c);
	hub_apply_conf(c);
	main_conf = c;
	if (!main_brokers_equal(c, main_broker_conf)) {
		log_notice("config", "broker sections changed: reconnecting brokers");
		if (main_swap_brokers(check) == 0)
			main_broker_conf = c;
		else
			log_err("config", "the new brokers did not start; the running ones stay");
	} else {
		broker_set_free(check); /* only loaded to check the plugin keys */
	}
	/* Free the configs nothing points to any more. */
	if (old_conf != main_conf && old_conf != main_broker_conf)
		conf_free(old_conf);
	if (old_bconf != old_conf && old_bconf != main_conf &&
	    old_bconf != main_broker_conf)
		conf_free(old_bconf);
	log_notice("config", "reloaded %s", main_conf_path);
	notify_send("READY=1\nSTATUS=serving");
}

/* Before binding: root must say which user to become (`user = root`
 * keeps root, on purpose), like mosquitto's and nginx's `user`. */
static int main_check_user(const struct conf *c)
{
	const char *user = c->server.user;

	if (geteuid() == 0 && (!user || !*user)) {
		fprintf(stderr, "%s: refusing to run as root: set `user = NAME` "
			"in [server] to drop privileges after binding "
			"(`user = root` stays root)\n", c->file);
		return -EPERM;
	}
	return 0;
}

static int main_drop_privileges(const char *user)
{
	struct passwd *pw;

	if (!user || !*user)
		return 0;
	pw = getpwnam(user);
	if (!pw) {
		log_err("main", "user '%s' does not exist", user);
		return -ENOENT;
	}
	if (pw->pw_uid == geteuid() && pw->pw_gid == getegid())
		return 0; /* already that user (user = root as root, say) */
	if (geteuid() != 0) {
		log_err("main", "cannot become user '%s': not running as root",
			user);
		return -EPERM;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) < 0 || setgid(pw->pw_gid) < 0 ||
	    setuid(pw->pw_uid) < 0) {
		log_err("main", "cannot become user '%s': %s", user,
			strerror(errno));
		return -errno;
	}
	log_info("main", "running as user %s", user);
	return 0;
}

static int main_daemonize(void)
{
	pid_t pid = fork();
	int fd;

	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	if (setsid() < 0)
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0)
		_exit(0);
	fd = open("/dev/null", O_RDWR);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	log_use_syslog(true);
	return 0;
}

int main(int argc, char **argv)
{
	bool check_only = false, daemonize = false;
	struct broker_set *brokers = NULL;
	int opt, r, status = 0;

	while ((opt = getopt(argc, argv, "c:tdvqVh")) != -1) {
		switch (opt) {
		case 'c':
			main_conf_path = optarg;
			break;
		case 't':
			check_only = true;
			break;
		case 'd':
			daemonize = true;
			break;
		case 'v':
			main_verbosity++;
			break;
		case 'q':
			main_verbosity--;
			break;
		case 'V':
			printf("mqgate %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			main_usage(stdout);
			return 0;
		default:
			main_usage(stderr);
			return EX_USAGE_STATUS;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "mqgate: unexpected argument '%s'\n", argv[optind]);
		main_usage(stderr);
		return EX_USAGE_STATUS;
	}

	r = main_load(main_conf_path, stderr, &main_conf, &brokers);
	if (r == -EINVAL)
		return EX_CONFIG_STATUS;
	if (r < 0)
		return EX_CONFIG_STATUS; /* unreadable: conf_load said why */
	if (check_only) {
		printf("%s: configuration is valid\n", main_conf_path);
		broker_set_free(brokers);
		conf_free(main_conf);
		return 0;
	}
	if (main_check_user(main_conf) < 0) {
		broker_set_free(brokers);
		conf_free(main_conf);
		return EX_CONFIG_STATUS;
	}
	main_broker_conf = main_conf;
	main_apply_log_level(main_conf);
	msg_set_epoch((uint64_t)inbox_now_ms());
	if (hub_init(main_conf) < 0) {
		log_err("main", "out of memory");
		return 1;
	}
	hub.brokers = brokers;
	server_set_reload(main_reload);
	if (server_create(main_conf) < 0) {
		status = 1;
		goto out;
	}
	if (main_drop_privileges(main_conf->server.user) < 0 ||
	    (daemonize && main_daemonize() < 0)) {
		status = 1;
		goto out;
	}
	hub.inbox = inbox_new(INBOX_MAX_MSGS, INBOX_MAX_BYTES, server_wake, NULL);
	if (!hub.inbox || broker_set_start(brokers, hub.inbox) < 0) {
		status = 1;
		goto out;
	}
	log_notice("main", "mqgate %s running (epoch %llu)", PACKAGE_VERSION,
		   (unsigned long long)msg_epoch());
	notify_send("READY=1\nSTATUS=serving");
	status = server_run();
	notify_send("STOPPING=1");
out:
	if (hub.inbox)
		inbox_shutdown(hub.inbox);
	broker_set_free(hub.brokers); /* disconnects cleanly, joins threads */
	hub.brokers = NULL;
	if (hub.inbox) {
		/* Completions that arrived while brokers stopped. */
		struct inbox_event *e = inbox_take(hub.inbox), *next;

		for (; e; e = next) {
			next = e->next;
			inbox_event_free(e);
		}
	}
	server_destroy();
	hub_fini();
	inbox_free(hub.inbox);
	if (main_conf != main_broker_conf)
		conf_free(main_broker_conf);
	conf_free(main_conf);
	log_notice("main", "exiting");
	return status;
}
