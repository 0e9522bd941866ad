/*
 * conform: descriptor and socket states CRIU keeps (issue 11), one per mode.
 * Each mode sets its state up before READY and checks, after SIGTERM, that
 * it behaves as it did: the checks use the state up, so they run once.
 *
 * shutdown: Unix sockets shut down in each direction.
 *   A stream pair whose end 0 sent "abc" then SHUT_WR: end 1 reads "abc",
 *   then end of file; end 0 cannot send (EPIPE) but still receives.
 *   A stream pair whose end 1 did SHUT_RD: end 0 cannot send (EPIPE), end
 *   1 still sends. A seqpacket pair with end 0 SHUT_RDWR: end 1 reads end
 *   of file and cannot send. A datagram pair with end 0 SHUT_WR: end 0
 *   cannot send, end 1 still sends to it.
 *
 * unixopts: the SOL_SOCKET options of a Unix stream pair and a datagram
 *   socket (SO_PASSSEC, SO_PASSCRED, SO_PRIORITY, SO_MARK, SO_RCVLOWAT,
 *   SO_LINGER, SO_KEEPALIVE, SO_DONTROUTE, SO_BROADCAST, SO_BUF_LOCK) read
 *   back with getsockopt as they were set.
 *
 * epoll: watches whose descriptor number changed hands. Eventfd A is
 *   watched as number a, dup'ed to b, and a closed; eventfd C then opened
 *   at number a is watched too (two watches numbered a). Eventfd E is
 *   watched as number e, dup'ed to f, and a pipe's read end dup2'ed over e.
 *   After restore fdinfo lists the same watches (number, events, data),
 *   each eventfd written through the number that holds it now wakes the
 *   epoll with its own data, the pipe at e wakes nothing, and e still
 *   reads the pipe.
 *
 * memfd: a memfd of 4 pages mapped shared whole, written, then truncated
 *   to 1.5 pages: after restore its size is 1.5 pages, the mapping still
 *   spans 4 pages, the first page and a half keep their bytes (the rest
 *   of the second page reads zero), and a touch of the third or fourth
 *   page raises SIGBUS.
 *
 * mptcp: MPTCP sockets (IPPROTO_MPTCP, Go's default since 1.24): an IPv4
 *   and an IPv6 listener on loopback, and a bound socket. After restore
 *   each is MPTCP (SO_PROTOCOL), at its address, and each listener
 *   accepts a new connection and echoes a byte both ways.
 * mptcp-established: an MPTCP listener with one MPTCP connection
 *   accepted (a dump must refuse it; the test checks that the process
 *   runs on). mptcp-fallback: the same with a plain TCP client, whose
 *   connection falls back to TCP: accept gives a plain TCP socket, which
 *   --tcp-established saves; after restore the connection carries a byte
 *   and the listener accepts a new one.
 *
 * tcp-close: a plain TCP listener and connection, dumped with --tcp-close
 *   (or dumped with --tcp-established and restored with --tcp-close): both
 *   ends come back unconnected (ENOTCONN), the listener accepts.
 *
 * linkremap: a file open through a name that was then removed while the
 *   file keeps another name (a hard link): contents and offset kept, the
 *   descriptor's name ends in " (deleted)".
 */
#include "wl.h"
#include <setjmp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#ifndef SO_BUF_LOCK
#define SO_BUF_LOCK 72
#endif

static int p1[2], p2[2], p3[2], p4[2];

static void setup_shutdown(void)
{
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, p1) || socketpair(AF_UNIX, SOCK_STREAM, 0, p2) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, p3) || socketpair(AF_UNIX, SOCK_DGRAM, 0, p4))
		wl_die("socketpair: %s", strerror(errno));
	if (write(p1[0], "abc", 3) != 3)
		wl_die("write: %s", strerror(errno));
	if (shutdown(p1[0], SHUT_WR) || shutdown(p2[1], SHUT_RD) || shutdown(p3[0], SHUT_RDWR) ||
	    shutdown(p4[0], SHUT_WR))
		wl_die("shutdown: %s", strerror(errno));
}

