/*
 * inet_udp: UDP sockets over loopback (IPv4 and IPv6) and their options,
 * across a checkpoint of the tree.
 *
 *   root   U4  127.0.0.1:0, not connected; SO_BROADCAST, SO_RCVBUF/SO_SNDBUF,
 *   |          SO_RCVTIMEO 2.5 s, SO_SNDTIMEO 1.25 s, SO_PRIORITY 5,
 *   |          IP_TOS 0x10, IP_TTL 33, IP_PKTINFO
 *   |      U6  [::1]:0, IPV6_V6ONLY, O_NONBLOCK, IPV6_TCLASS 0x20,
 *   |          IPV6_UNICAST_HOPS 17, IPV6_RECVPKTINFO
 *   |      R4, R4b  127.0.0.1, one port for both: SO_REUSEADDR + SO_REUSEPORT
 *   |      P4a <-> P4b  IPv4, connected to each other (P4a: O_NONBLOCK,
 *   |                   SO_KEEPALIVE, SO_LINGER on 7 s)
 *   |      P6a <-> P6b  IPv6, connected to each other
 *   |      X4, X6       connected to C's Y4, Y6
 *   +-- C  Y4 (SO_RCVBUF/SO_SNDBUF, SO_RCVTIMEO), Y6 (SO_PRIORITY 3)
 *
 * Before READY a datagram goes each way on every pair and into every
 * unconnected socket, and every receive queue is empty again; each process
 * records getsockname/getpeername and every option (inetsk.h) of its
 * sockets. Mode "queued": the root then sends one more datagram to U4 and
 * leaves it there (the dump must be refused: cryo does not save queued
 * datagrams); after SIGTERM the root reads it first, intact. Mode
 * "privileged" (root only): P6a also has SO_MARK 0x42 and SO_PRIORITY 7,
 * which take CAP_NET_ADMIN to set. Mode "filter": U6 gets a socket filter
 * of eight instructions that lets everything through (SO_ATTACH_FILTER),
 * which cryo does not save: the dump must be refused.
 *
 * After SIGTERM every process checks its ids, its sockets' names and
 * options (all of them, and that the changed ones are still changed), and
 * that nothing is queued; then datagrams flow both ways on every pair
 * (P4, P6 in the root; X4/Y4 and X6/Y6 across the processes), and a fresh
 * socket of the root sends to U4, U6 and the R4 port: the one socket that
 * gets it answers from its address.
 */
#include "wl.h"
#include "inetsk.h"
#include <linux/filter.h>
#include <poll.h>
#include <sys/ioctl.h>

struct sk {
	const char *name;
	int fd;
	int connected;
	struct names nm;
	struct sockopt_rec opts;
	uid_t uid; /* the socket's owner (its inode's), fstat */
	gid_t gid;
};

enum { U4, U6, R4, R4B, P4A, P4B, P6A, P6B, X4, X6, NROOT };
enum { Y4, Y6, NCHILD };

static struct sk rs[NROOT] = {
	[U4] = {"U4"}, [U6] = {"U6"}, [R4] = {"R4"}, [R4B] = {"R4b"}, [P4A] = {"P4a"},
	[P4B] = {"P4b"}, [P6A] = {"P6a"}, [P6B] = {"P6b"}, [X4] = {"X4"}, [X6] = {"X6"},
};
static struct sk cs[NCHILD] = {[Y4] = {"Y4"}, [Y6] = {"Y6"}};
static struct wl_region own;

static socklen_t loopback(int family, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s = (void *)ss;
		s->sin_family = AF_INET;
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s->sin_port = htons(port);
		return sizeof(*s);
	}
	struct sockaddr_in6 *s = (void *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_addr = in6addr_loopback;
	s->sin6_port = htons(port);
	return sizeof(*s);
}

static int udp(int family)
{
	int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		wl_die("%s: socket(%d, SOCK_DGRAM): %s", wl_role, family, strerror(errno));
	return fd;
}

