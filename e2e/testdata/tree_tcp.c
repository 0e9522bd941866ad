/*
 * tree_tcp: established TCP connections over loopback (IPv4 and IPv6) with
 * unread data in flight both ways, across a checkpoint of the tree
 * (cryo dump --tcp-established).
 *
 *   root   listens on 127.0.0.1:0 (L4) and [::1]:0 (L6), both SO_REUSEADDR,
 *   |      forks C4 and C6, accepts A4 (from C4) and A6 (from C6)
 *   +-- C4 connects to L4; its socket has TCP_NODELAY, SO_KEEPALIVE with
 *   |   TCP_KEEPIDLE 77, TCP_KEEPINTVL 11, TCP_KEEPCNT 4, SO_LINGER on 5 s,
 *   |   SO_RCVTIMEO 3 s, SO_SNDTIMEO 0.4 s, SO_PRIORITY 2, IP_TOS 0x08
 *   +-- C6 connects to L6
 *
 * Before READY each client writes 5000 bytes and the root 7000 bytes to
 * each accepted socket; nobody reads: every receiver waits until FIONREAD
 * shows exactly what its peer wrote. A4 is O_NONBLOCK. Every process records
 * getsockname/getpeername and every option (inetsk.h) of its sockets but
 * the buffer sizes of the connections, which TCP may still tune.
 *
 * After SIGTERM root checks its ids, names, flags and options (all as
 * recorded; A4, A6 and the listeners: no TCP_NODELAY, no SO_KEEPALIVE,
 * listeners SO_REUSEADDR; only A4 O_NONBLOCK),
 * FIONREAD exactly 5000 on A4 and A6 (nothing of the clients' post-restore
 * data can be there yet), marks root.checked and SIGTERMs C4 and C6. Each
 * client checks the same of its socket (C4: TCP_NODELAY, SO_KEEPALIVE and
 * the other options above set), FIONREAD exactly 7000, marks X.checked, writes 3000 more bytes,
 * shutdown(SHUT_WR) and reads to EOF: 7000 + 3000 bytes. Root, once both
 * clients are checked, writes 3000 more to A4/A6, shuts down and reads to
 * EOF: 5000 + 3000 bytes each. Every byte is a function of its position in
 * its stream, so a lost, doubled or reordered byte is seen.
 *
 * Then the listeners must still work: nothing pending on them (poll), the
 * root forks N4 and N6 (after the checkpoint: not part of the tree), which
 * connect to L4 / L6, write 1000 bytes and read 1000 back; the accepted
 * sockets' local address is the listener's. Root reaps everyone.
 */
#include "wl.h"
#include "stream.h"
#include "inetsk.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define C_PRE 5000  /* client -> root before the dump */
#define R_PRE 7000  /* root -> client before the dump */
#define POST 3000   /* each way after the restore */
#define NEW_LEN 1000 /* new connections after the restore */

/* stream seeds: client -> root, root -> client */
#define C4_SEED 201
#define R4_SEED 202
#define C6_SEED 203
#define R6_SEED 204
#define N_SEED 205

static int l4 = -1, l6 = -1, a4 = -1, a6 = -1, cfd = -1;
static struct names nl4, nl6, na4, na6, nc;
static struct sockopt_rec ol4, ol6, oa4, oa6, oc;
static struct wl_region own;

/* Reads s->fd to EOF (bounded: 10 s, never blocks in read), checking the
 * bytes; want is the total the stream must have. */