static void expect_epipe(int fd, const char *what)
{
	ssize_t n = send(fd, "z", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	CHECK(n < 0 && errno == EPIPE, "%s: send = %zd (%s), want EPIPE (shut down)", what, n,
	      n < 0 ? strerror(errno) : "sent");
}

static void expect_passes(int from, int to, const char *what)
{
	char buf[8];
	ssize_t n = send(from, "q", 1, MSG_DONTWAIT | MSG_NOSIGNAL);
	CHECK(n == 1, "%s: send = %zd (%s), want 1", what, n, n < 0 ? strerror(errno) : "");
	if (n != 1)
		return;
	n = recv(to, buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == 1 && buf[0] == 'q', "%s: recv = %zd (%s), want the byte sent", what, n, n < 0 ? strerror(errno) : "");
}

static void check_shutdown(void)
{
	char buf[8];
	ssize_t n;
	if (wl_corrupt)
		close(p4[0]), socketpair(AF_UNIX, SOCK_DGRAM, 0, p4);
	n = recv(p1[1], buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == 3 && memcmp(buf, "abc", 3) == 0, "stream SHUT_WR: peer reads %zd bytes (%s), want abc", n,
	      n < 0 ? strerror(errno) : "");
	n = recv(p1[1], buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == 0, "stream SHUT_WR: peer's second read = %zd (%s), want 0 (end of file)", n,
	      n < 0 ? strerror(errno) : "");
	expect_epipe(p1[0], "stream SHUT_WR end");
	expect_passes(p1[1], p1[0], "stream SHUT_WR: the other direction");
	expect_epipe(p2[0], "stream whose peer did SHUT_RD");
	expect_passes(p2[1], p2[0], "stream SHUT_RD: the other direction");
	n = recv(p3[1], buf, sizeof(buf), MSG_DONTWAIT);
	CHECK(n == 0, "seqpacket SHUT_RDWR: peer reads %zd (%s), want 0 (end of file)", n, n < 0 ? strerror(errno) : "");
	expect_epipe(p3[1], "seqpacket whose peer did SHUT_RDWR");
	expect_epipe(p3[0], "seqpacket SHUT_RDWR end");
	expect_epipe(p4[0], "datagram SHUT_WR end");
	expect_passes(p4[1], p4[0], "datagram SHUT_WR: the other direction");
}

static int so[2], dg;

static const struct {
	const char *name;
	int opt, value;
} int_opts[] = {
	{"SO_PASSSEC", SO_PASSSEC, 1}, {"SO_PASSCRED", SO_PASSCRED, 1}, {"SO_PRIORITY", SO_PRIORITY, 5},
	{"SO_MARK", SO_MARK, 77},      {"SO_RCVLOWAT", SO_RCVLOWAT, 3}, {"SO_KEEPALIVE", SO_KEEPALIVE, 1},
	{"SO_DONTROUTE", SO_DONTROUTE, 1}, {"SO_BROADCAST", SO_BROADCAST, 1}, {"SO_BUF_LOCK", SO_BUF_LOCK, 1},
};

static void setup_unixopts(void)
{
	struct linger l = {1, 7};
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, so) || (dg = socket(AF_UNIX, SOCK_DGRAM, 0)) < 0)
		wl_die("socket: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(int_opts) / sizeof(int_opts[0]); i++) {
		int v = int_opts[i].value;
		if (setsockopt(so[0], SOL_SOCKET, int_opts[i].opt, &v, sizeof(v)))
			wl_die("setsockopt %s: %s", int_opts[i].name, strerror(errno));
	}
	if (setsockopt(so[0], SOL_SOCKET, SO_LINGER, &l, sizeof(l)))
		wl_die("setsockopt SO_LINGER: %s", strerror(errno));
	int one = 1;
	if (setsockopt(dg, SOL_SOCKET, SO_PASSSEC, &one, sizeof(one)))
		wl_die("setsockopt SO_PASSSEC: %s", strerror(errno));
}

