/*
 * unix_queues - messages queued in connected Unix socket pairs.
 *   usage: unix_queues
 * Before READY: a SOCK_DGRAM pair with datagrams of 1, 1000 and 70000 bytes
 * queued towards end 1 and of 3 and 5 bytes towards end 0, a SOCK_SEQPACKET
 * pair with messages of 10 and 20000 bytes towards end 1, and a SOCK_STREAM
 * pair with 5000 bytes towards end 1. After SIGTERM each end receives
 * exactly those messages, in order, with their sizes and bytes (one recv
 * per message, MSG_TRUNC tells a message that grew), then nothing more
 * (EAGAIN); the stream end reads its 5000 bytes. The stream's end 1 has
 * a receive timeout of 2.5 s and end 0 a send timeout of about 0.75 s
 * (the kernel keeps them in jiffies), the same after the restore.
 */
#include "wl.h"
#include <sys/socket.h>

static char msg[70000];

/* Byte i of message seed: every byte checked, even in a 1-byte message. */
static char pat(uint64_t seed, size_t i) { return (char)(wl_pat(seed, i / 8) >> (8 * (i % 8))); }

static void fill(char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = pat(seed, i);
}

static int same(const char *p, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		if (p[i] != pat(seed, i))
			return 0;
	return 1;
}

static void put(int fd, size_t len, uint64_t seed)
{
	fill(msg, len, seed);
	if (send(fd, msg, len, MSG_DONTWAIT) != (ssize_t)len)
		wl_die("send %zu bytes: %s", len, strerror(errno));
}

static void expect(const char *what, int fd, size_t len, uint64_t seed)
{
	static char got[80000];
	ssize_t n = recv(fd, got, sizeof got, MSG_DONTWAIT | MSG_TRUNC);
	if (n != (ssize_t)len) {
		wl_fail("%s: message of %zd bytes (%s), want %zu", what, n, n < 0 ? strerror(errno) : "", len);
		return;
	}
	CHECK(same(got, len, seed), "%s: the %zu-byte message differs", what, len);
}

/* The timeout opt of fd as the kernel gives it back. */
static struct timeval timeout(int fd, int opt)
{
	struct timeval tv = {0};
	socklen_t len = sizeof tv;
	if (getsockopt(fd, SOL_SOCKET, opt, &tv, &len))
		wl_die("get timeout: %s", strerror(errno));
	return tv;
}

static struct timeval set_timeout(int fd, int opt, long sec, long usec)
{
	struct timeval tv = {.tv_sec = sec, .tv_usec = usec};
	if (setsockopt(fd, SOL_SOCKET, opt, &tv, sizeof tv))
		wl_die("set timeout: %s", strerror(errno));
	return timeout(fd, opt);
}

static void check_timeout(const char *what, int fd, int opt, struct timeval want)
{
	struct timeval tv = timeout(fd, opt);
	CHECK(tv.tv_sec == want.tv_sec && tv.tv_usec == want.tv_usec, "%s: timeout %ld.%06lds, want %ld.%06lds", what,
	      (long)tv.tv_sec, (long)tv.tv_usec, (long)want.tv_sec, (long)want.tv_usec);
}

static void expect_empty(const char *what, int fd)
{
	char c;
	ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
	CHECK(n < 0 && errno == EAGAIN, "%s: more queued than was sent (recv %zd)", what, n);
}

int main(int argc, char **argv)
{
	int d[2], q[2], s[2];
	wl_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, d) || socketpair(AF_UNIX, SOCK_SEQPACKET, 0, q) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		wl_die("socketpair: %s", strerror(errno));
	put(d[0], 1, 1);
	put(d[0], 1000, 2);
	put(d[0], 70000, 3);
	put(d[1], 3, 4);
	put(d[1], 5, 5);
	put(q[0], 10, 6);
	put(q[0], 20000, 7);
	put(s[0], 5000, 8);
	struct timeval rcvtmo = set_timeout(s[1], SO_RCVTIMEO, 2, 500000), sndtmo = set_timeout(s[0], SO_SNDTIMEO, 0, 750000);
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	check_timeout("stream end 1 SO_RCVTIMEO", s[1], SO_RCVTIMEO, rcvtmo);
	check_timeout("stream end 0 SO_SNDTIMEO", s[0], SO_SNDTIMEO, sndtmo);
	check_timeout("dgram end 0 SO_RCVTIMEO", d[0], SO_RCVTIMEO, (struct timeval){0});
	if (wl_corrupt)
		put(d[0], 7, 9);
	expect("dgram end 1", d[1], 1, 1);
	expect("dgram end 1", d[1], 1000, 2);
	expect("dgram end 1", d[1], 70000, 3);
	expect_empty("dgram end 1", d[1]);
	expect("dgram end 0", d[0], 3, 4);
	expect("dgram end 0", d[0], 5, 5);
	expect_empty("dgram end 0", d[0]);
	expect("seqpacket end 1", q[1], 10, 6);
	expect("seqpacket end 1", q[1], 20000, 7);
	expect_empty("seqpacket end 1", q[1]);
	expect_empty("seqpacket end 0", q[0]);
	{
		static char got[5000];
		size_t have = 0;
		while (have < sizeof got) {
			ssize_t n = recv(s[1], got + have, sizeof got - have, MSG_DONTWAIT);
			if (n <= 0)
				break;
			have += (size_t)n;
		}
		CHECK(have == sizeof got && same(got, sizeof got, 8), "stream end 1: %zu bytes, or they differ", have);
		expect_empty("stream end 1", s[1]);
	}
	return wl_finish();
}