static void drain(struct stream *s, size_t want)
{
	static unsigned char buf[1 << 16];
	uint64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10000000000ull;
	for (;;) {
		struct pollfd pfd = {s->fd, POLLIN, 0};
		ssize_t n;
		if (wl_now_ns(CLOCK_MONOTONIC) > deadline) {
			wl_fail("%s[%d]: %s: no EOF within 10 s (%zu bytes read, want %zu)", wl_role, wl_exp_pid,
				s->what, s->got, want);
			return;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = recv(s->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n > 0) {
			consume(s, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			break;
		if (errno != EAGAIN && errno != EINTR) {
			wl_fail("%s[%d]: %s: recv: %s (%zu bytes read)", wl_role, wl_exp_pid, s->what, strerror(errno),
				s->got);
			return;
		}
	}
	TCHECK(s->got == want, "%s: %zu bytes until EOF, want %zu", s->what, s->got, want);
}

static int inq(int fd)
{
	int n = -1;
	if (ioctl(fd, FIONREAD, &n))
		return -1;
	return n;
}

/* Waits (at most 5 s) until fd's receive queue holds exactly n bytes. */
static void wait_inq(int fd, int n, const char *what)
{
	for (int i = 0; i < 5000; i++) {
		if (inq(fd) == n)
			return;
		wl_msleep(1);
	}
	wl_die("%s: %s: FIONREAD %d after 5 s, want %d", wl_role, what, inq(fd), n);
}

/* fd's type, state, options and O_NONBLOCK as expected. */
static void check_sock(int fd, const char *what, int listening, int nodelay, int keepalive, int nonblock)
{
	int fl = fcntl(fd, F_GETFL);
	int v;
	TCHECK(fl >= 0 && (fl & (O_ACCMODE | O_NONBLOCK)) == (O_RDWR | (nonblock ? O_NONBLOCK : 0)),
	       "%s (fd %d): F_GETFL %#o, want %#o", what, fd, fl & (O_ACCMODE | O_NONBLOCK),
	       O_RDWR | (nonblock ? O_NONBLOCK : 0));
	TCHECK((v = getopt_int(fd, SOL_SOCKET, SO_TYPE)) == SOCK_STREAM, "%s: SO_TYPE %d, want SOCK_STREAM", what, v);
	TCHECK((v = getopt_int(fd, SOL_SOCKET, SO_PROTOCOL)) == IPPROTO_TCP, "%s: SO_PROTOCOL %d, want TCP", what, v);
	TCHECK((v = getopt_int(fd, SOL_SOCKET, SO_ACCEPTCONN)) == listening, "%s: SO_ACCEPTCONN %d, want %d", what, v,
	       listening);
	TCHECK((v = getopt_int(fd, IPPROTO_TCP, TCP_NODELAY)) == nodelay, "%s: TCP_NODELAY %d, want %d", what, v,
	       nodelay);
	TCHECK((v = getopt_int(fd, SOL_SOCKET, SO_KEEPALIVE)) == keepalive, "%s: SO_KEEPALIVE %d, want %d", what, v,
	       keepalive);
	if (!listening) {
		struct tcp_info ti;
		socklen_t l = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		TCHECK(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l) == 0 && ti.tcpi_state == TCP_ESTABLISHED,
		       "%s: TCP state %d, want ESTABLISHED (%d)", what, ti.tcpi_state, TCP_ESTABLISHED);
	}
}

/* Records the options of a connection but its buffer sizes: TCP grows
 * them as ACKs come, until the dump. And IPV6_V6ONLY of a client's socket
 * that connect() bound: it reads 0, but the restore binds the address
 * explicitly, which sets it (as with CRIU), and a bound socket cannot
 * clear it; it means nothing for a connected socket. */
static void record_conn(int fd, struct sockopt_rec *r)
{
	sockopt_read(fd, r);
	sockopt_forget(r, SOL_SOCKET, SO_SNDBUF);
	sockopt_forget(r, SOL_SOCKET, SO_RCVBUF);
	if (strcmp(wl_role, "root") != 0)
		sockopt_forget(r, IPPROTO_IPV6, IPV6_V6ONLY);
}

static int listen_on(int family)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		wl_die("socket(%d): %s", family, strerror(errno));
	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)&ss;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*s);
	} else {
		struct sockaddr_in6 *s = (void *)&ss;
		s->sin6_family = AF_INET6;
		s->sin6_addr = in6addr_loopback;
		len = sizeof(*s);
	}
	setopt_int(fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 8))
		wl_die("bind/listen on %s loopback: %s", family == AF_INET ? "IPv4" : "IPv6", strerror(errno));
	return fd;
}