static void check_unixopts(void)
{
	struct linger l;
	socklen_t len = sizeof(l);
	int v;
	if (wl_corrupt) {
		v = 0;
		setsockopt(so[0], SOL_SOCKET, SO_PASSSEC, &v, sizeof(v));
	}
	for (size_t i = 0; i < sizeof(int_opts) / sizeof(int_opts[0]); i++) {
		socklen_t n = sizeof(v);
		v = -1;
		getsockopt(so[0], SOL_SOCKET, int_opts[i].opt, &v, &n);
		CHECK(v == int_opts[i].value, "stream socket: %s = %d, want %d", int_opts[i].name, v, int_opts[i].value);
	}
	memset(&l, 0, sizeof(l));
	getsockopt(so[0], SOL_SOCKET, SO_LINGER, &l, &len);
	CHECK(l.l_onoff == 1 && l.l_linger == 7, "SO_LINGER = {%d, %d}, want {1, 7}", l.l_onoff, l.l_linger);
	{
		socklen_t n = sizeof(v);
		v = -1;
		getsockopt(so[1], SOL_SOCKET, SO_PASSSEC, &v, &n);
		CHECK(v == 0, "the peer's SO_PASSSEC = %d, want 0 (never set)", v);
		getsockopt(dg, SOL_SOCKET, SO_PASSSEC, &v, &n);
		CHECK(v == 1, "datagram socket: SO_PASSSEC = %d, want 1", v);
	}
}


static int ep, ev_b, ev_c, ev_f, pipe_w, num_a, num_e;
static char ep_watches[4096];

enum { TAG_A = 0xa1, TAG_C = 0xc3, TAG_E = 0xe5, TAG_PIPE = 0x99 };

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

/* The "tfd: N events: X data: Y" part of each watch line of fdinfo, sorted
 * (the kernel lists them in the order of the files' addresses). */
static void epoll_watches(char *out, size_t size)
{
	char path[64], buf[8192], lines[16][64];
	size_t n = 0, k = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ep);
	out[0] = 0;
	if (wl_read_file(path, buf, sizeof(buf)) <= 0)
		return;
	for (char *line = strtok(buf, "\n"); line && k < 16; line = strtok(NULL, "\n")) {
		int tfd;
		unsigned events;
		unsigned long long data;
		if (sscanf(line, "tfd: %d events: %x data: %llx", &tfd, &events, &data) == 3)
			snprintf(lines[k++], sizeof(lines[0]), "[%d %x %llx]", tfd, events, data);
	}
	qsort(lines, k, sizeof(lines[0]), cmp_str);
	for (size_t i = 0; i < k; i++)
		n += (size_t)snprintf(out + n, size - n, "%s", lines[i]);
}

static void watch(int fd, uint64_t tag)
{
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = tag};
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e))
		wl_die("epoll_ctl ADD %d: %s", fd, strerror(errno));
}

static void setup_epoll(void)
{
	int p[2];
	if ((ep = epoll_create1(0)) < 0)
		wl_die("epoll_create1: %s", strerror(errno));
	num_a = eventfd(0, EFD_NONBLOCK);
	watch(num_a, TAG_A);
	ev_b = fcntl(num_a, F_DUPFD, 20);
	close(num_a);
	ev_c = eventfd(0, EFD_NONBLOCK);
	if (ev_c != num_a)
		wl_die("eventfd C at %d, want the number a (%d) freed", ev_c, num_a);
	watch(ev_c, TAG_C);
	num_e = eventfd(0, EFD_NONBLOCK);
	watch(num_e, TAG_E);
	ev_f = fcntl(num_e, F_DUPFD, 30);
	if (pipe2(p, O_NONBLOCK))
		wl_die("pipe: %s", strerror(errno));
	if (dup2(p[0], num_e) != num_e)
		wl_die("dup2: %s", strerror(errno));
	close(p[0]);
	pipe_w = p[1];
	epoll_watches(ep_watches, sizeof(ep_watches));
}