static void bind_to(int fd, int family, int port, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(family, port, &ss);
	if (bind(fd, (struct sockaddr *)&ss, len))
		wl_die("%s: bind %s: %s", wl_role, what, strerror(errno));
}

static int port_of(int fd)
{
	struct names nm;
	get_names(fd, &nm, 1);
	return ntohs(((struct sockaddr_in *)&nm.self)->sin_port); /* same offset in sockaddr_in6 */
}

static void connect_pair(int a, int b, const char *what)
{
	struct names na, nb;
	get_names(a, &na, 1);
	get_names(b, &nb, 1);
	if (connect(a, (struct sockaddr *)&nb.self, nb.self_len) || connect(b, (struct sockaddr *)&na.self, na.self_len))
		wl_die("%s: connect %s: %s", wl_role, what, strerror(errno));
}

static void set_nonblock(int fd)
{
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK))
		wl_die("%s: O_NONBLOCK: %s", wl_role, strerror(errno));
}

static int inq(int fd)
{
	int n = -1;
	if (ioctl(fd, FIONREAD, &n))
		return -1;
	return n;
}

/* Receives one datagram on fd within 5 s (never blocks in recv): its
 * length, or -1 after a FAIL line. */
static ssize_t recv_one(int fd, char *buf, size_t size, struct sockaddr_storage *from, socklen_t *fromlen,
			const char *what)
{
	struct pollfd pfd = {fd, POLLIN, 0};
	ssize_t n;
	if (poll(&pfd, 1, 5000) != 1) {
		wl_fail("%s[%d]: %s: no datagram within 5 s", wl_role, wl_exp_pid, what);
		return -1;
	}
	*fromlen = sizeof(*from);
	n = recvfrom(fd, buf, size, MSG_DONTWAIT, (struct sockaddr *)from, fromlen);
	if (n < 0)
		wl_fail("%s[%d]: %s: recvfrom: %s", wl_role, wl_exp_pid, what, strerror(errno));
	return n;
}

/* Sends msg from fd (to its peer if to is NULL). */
static void send_one(int fd, const char *msg, const struct sockaddr_storage *to, socklen_t tolen, const char *what)
{
	ssize_t n = sendto(fd, msg, strlen(msg), MSG_DONTWAIT, (const struct sockaddr *)to, to ? tolen : 0);
	if (n != (ssize_t)strlen(msg))
		wl_fail("%s[%d]: %s: sendto: %zd (%s)", wl_role, wl_exp_pid, what, n, n < 0 ? strerror(errno) : "short");
}

/* Receives msg on fd, which must come from the address want. */
static void expect(int fd, const char *msg, const struct sockaddr_storage *want, socklen_t wantlen, const char *what)
{
	char buf[256], b1[80], b2[80];
	struct sockaddr_storage from;
	socklen_t fromlen;
	ssize_t n = recv_one(fd, buf, sizeof(buf) - 1, &from, &fromlen, what);
	if (n < 0)
		return;
	buf[n] = 0;
	TCHECK(strcmp(buf, msg) == 0, "%s: got %zd bytes \"%s\", want \"%s\"", what, n, buf, msg);
	TCHECK(fromlen == wantlen && memcmp(&from, want, fromlen) == 0, "%s: from %s, want %s", what,
	       addr_str(&from, b1, sizeof(b1)), addr_str(want, b2, sizeof(b2)));
}

/* One datagram each way between the connected sockets a and b. */
static void ping_pair(struct sk *a, struct sk *b, const char *when)
{
	char msg[128], what[128];
	snprintf(msg, sizeof(msg), "%s %s -> %s", when, a->name, b->name);
	snprintf(what, sizeof(what), "%s: %s -> %s", when, a->name, b->name);
	send_one(a->fd, msg, NULL, 0, what);
	expect(b->fd, msg, &a->nm.self, a->nm.self_len, what);
	snprintf(msg, sizeof(msg), "%s %s -> %s", when, b->name, a->name);
	snprintf(what, sizeof(what), "%s: %s -> %s", when, b->name, a->name);
	send_one(b->fd, msg, NULL, 0, what);
	expect(a->fd, msg, &b->nm.self, b->nm.self_len, what);
}