static int connect_to(const struct names *l, const char *what)
{
	int fd = socket(l->self.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (const struct sockaddr *)&l->self, l->self_len))
		wl_die("%s: connect to %s: %s", wl_role, what, strerror(errno));
	return fd;
}

/* accept with a 5 s bound. */
static int accept_on(int lfd, const char *what)
{
	struct pollfd pfd = {lfd, POLLIN, 0};
	int fd;
	if (poll(&pfd, 1, 5000) != 1) {
		wl_fail("%s[%d]: %s: no connection within 5 s", wl_role, wl_exp_pid, what);
		return -1;
	}
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		wl_fail("%s[%d]: %s: accept: %s", wl_role, wl_exp_pid, what, strerror(errno));
	return fd;
}

static void client(const struct names *l, uint64_t cseed, uint64_t rseed, int opts)
{
	struct stream s = {"from root", -1, rseed, 0, 0};
	close(l4);
	close(l6);
	wl_region_new(&own, 64 << 10, cseed, "client's region");
	cfd = connect_to(l, wl_role);
	s.fd = cfd;
	if (opts) {
		setopt_int(cfd, IPPROTO_TCP, TCP_NODELAY, 1, "TCP_NODELAY");
		setopt_int(cfd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
		setopt_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE, 77, "TCP_KEEPIDLE");
		setopt_int(cfd, IPPROTO_TCP, TCP_KEEPINTVL, 11, "TCP_KEEPINTVL");
		setopt_int(cfd, IPPROTO_TCP, TCP_KEEPCNT, 4, "TCP_KEEPCNT");
		setopt_timeout(cfd, SO_RCVTIMEO, 3, 0, "SO_RCVTIMEO");
		setopt_timeout(cfd, SO_SNDTIMEO, 0, 400000, "SO_SNDTIMEO");
		setopt_int(cfd, IPPROTO_IP, IP_TOS, 0x08, "IP_TOS");
		setopt_int(cfd, SOL_SOCKET, SO_PRIORITY, 2, "SO_PRIORITY");
		{
			struct linger l = {1, 5};
			if (setsockopt(cfd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)))
				wl_die("%s: SO_LINGER: %s", wl_role, strerror(errno));
		}
	}
	get_names(cfd, &nc, 0);
	write_pat(cfd, cseed, 0, C_PRE, "pre-dump data");
	wait_inq(cfd, R_PRE, "root's pre-dump data");
	record_conn(cfd, &oc);
	wl_tree_line();
	wl_mark(wl_role);
	wl_tree_wait_stop();

	if (wl_corrupt) {
		if (opts) {
			setopt_int(cfd, SOL_SOCKET, SO_KEEPALIVE, 0, "SO_KEEPALIVE");
			setopt_int(cfd, IPPROTO_TCP, TCP_NODELAY, 0, "TCP_NODELAY");
		} else {
			char c;
			if (recv(cfd, &c, 1, MSG_DONTWAIT) != 1)
				wl_fail("%s: corrupt recv: %s", wl_role, strerror(errno));
		}
	}
	wl_tree_check_ids();
	wl_region_check(&own);
	check_names(cfd, &nc, 0, "connection");
	check_sock(cfd, "connection", 0, opts, opts, 0);
	sockopt_check(cfd, &oc, "connection");
	if (opts) {
		struct linger l = {0, 0};
		socklen_t len = sizeof(l);
		int v;
		TCHECK((v = getopt_int(cfd, IPPROTO_TCP, TCP_KEEPIDLE)) == 77, "TCP_KEEPIDLE %d, want 77", v);
		TCHECK((v = getopt_int(cfd, IPPROTO_TCP, TCP_KEEPCNT)) == 4, "TCP_KEEPCNT %d, want 4", v);
		TCHECK((v = getopt_int(cfd, SOL_SOCKET, SO_PRIORITY)) == 2, "SO_PRIORITY %d, want 2", v);
		getsockopt(cfd, SOL_SOCKET, SO_LINGER, &l, &len);
		TCHECK(l.l_onoff == 1 && l.l_linger == 5, "SO_LINGER {%d, %d}, want {1, 5}", l.l_onoff, l.l_linger);
	}
	{
		int n = inq(cfd);
		TCHECK(n == R_PRE, "FIONREAD %d, want %d (the root's bytes in flight at the checkpoint)", n, R_PRE);
	}
	{
		char m[32];
		snprintf(m, sizeof(m), "%s.checked", wl_role);
		wl_mark(m);
	}
	write_pat(cfd, cseed, C_PRE, POST, "post-restore data");
	TCHECK(shutdown(cfd, SHUT_WR) == 0, "shutdown(SHUT_WR): %s", strerror(errno));
	drain(&s, R_PRE + POST);
	close(cfd);
	wl_tree_check_ids();
	wl_check_no_children();
	wl_child_exit();
}