/* Writes 1 to fd and expects exactly the event tagged want (0: none). */
static void expect_wake(int fd, uint64_t want, const char *what)
{
	struct epoll_event evs[8];
	uint64_t one = 1, got = 0;
	int n;
	if (fd == pipe_w)
		CHECK(write(fd, "x", 1) == 1, "%s: write: %s", what, strerror(errno));
	else
		CHECK(write(fd, &one, 8) == 8, "%s: write: %s", what, strerror(errno));
	n = epoll_wait(ep, evs, 8, want ? 5000 : 50);
	if (want) {
		CHECK(n == 1 && evs[0].data.u64 == want, "%s: epoll_wait = %d, first data %#llx, want one event %#llx",
		      what, n, n > 0 ? (unsigned long long)evs[0].data.u64 : 0ull, (unsigned long long)want);
	} else {
		CHECK(n == 0, "%s: epoll_wait = %d (data %#llx), want no event", what, n,
		      n > 0 ? (unsigned long long)evs[0].data.u64 : 0ull);
	}
	if (fd != pipe_w)
		read(fd, &got, 8);
}

static void check_epoll(void)
{
	char now[4096], c;
	if (wl_corrupt)
		epoll_ctl(ep, EPOLL_CTL_DEL, ev_f, NULL);
	epoll_watches(now, sizeof(now));
	CHECK(strcmp(now, ep_watches) == 0, "epoll watches (fdinfo) %s, want %s", now, ep_watches);
	expect_wake(ev_b, TAG_A, "eventfd A at its new number");
	expect_wake(ev_c, TAG_C, "eventfd C at A's old number");
	expect_wake(ev_f, TAG_E, "eventfd E at its new number");
	expect_wake(pipe_w, 0, "the pipe dup2'ed over E's old number");
	CHECK(read(num_e, &c, 1) == 1 && c == 'x', "E's old number does not read the pipe");
}


static int mfd;
static unsigned char *mmem;
static long pg;
static sigjmp_buf bus_jmp;

static void on_bus(int sig)
{
	(void)sig;
	siglongjmp(bus_jmp, 1);
}

static void setup_memfd(void)
{
	pg = sysconf(_SC_PAGESIZE);
	mfd = memfd_create("conform-trunc", MFD_CLOEXEC);
	if (mfd < 0 || ftruncate(mfd, 4 * pg))
		wl_die("memfd: %s", strerror(errno));
	mmem = mmap(NULL, 4 * pg, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mmem == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(mmem, 4 * pg, 77);
	if (ftruncate(mfd, pg + pg / 2))
		wl_die("ftruncate: %s", strerror(errno));
}

/* Whether reading the byte at p raises SIGBUS. */
static int bus_at(volatile unsigned char *p)
{
	struct sigaction sa, old;
	int hit = 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_bus;
	sigaction(SIGBUS, &sa, &old);
	if (sigsetjmp(bus_jmp, 1) == 0)
		(void)*p;
	else
		hit = 1;
	sigaction(SIGBUS, &old, NULL);
	return hit;
}

static void check_memfd(void)
{
	struct stat st;
	unsigned char *want = malloc((size_t)pg * 4);
	if (wl_corrupt)
		ftruncate(mfd, 4 * pg);
	wl_fill(want, 4 * pg, 77);
	CHECK(fstat(mfd, &st) == 0 && st.st_size == pg + pg / 2, "memfd size %lld, want %ld", (long long)st.st_size,
	      pg + pg / 2);
	CHECK(memcmp(mmem, want, (size_t)(pg + pg / 2)) == 0, "the memfd's first page and a half changed");
	CHECK(wl_verify_zero(mmem + pg + pg / 2, (size_t)(pg / 2)) < 0, "the rest of the second page is not zero");
	CHECK(bus_at(mmem + 2 * pg), "reading the third page (beyond the size) raised no SIGBUS");
	CHECK(bus_at(mmem + 4 * pg - 1), "reading the fourth page (beyond the size) raised no SIGBUS");
	free(want);
}


#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static int ml4, ml6, mb, mconn[2];
static int listen_proto = IPPROTO_MPTCP; /* 0 (TCP) in mode tcp-close */
static struct sockaddr_storage ml4_addr, ml6_addr, mb_addr;

static int mptcp_socket(int family, struct sockaddr_storage *ss, int listening)
{
	int s = socket(family, SOCK_STREAM, listen_proto);
	socklen_t len = sizeof(*ss);
	if (s < 0)
		wl_skip("MPTCP sockets: %s", strerror(errno));
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_addr = in6addr_loopback;
	}
	if (bind(s, (struct sockaddr *)ss, family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)))
		wl_die("bind: %s", strerror(errno));
	if (listening && listen(s, 16))
		wl_die("listen: %s", strerror(errno));
	getsockname(s, (struct sockaddr *)ss, &len);
	return s;
}