/* A fresh socket sends to the port of the unconnected sockets group[0..n):
 * exactly one of them (one alone, or one of a SO_REUSEPORT group) gets it
 * and answers from its address. */
static void ping_port(struct sk *group, int n, const char *when)
{
	int family = group[0].nm.self.ss_family, fd = udp(family), got = -1;
	struct names fresh;
	struct pollfd pfd[2];
	char msg[128], what[128];
	bind_to(fd, family, 0, "fresh socket");
	get_names(fd, &fresh, 1);
	snprintf(msg, sizeof(msg), "%s fresh -> %s", when, group[0].name);
	snprintf(what, sizeof(what), "%s: fresh socket -> port of %s", when, group[0].name);
	send_one(fd, msg, &group[0].nm.self, group[0].nm.self_len, what);
	for (int i = 0; i < n; i++)
		pfd[i] = (struct pollfd){group[i].fd, POLLIN, 0};
	if (poll(pfd, n, 5000) < 1) {
		wl_fail("%s[%d]: %s: no datagram within 5 s", wl_role, wl_exp_pid, what);
		close(fd);
		return;
	}
	for (int i = 0; i < n; i++)
		if (pfd[i].revents & POLLIN) {
			TCHECK(got < 0, "%s: both %s and %s got it", what, group[got].name, group[i].name);
			got = i;
		}
	expect(group[got].fd, msg, &fresh.self, fresh.self_len, what);
	snprintf(msg, sizeof(msg), "%s %s -> fresh", when, group[got].name);
	send_one(group[got].fd, msg, &fresh.self, fresh.self_len, what);
	expect(fd, msg, &group[got].nm.self, group[got].nm.self_len, what);
	close(fd);
}

static void record(struct sk *s, int n)
{
	for (int i = 0; i < n; i++) {
		struct stat st;
		get_names(s[i].fd, &s[i].nm, !s[i].connected);
		sockopt_read(s[i].fd, &s[i].opts);
		if (fstat(s[i].fd, &st))
			wl_die("fstat %s: %s", s[i].name, strerror(errno));
		s[i].uid = st.st_uid;
		s[i].gid = st.st_gid;
	}
}

/* Names, every option, an empty queue. */
static void check_all(struct sk *s, int n)
{
	for (int i = 0; i < n; i++) {
		int q = inq(s[i].fd);
		struct stat st;
		TCHECK(fstat(s[i].fd, &st) == 0 && st.st_uid == s[i].uid && st.st_gid == s[i].gid,
		       "%s: owned by %d:%d, was %d:%d", s[i].name, (int)st.st_uid, (int)st.st_gid, (int)s[i].uid,
		       (int)s[i].gid);
		check_names(s[i].fd, &s[i].nm, !s[i].connected, s[i].name);
		sockopt_check(s[i].fd, &s[i].opts, s[i].name);
		TCHECK(q == 0, "%s: FIONREAD %d, want an empty queue", s[i].name, q);
	}
}

/* What the workload changed is still changed (not only equal to the
 * record, which would be a tautology if both were defaults). */
static void check_changed(const struct sk *s, int level, int opt, int want, const char *what)
{
	int v = getopt_int(s->fd, level, opt);
	TCHECK(v == want, "%s: %s %d, want %d", s->name, what, v, want);
}