/* A new client after the restore: connect, send NEW_LEN bytes, read NEW_LEN
 * back to EOF. */
static void new_client(const struct names *l)
{
	struct stream s = {"echo from root", -1, N_SEED + 1, 0, 0};
	int fd = connect_to(l, wl_role);
	s.fd = fd;
	write_pat(fd, N_SEED, 0, NEW_LEN, "new connection");
	TCHECK(shutdown(fd, SHUT_WR) == 0, "shutdown(SHUT_WR): %s", strerror(errno));
	drain(&s, NEW_LEN);
	close(fd);
	wl_child_exit();
}

/* The root's side of a new connection on listener lfd. */
static void serve_new(int lfd, const struct names *ln, const char *role)
{
	struct pollfd pfd = {lfd, POLLIN, 0};
	struct names an;
	struct stream s = {NULL, -1, N_SEED, 0, 0};
	char what[64], b1[80], b2[80];
	pid_t pid;
	int fd;

	snprintf(what, sizeof(what), "new connection from %s", role);
	s.what = what;
	TCHECK(poll(&pfd, 1, 0) == 0, "listener of %s: a connection is pending before anyone connected", role);
	pid = wl_fork(role);
	if (pid == 0) {
		close(l4);
		close(l6);
		close(a4);
		close(a6);
		new_client(ln);
	}
	fd = accept_on(lfd, what);
	if (fd >= 0) {
		get_names(fd, &an, 0);
		TCHECK(an.self_len == ln->self_len && memcmp(&an.self, &ln->self, an.self_len) == 0,
		       "%s: local address %s, want the listener's %s", what, addr_str(&an.self, b1, sizeof(b1)),
		       addr_str(&ln->self, b2, sizeof(b2)));
		s.fd = fd;
		drain(&s, NEW_LEN);
		write_pat(fd, N_SEED + 1, 0, NEW_LEN, what);
		close(fd);
	}
	wl_reap_ok(pid, role);
}