/* A plain TCP client connects to the listener; one byte each way. */
static void check_accepts(int l, struct sockaddr_storage *ss, const char *what)
{
	int c = socket(ss->ss_family, SOCK_STREAM, 0), a;
	char b = 0;
	CHECK(connect(c, (struct sockaddr *)ss, ss->ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)) == 0,
	      "%s: connect: %s", what, strerror(errno));
	a = accept(l, NULL, NULL);
	CHECK(a >= 0, "%s: accept: %s", what, strerror(errno));
	if (a < 0)
		return;
	CHECK(write(c, "p", 1) == 1 && read(a, &b, 1) == 1 && b == 'p', "%s: client to server", what);
	CHECK(write(a, "q", 1) == 1 && read(c, &b, 1) == 1 && b == 'q', "%s: server to client", what);
	close(a);
	close(c);
}

static void check_mptcp_sock(int s, struct sockaddr_storage *want, const char *what)
{
	struct sockaddr_storage now;
	socklen_t len = sizeof(now);
	int proto = 0;
	socklen_t pl = sizeof(proto);
	getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &proto, &pl);
	CHECK(proto == IPPROTO_MPTCP, "%s: protocol %d, want MPTCP (%d)", what, proto, IPPROTO_MPTCP);
	memset(&now, 0, sizeof(now));
	getsockname(s, (struct sockaddr *)&now, &len);
	CHECK(memcmp(&now, want, len) == 0, "%s: another address after restore", what);
}

static void setup_mptcp(void)
{
	ml4 = mptcp_socket(AF_INET, &ml4_addr, 1);
	ml6 = mptcp_socket(AF_INET6, &ml6_addr, 1);
	mb = mptcp_socket(AF_INET, &mb_addr, 0);
}

static void check_mptcp(void)
{
	if (wl_corrupt)
		close(mb), mb = socket(AF_INET, SOCK_STREAM, 0);
	check_mptcp_sock(ml4, &ml4_addr, "IPv4 listener");
	check_mptcp_sock(ml6, &ml6_addr, "IPv6 listener");
	check_mptcp_sock(mb, &mb_addr, "bound socket");
	check_accepts(ml4, &ml4_addr, "IPv4 listener");
	check_accepts(ml6, &ml6_addr, "IPv6 listener");
}

/* Both ends of the connection came back closed (--tcp-close): not
 * connected; the listener still accepts. */
static void check_tcp_closed(void)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char b;
	if (wl_corrupt)
		return;
	for (int i = 0; i < 2; i++) {
		int r = getpeername(mconn[i], (struct sockaddr *)&ss, &len);
		CHECK(r < 0 && errno == ENOTCONN, "end %d: getpeername = %d (%s), want ENOTCONN", i, r, r < 0 ? strerror(errno) : "connected");
		ssize_t n = recv(mconn[i], &b, 1, MSG_DONTWAIT);
		CHECK(n < 0 && errno == ENOTCONN, "end %d: recv = %zd (%s), want ENOTCONN", i, n, n < 0 ? strerror(errno) : "data");
	}
	check_accepts(ml4, &ml4_addr, "listener");
}