static void child(void)
{
	struct sk *y4 = &cs[Y4], *y6 = &cs[Y6];
	for (int i = 0; i < NROOT; i++)
		if (i != X4 && i != X6)
			close(rs[i].fd);
	wl_region_new(&own, 64 << 10, 302, "C's region");
	setopt_int(y4->fd, SOL_SOCKET, SO_RCVBUF, 30000, "SO_RCVBUF");
	setopt_int(y4->fd, SOL_SOCKET, SO_SNDBUF, 20000, "SO_SNDBUF");
	setopt_timeout(y4->fd, SO_RCVTIMEO, 0, 700000, "SO_RCVTIMEO");
	setopt_int(y6->fd, SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY");
	/* The root pings X4/Y4 and X6/Y6 before READY; C answers. */
	for (int i = 0; i < NCHILD; i++) {
		char buf[128], msg[160], what[64];
		struct sockaddr_storage from;
		socklen_t fromlen;
		ssize_t n;
		snprintf(what, sizeof(what), "pre-dump %s", cs[i].name);
		n = recv_one(cs[i].fd, buf, sizeof(buf) - 1, &from, &fromlen, what);
		if (n < 0)
			wl_die("C: %s: nothing from the root", cs[i].name);
		buf[n] = 0;
		snprintf(msg, sizeof(msg), "echo %s", buf);
		send_one(cs[i].fd, msg, NULL, 0, what);
	}
	record(cs, NCHILD);
	wl_tree_line();
	wl_mark("C");
	wl_tree_wait_stop();

	if (wl_corrupt)
		setopt_int(y6->fd, SOL_SOCKET, SO_PRIORITY, 4, "SO_PRIORITY");
	wl_tree_check_ids();
	wl_region_check(&own);
	check_all(cs, NCHILD);
	check_changed(y4, SOL_SOCKET, SO_RCVBUF, 60000, "SO_RCVBUF");
	check_changed(y6, SOL_SOCKET, SO_PRIORITY, 3, "SO_PRIORITY");
	wl_mark("C.checked");
	/* The root sends on X4 then X6; C answers each. */
	for (int i = 0; i < NCHILD; i++) {
		char msg[64], what[64];
		snprintf(msg, sizeof(msg), "post-restore X%c -> %s", cs[i].name[1], cs[i].name);
		snprintf(what, sizeof(what), "post-restore %s", cs[i].name);
		expect(cs[i].fd, msg, &cs[i].nm.peer, cs[i].nm.peer_len, what);
		snprintf(msg, sizeof(msg), "post-restore %s -> X%c", cs[i].name, cs[i].name[1]);
		send_one(cs[i].fd, msg, NULL, 0, what);
	}
	wl_tree_check_ids();
	wl_check_no_children();
	wl_child_exit();
}

/* The root's half of a cross-process pair: X sends, then Y's answer. */
static void ping_child(struct sk *x, const struct sk *y, const char *when)
{
	char msg[96], what[96];
	snprintf(msg, sizeof(msg), "%s %s -> %s", when, x->name, y->name);
	snprintf(what, sizeof(what), "%s: %s -> %s", when, x->name, y->name);
	send_one(x->fd, msg, NULL, 0, what);
	if (strcmp(when, "pre-dump") == 0)
		snprintf(msg, sizeof(msg), "echo %s %s -> %s", when, x->name, y->name);
	else
		snprintf(msg, sizeof(msg), "%s %s -> %s", when, y->name, x->name);
	expect(x->fd, msg, &x->nm.peer, x->nm.peer_len, what);
}

/* Datagrams both ways on every pair (C answers on its side), and into
 * every port of the root. */
static void ping_all(const char *when)
{
	ping_child(&rs[X4], &cs[Y4], when);
	ping_child(&rs[X6], &cs[Y6], when);
	ping_pair(&rs[P4A], &rs[P4B], when);
	ping_pair(&rs[P6A], &rs[P6B], when);
	ping_port(&rs[U4], 1, when);
	ping_port(&rs[U6], 1, when);
	ping_port(&rs[R4], 2, when);
}

int main(int argc, char **argv)
{
	int queued, privileged, filter;
	pid_t c;

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	queued = strcmp(wl_mode, "queued") == 0;
	privileged = strcmp(wl_mode, "privileged") == 0;
	filter = strcmp(wl_mode, "filter") == 0;
	if ((wl_mode[0] && !queued && !privileged && !filter) || wl_nthreads != 1)
		wl_die("inet_udp takes no threads; its modes are \"queued\", \"privileged\" and \"filter\"");
	wl_region_new(&own, 256 << 10, 300, "root's region");

	rs[U4].fd = udp(AF_INET);
	setopt_int(rs[U4].fd, SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
	setopt_int(rs[U4].fd, SOL_SOCKET, SO_RCVBUF, 48000, "SO_RCVBUF");
	setopt_int(rs[U4].fd, SOL_SOCKET, SO_SNDBUF, 40000, "SO_SNDBUF");
	setopt_timeout(rs[U4].fd, SO_RCVTIMEO, 2, 500000, "SO_RCVTIMEO");
	setopt_timeout(rs[U4].fd, SO_SNDTIMEO, 1, 250000, "SO_SNDTIMEO");
	setopt_int(rs[U4].fd, IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
	setopt_int(rs[U4].fd, SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY");
	setopt_int(rs[U4].fd, IPPROTO_IP, IP_TTL, 33, "IP_TTL");
	setopt_int(rs[U4].fd, IPPROTO_IP, IP_PKTINFO, 1, "IP_PKTINFO");
	bind_to(rs[U4].fd, AF_INET, 0, "U4");

	rs[U6].fd = udp(AF_INET6);
	setopt_int(rs[U6].fd, IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	setopt_int(rs[U6].fd, IPPROTO_IPV6, IPV6_TCLASS, 0x20, "IPV6_TCLASS");
	setopt_int(rs[U6].fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17, "IPV6_UNICAST_HOPS");
	setopt_int(rs[U6].fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1, "IPV6_RECVPKTINFO");
	set_nonblock(rs[U6].fd);
	bind_to(rs[U6].fd, AF_INET6, 0, "U6");

	rs[R4].fd = udp(AF_INET);
	rs[R4B].fd = udp(AF_INET);
	for (int i = R4; i <= R4B; i++) {
		setopt_int(rs[i].fd, SOL_SOCKET, SO_REUSEADDR, 1, "SO_REUSEADDR");
		setopt_int(rs[i].fd, SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	}
	bind_to(rs[R4].fd, AF_INET, 0, "R4");
	bind_to(rs[R4B].fd, AF_INET, port_of(rs[R4].fd), "R4b on R4's port");

	for (int i = P4A; i <= X6; i++) {
		rs[i].fd = udp(i == P4A || i == P4B || i == X4 ? AF_INET : AF_INET6);
		bind_to(rs[i].fd, i == P4A || i == P4B || i == X4 ? AF_INET : AF_INET6, 0, rs[i].name);
	}
	for (int i = 0; i < NCHILD; i++) {
		cs[i].fd = udp(i == Y4 ? AF_INET : AF_INET6);
		bind_to(cs[i].fd, i == Y4 ? AF_INET : AF_INET6, 0, cs[i].name);
		cs[i].connected = 1;
	}
	set_nonblock(rs[P4A].fd);
	setopt_int(rs[P4A].fd, SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	{
		struct linger l = {1, 7};
		if (setsockopt(rs[P4A].fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l)))
			wl_die("SO_LINGER: %s", strerror(errno));
	}
	if (privileged) {
		setopt_int(rs[P6A].fd, SOL_SOCKET, SO_MARK, 0x42, "SO_MARK");
		setopt_int(rs[P6A].fd, SOL_SOCKET, SO_PRIORITY, 7, "SO_PRIORITY");
	}
	connect_pair(rs[P4A].fd, rs[P4B].fd, "P4a/P4b");
	connect_pair(rs[P6A].fd, rs[P6B].fd, "P6a/P6b");
	connect_pair(rs[X4].fd, cs[Y4].fd, "X4/Y4");
	connect_pair(rs[X6].fd, cs[Y6].fd, "X6/Y6");
	for (int i = P4A; i <= X6; i++)
		rs[i].connected = 1;

	if ((c = wl_fork("C")) == 0)
		child();
	close(cs[Y4].fd);
	close(cs[Y6].fd);
	record(rs, NROOT);
	ping_all("pre-dump");
	wl_wait_mark("C");
	if (queued) {
		/* One datagram left in U4's queue: the dump must refuse it. */
		int fd = udp(AF_INET);
		struct pollfd pfd = {rs[U4].fd, POLLIN, 0};
		send_one(fd, "queued", &rs[U4].nm.self, rs[U4].nm.self_len, "queued datagram");
		close(fd);
		if (poll(&pfd, 1, 5000) != 1)
			wl_die("the queued datagram did not reach U4");
	}
	if (filter) {
		/* Eight instructions, the first "ld #0" (opcode 0): it lets
		 * everything through. */
		struct sock_filter accept_all[8];
		for (int i = 0; i < 7; i++)
			accept_all[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_IMM, 0);
		accept_all[7] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffff);
		struct sock_fprog prog = {.len = 8, .filter = accept_all};
		if (setsockopt(rs[U6].fd, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof prog))
			wl_die("SO_ATTACH_FILTER: %s", strerror(errno));
	}
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt) {
		setopt_int(rs[U4].fd, SOL_SOCKET, SO_BROADCAST, 0, "SO_BROADCAST");
		setopt_int(rs[U6].fd, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 18, "IPV6_UNICAST_HOPS");
	}
	if (queued) {
		char buf[64];
		struct sockaddr_storage from;
		socklen_t fromlen;
		ssize_t n = recv_one(rs[U4].fd, buf, sizeof(buf) - 1, &from, &fromlen, "U4's queued datagram");
		if (n >= 0) {
			buf[n] = 0;
			TCHECK(strcmp(buf, "queued") == 0, "U4's queued datagram: \"%s\", want \"queued\"", buf);
		}
	}
	wl_check_ids(0);
	wl_tree_check_ids();
	wl_region_check(&own);
	check_all(rs, NROOT);
	check_changed(&rs[U4], SOL_SOCKET, SO_BROADCAST, 1, "SO_BROADCAST");
	check_changed(&rs[U4], SOL_SOCKET, SO_RCVBUF, 96000, "SO_RCVBUF");
	check_changed(&rs[U4], SOL_SOCKET, SO_PRIORITY, 5, "SO_PRIORITY");
	check_changed(&rs[U4], IPPROTO_IP, IP_TOS, 0x10, "IP_TOS");
	check_changed(&rs[U4], IPPROTO_IP, IP_TTL, 33, "IP_TTL");
	check_changed(&rs[U6], IPPROTO_IPV6, IPV6_V6ONLY, 1, "IPV6_V6ONLY");
	check_changed(&rs[U6], IPPROTO_IPV6, IPV6_UNICAST_HOPS, 17, "IPV6_UNICAST_HOPS");
	check_changed(&rs[R4B], SOL_SOCKET, SO_REUSEPORT, 1, "SO_REUSEPORT");
	check_changed(&rs[P4A], SOL_SOCKET, SO_KEEPALIVE, 1, "SO_KEEPALIVE");
	if (privileged) {
		check_changed(&rs[P6A], SOL_SOCKET, SO_MARK, 0x42, "SO_MARK");
		check_changed(&rs[P6A], SOL_SOCKET, SO_PRIORITY, 7, "SO_PRIORITY");
	}
	{
		struct timeval tv = {0, 0};
		struct linger l = {0, 0};
		socklen_t len = sizeof(tv);
		getsockopt(rs[U4].fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
		TCHECK(tv.tv_sec == 2 && tv.tv_usec == 500000, "U4: SO_RCVTIMEO %ld.%06ld s, want 2.500000", (long)tv.tv_sec,
		       (long)tv.tv_usec);
		len = sizeof(l);
		getsockopt(rs[P4A].fd, SOL_SOCKET, SO_LINGER, &l, &len);
		TCHECK(l.l_onoff == 1 && l.l_linger == 7, "P4a: SO_LINGER {%d, %d}, want {1, 7}", l.l_onoff, l.l_linger);
	}
	wl_mark("root.checked");
	kill(c, SIGTERM);
	wl_wait_mark("C.checked");
	ping_all("post-restore");
	wl_reap_ok(c, "C");
	for (int i = 0; i < NROOT; i++)
		close(rs[i].fd);
	wl_check_no_children();
	return wl_finish();
}