int main(int argc, char **argv)
{
	pid_t c4, c6;
	struct stream s4 = {"A4 (from C4)", -1, C4_SEED, 0, 0};
	struct stream s6 = {"A6 (from C6)", -1, C6_SEED, 0, 0};

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (wl_mode[0] || wl_nthreads != 1)
		wl_die("tree_tcp takes no threads and no mode");
	wl_region_new(&own, 256 << 10, 200, "root's region");
	l4 = listen_on(AF_INET);
	l6 = listen_on(AF_INET6);
	get_names(l4, &nl4, 1);
	get_names(l6, &nl6, 1);

	if ((c4 = wl_fork("C4")) == 0)
		client(&nl4, C4_SEED, R4_SEED, 1);
	if ((c6 = wl_fork("C6")) == 0)
		client(&nl6, C6_SEED, R6_SEED, 0);
	a4 = accept_on(l4, "L4");
	a6 = accept_on(l6, "L6");
	if (a4 < 0 || a6 < 0)
		wl_die("accept failed");
	s4.fd = a4;
	s6.fd = a6;
	get_names(a4, &na4, 0);
	get_names(a6, &na6, 0);
	if (fcntl(a4, F_SETFL, fcntl(a4, F_GETFL) | O_NONBLOCK))
		wl_die("O_NONBLOCK: %s", strerror(errno));
	write_pat(a4, R4_SEED, 0, R_PRE, "A4 pre-dump data");
	write_pat(a6, R6_SEED, 0, R_PRE, "A6 pre-dump data");
	wait_inq(a4, C_PRE, "C4's pre-dump data");
	wait_inq(a6, C_PRE, "C6's pre-dump data");
	wl_wait_mark("C4");
	wl_wait_mark("C6");
	sockopt_read(l4, &ol4);
	sockopt_read(l6, &ol6);
	record_conn(a4, &oa4);
	record_conn(a6, &oa6);
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt) {
		char c;
		if (recv(a4, &c, 1, MSG_DONTWAIT) != 1)
			wl_fail("root: corrupt recv: %s", strerror(errno));
		fcntl(a6, F_SETFL, fcntl(a6, F_GETFL) | O_NONBLOCK);
	}
	wl_check_ids(0);
	wl_tree_check_ids();
	wl_region_check(&own);
	check_names(l4, &nl4, 1, "L4 (listener)");
	check_names(l6, &nl6, 1, "L6 (listener)");
	check_names(a4, &na4, 0, "A4");
	check_names(a6, &na6, 0, "A6");
	check_sock(l4, "L4 (listener)", 1, 0, 0, 0);
	check_sock(l6, "L6 (listener)", 1, 0, 0, 0);
	check_sock(a4, "A4", 0, 0, 0, 1);
	check_sock(a6, "A6", 0, 0, 0, 0);
	sockopt_check(l4, &ol4, "L4 (listener)");
	sockopt_check(l6, &ol6, "L6 (listener)");
	sockopt_check(a4, &oa4, "A4");
	sockopt_check(a6, &oa6, "A6");
	TCHECK(getopt_int(l4, SOL_SOCKET, SO_REUSEADDR) == 1, "L4: SO_REUSEADDR off");
	TCHECK(getopt_int(l6, SOL_SOCKET, SO_REUSEADDR) == 1, "L6: SO_REUSEADDR off");
	{
		int n4 = inq(a4), n6 = inq(a6);
		TCHECK(n4 == C_PRE, "A4: FIONREAD %d, want %d (C4's bytes in flight at the checkpoint)", n4, C_PRE);
		TCHECK(n6 == C_PRE, "A6: FIONREAD %d, want %d (C6's bytes in flight at the checkpoint)", n6, C_PRE);
	}
	wl_mark("root.checked");
	kill(c4, SIGTERM);
	kill(c6, SIGTERM);
	wl_wait_mark("C4.checked");
	wl_wait_mark("C6.checked");
	write_pat(a4, R4_SEED, R_PRE, POST, "A4 post-restore data");
	write_pat(a6, R6_SEED, R_PRE, POST, "A6 post-restore data");
	TCHECK(shutdown(a4, SHUT_WR) == 0, "A4: shutdown(SHUT_WR): %s", strerror(errno));
	TCHECK(shutdown(a6, SHUT_WR) == 0, "A6: shutdown(SHUT_WR): %s", strerror(errno));
	drain(&s4, C_PRE + POST);
	drain(&s6, C_PRE + POST);
	wl_reap_ok(c4, "C4");
	wl_reap_ok(c6, "C6");
	close(a4);
	close(a6);
	a4 = a6 = -1;

	serve_new(l4, &nl4, "N4");
	serve_new(l6, &nl6, "N6");
	close(l4);
	close(l6);
	wl_check_no_children();
	return wl_finish();
}