static void setup_mptcp_established(void)
{
	ml4 = mptcp_socket(AF_INET, &ml4_addr, 1);
	/* An MPTCP client makes an MPTCP connection; a plain TCP one falls
	 * back, and accept gives a plain TCP socket. */
	mconn[0] = socket(AF_INET, SOCK_STREAM, strcmp(wl_mode, "mptcp-established") == 0 ? IPPROTO_MPTCP : 0);
	if (connect(mconn[0], (struct sockaddr *)&ml4_addr, sizeof(struct sockaddr_in)))
		wl_die("connect: %s", strerror(errno));
	if ((mconn[1] = accept(ml4, NULL, NULL)) < 0)
		wl_die("accept: %s", strerror(errno));
}

static void check_mptcp_established(void)
{
	char b = 0;
	CHECK(write(mconn[0], "e", 1) == 1 && read(mconn[1], &b, 1) == 1 && b == 'e', "the connection broke");
	check_accepts(ml4, &ml4_addr, "listener");
}

static int lr_fd;
static const char lr_data[] = "contents of a file linked elsewhere";

static void setup_linkremap(void)
{
	unlink("lr-a");
	unlink("lr-b");
	lr_fd = open("lr-a", O_RDWR | O_CREAT | O_EXCL, 0640);
	if (lr_fd < 0 || write(lr_fd, lr_data, sizeof(lr_data)) != (ssize_t)sizeof(lr_data))
		wl_die("lr-a: %s", strerror(errno));
	if (link("lr-a", "lr-b") || unlink("lr-a"))
		wl_die("link/unlink: %s", strerror(errno));
	lseek(lr_fd, 9, SEEK_SET);
}

static void check_linkremap(void)
{
	char buf[128], path[64], name[512];
	ssize_t n;
	if (wl_corrupt)
		lseek(lr_fd, 1, SEEK_SET);
	CHECK(lseek(lr_fd, 0, SEEK_CUR) == 9, "offset %ld, want 9", (long)lseek(lr_fd, 0, SEEK_CUR));
	n = pread(lr_fd, buf, sizeof(buf), 0);
	CHECK(n == (ssize_t)sizeof(lr_data) && memcmp(buf, lr_data, sizeof(lr_data)) == 0,
	      "contents: %zd bytes, want %zu of the original", n, sizeof(lr_data));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", lr_fd);
	n = readlink(path, name, sizeof(name) - 1);
	name[n > 0 ? n : 0] = 0;
	CHECK(n > 10 && strstr(name, "/lr-a (deleted)") != NULL, "descriptor's name %s, want .../lr-a (deleted)", name);
	CHECK(access("lr-a", F_OK) != 0, "lr-a exists again after the restore");
}

int main(int argc, char **argv)
{
	void (*check)(void) = NULL;
	wl_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(wl_mode, "shutdown") == 0)
		setup_shutdown(), check = check_shutdown;
	else if (strcmp(wl_mode, "unixopts") == 0)
		setup_unixopts(), check = check_unixopts;
	else if (strcmp(wl_mode, "epoll") == 0)
		setup_epoll(), check = check_epoll;
	else if (strcmp(wl_mode, "memfd") == 0)
		setup_memfd(), check = check_memfd;
	else if (strcmp(wl_mode, "mptcp") == 0)
		setup_mptcp(), check = check_mptcp;
	else if (strcmp(wl_mode, "mptcp-established") == 0 || strcmp(wl_mode, "mptcp-fallback") == 0)
		setup_mptcp_established(), check = check_mptcp_established;
	else if (strcmp(wl_mode, "tcp-close") == 0)
		listen_proto = 0, setup_mptcp_established(), check = check_tcp_closed;
	else if (strcmp(wl_mode, "linkremap") == 0)
		setup_linkremap(), check = check_linkremap;
	else
		wl_die("conform: unknown mode %s", wl_mode);
	wl_ready();
	wl_wait_stop();
	check();
	wl_check_ids(0);
	return wl_finish();
}
