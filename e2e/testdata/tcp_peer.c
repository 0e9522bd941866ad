/*
 * tcp_peer: a line server whose client is outside the dumped tree (the
 * test itself). It listens on 127.0.0.1:0, prints "PORT <n>" and READY,
 * accepts one connection and answers every line "L" with "<n>:L", n
 * counting the lines served (state kept in memory across the checkpoint).
 * The listener has SO_RCVBUF 50000 and the connection SO_SNDBUF 100000
 * set (the kernel reports them doubled). After SIGTERM it checks its pid,
 * that it served a connection, and that both sockets' buffer sizes are
 * what they were.
 */
#include "wl.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

static int sockopt(int fd, int opt)
{
	int v = -1;
	socklen_t len = sizeof(v);
	getsockopt(fd, SOL_SOCKET, opt, &v, &len);
	return v;
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	static char line[4096], reply[4200];
	size_t have = 0;
	int l, c = -1, served = 0, lrcv = 0, csnd = 0;


	wl_init(argc, argv);
	l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	lrcv = 50000;
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_RCVBUF, &lrcv, sizeof(lrcv)) || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		wl_die("listen: %s", strerror(errno));
	lrcv = sockopt(l, SO_RCVBUF);
	printf("PORT %d\n", ntohs(a.sin_port));
	wl_ready();
	while (!wl_stop) {
		struct pollfd p = {c >= 0 ? c : l, POLLIN, 0};
		ssize_t n;
		if (poll(&p, 1, 100) <= 0)
			continue;
		if (c < 0) {
			c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
			csnd = 100000;
			if (c < 0 || setsockopt(c, SOL_SOCKET, SO_SNDBUF, &csnd, sizeof(csnd)))
				wl_die("accept: %s", strerror(errno));
			csnd = sockopt(c, SO_SNDBUF);
			if (wl_corrupt) /* what a restore that lost the size would do */
				setsockopt(c, SOL_SOCKET, SO_SNDBUF, &(int){4096}, sizeof(int));
			continue;
		}
		n = read(c, line + have, sizeof(line) - 1 - have);
		if (n <= 0) {
			wl_fail("read from the client: %zd (%s) after %d lines", n, n ? strerror(errno) : "EOF", served);
			break;
		}
		have += (size_t)n;
		for (char *nl; (nl = memchr(line, '\n', have)) != NULL;) {
			size_t k = (size_t)(nl - line);
			int m = snprintf(reply, sizeof(reply), "%d:%.*s\n", ++served, (int)k, line);
			if (write(c, reply, (size_t)m) != m)
				wl_fail("write to the client: %s", strerror(errno));
			memmove(line, nl + 1, have - k - 1);
			have -= k + 1;
		}
	}
	wl_check_ids(0);
	CHECK(c >= 0 && served > 0, "no connection served (%d lines)", served);
	CHECK(sockopt(l, SO_RCVBUF) == lrcv, "listener SO_RCVBUF %d, was %d", sockopt(l, SO_RCVBUF), lrcv);
	CHECK(c < 0 || sockopt(c, SO_SNDBUF) == csnd, "connection SO_SNDBUF %d, was %d", sockopt(c, SO_SNDBUF), csnd);
	return wl_finish();
}
