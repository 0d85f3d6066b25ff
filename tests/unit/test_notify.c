/*
 * test_notify.c - the sd_notify datagram: with $NOTIFY_SOCKET naming a
 * unix datagram socket this test binds (a path, and an abstract "@name"),
 * notify_send delivers exactly the text, one datagram per call; without
 * the variable it does nothing and succeeds; a socket nobody listens on,
 * a relative or overlong name, or a non-datagram peer gives an error at
 * once, without crashing or blocking.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "notify.h"

static char tmpdir[] = "/tmp/mqgate-notify-XXXXXX";

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A unix socket of `type` bound at path ('@' = abstract). -1 on error. */
static int bind_socket(const char *path, int type)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	if (fd < 0 || len >= sizeof(sa.sun_path)) {
		perror("socket");
		exit(99);
	}
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0) {
		perror("bind");
		exit(99);
	}
	return fd;
}

/* The next datagram waiting on fd, NUL-terminated; its length in *len
 * (-1 when none is waiting). */
static const char *receive(int fd, ssize_t *len)
{
	static char buf[4096];

	*len = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);
	buf[*len > 0 ? *len : 0] = 0;
	return buf;
}

static void test_no_socket(void)
{
	unsetenv("NOTIFY_SOCKET");
	CHECK_INT(notify_send("READY=1"), 0);
	setenv("NOTIFY_SOCKET", "", 1);
	CHECK_INT(notify_send("READY=1"), 0);
	unsetenv("NOTIFY_SOCKET");
}

/* Sends each text through notify_send and checks that fd receives it
 * whole, as one datagram of exactly its length. */
static void check_delivery(int fd)
{
	static const char *const texts[] = {
		"READY=1",
		"READY=1\nSTATUS=serving",
		"RELOADING=1",
		"STATUS=serving (last reload failed)",
		"STOPPING=1",
	};
	ssize_t len;
	const char *got;

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
		CHECK_INT(notify_send(texts[i]), 0);
	/* In order, one datagram each, nothing added. */
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		got = receive(fd, &len);
		CHECK_INT(len, strlen(texts[i]));
		CHECK_STR(got, texts[i]);
	}
	got = receive(fd, &len);
	CHECK_INT(len, -1);
	CHECK(errno == EAGAIN || errno == EWOULDBLOCK);
}

static void test_path(void)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/notify", tmpdir);
	fd = bind_socket(path, SOCK_DGRAM);
	setenv("NOTIFY_SOCKET", path, 1);
	check_delivery(fd);
	close(fd);
	unlink(path);
	unsetenv("NOTIFY_SOCKET");
}

static void test_abstract(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@mqgate-test-notify-%ld", (long)getpid());
	fd = bind_socket(name, SOCK_DGRAM);
	setenv("NOTIFY_SOCKET", name, 1);
	check_delivery(fd);
	close(fd);

	/* The abstract name is exactly the text after '@': a listener on a
	 * longer name does not get it. */
	snprintf(name, sizeof(name), "@mqgate-test-notify-%ld-x", (long)getpid());
	fd = bind_socket(name, SOCK_DGRAM);
	{
		char shorter[64];
		ssize_t len;

		snprintf(shorter, sizeof(shorter), "@mqgate-test-notify-%ld-",
			 (long)getpid());
		setenv("NOTIFY_SOCKET", shorter, 1);
		CHECK(notify_send("READY=1") < 0);
		receive(fd, &len);
		CHECK_INT(len, -1);
	}
	close(fd);
	unsetenv("NOTIFY_SOCKET");
}

/* Each case fails at once with an error; none crashes or waits. */
static void test_unreachable(void)
{
	char gone[128], closed[128], file[128], stream[128], longname[200];
	int fd, sfd, r;
	int64_t t0;

	snprintf(gone, sizeof(gone), "%s/nobody-here", tmpdir);
	snprintf(closed, sizeof(closed), "%s/closed", tmpdir);
	snprintf(file, sizeof(file), "%s/plain-file", tmpdir);
	snprintf(stream, sizeof(stream), "%s/stream", tmpdir);
	memset(longname, 'n', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = 0;

	fd = bind_socket(closed, SOCK_DGRAM);   /* bound, then closed */
	close(fd);
	fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		exit(99);
	close(fd);
	sfd = bind_socket(stream, SOCK_STREAM);
	listen(sfd, 1);

	{
		const struct {
			const char *value;
			int want;       /* 0: any negative errno */
		} cases[] = {
			{ gone, -ENOENT },
			{ closed, -ECONNREFUSED },
			{ file, -ECONNREFUSED },
			{ stream, 0 },
			{ "@mqgate-test-notify-nobody", -ECONNREFUSED },
			{ "relative/notify", -EINVAL },
			{ "notify", -EINVAL },
			{ longname, -EINVAL },
		};

		for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
			setenv("NOTIFY_SOCKET", cases[i].value, 1);
			t0 = now_ms();
			r = notify_send("READY=1");
			CHECK(now_ms() - t0 < 1000);
			if (cases[i].want)
				CHECK_INT(r, cases[i].want);
			else
				CHECK(r < 0);
		}
	}
	close(sfd);
	unlink(closed);
	unlink(file);
	unlink(stream);
	unsetenv("NOTIFY_SOCKET");
}

int main(void)
{
	/* A failed send must not kill the process with SIGPIPE either. */
	signal(SIGPIPE, SIG_DFL);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 99;
	}
	test_no_socket();
	test_path();
	test_abstract();
	test_unreachable();
	rmdir(tmpdir);
	return check_summary("test_notify");
}
