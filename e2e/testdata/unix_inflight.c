/*
 * unix_inflight - Unix socket state that lives in no descriptor of its own.
 *   usage: unix_inflight MODE
 *   backlog: connections waiting to be accepted. A stream listener (abstract
 *     name) has three clients in its backlog: the first sent 5000 bytes, the
 *     second nothing, the third 4 bytes; a seqpacket listener (bound to a
 *     path) has one client that sent messages of 10 and 3000 bytes, then
 *     "fd" with a pipe's read end (5 bytes in the pipe), closed since. After
 *     SIGTERM each listener accepts them in that order, each server end
 *     reads exactly what its client sent (SO_PEERCRED names this process;
 *     the pipe's bytes through the descriptor), bytes go both ways on each
 *     connection, and the backlogs are empty.
 *   scm: descriptors in flight (SCM_RIGHTS). A datagram pair holds, in
 *     order: "m1"; "m2" with a regular file held by nothing else (O_RDWR,
 *     offset 1234) and a file the process also holds (offset 100); "m3";
 *     "m4" with a pipe's read end (8 bytes queued in the pipe), another
 *     pipe's write end, and one end of a stream pair with 8 bytes queued to
 *     it. A stream pair holds "abc", then "X" with a descriptor, then "yz".
 *     After SIGTERM every message comes with its descriptors (and only
 *     those), the file's offset and content, the offset shared with the
 *     descriptor held, the pipes and the socket work; the stream's first 3
 *     bytes come without descriptors.
 *   dgram: datagrams queued in an unconnected datagram socket (abstract
 *     name) from three senders: one bound to a path (sendto), one unnamed
 *     (sendto) and one with an abstract name connected to the receiver
 *     (send, 3000 bytes). After SIGTERM recvfrom gives each with its
 *     sender's address, in order; the connected sender is still connected,
 *     and a reply to the path sender's address reaches it.
 *   ext-dgram, ext-cred, ext-stream: a datagram socket (with SO_PASSCRED
 *     for ext-cred), or a listener, bound to ./ext.sock, to which the test
 *     sends "outside" (or connects and sends it) from outside the tree.
 *     After SIGTERM it is received (accepted).
 *   scm-eventfd: an eventfd (counter 5) in flight in a datagram pair, a
 *     kind cryo does not send again. After SIGTERM it is received and reads
 *     5.
 *   scm-big-ghost: a deleted file of 64 MiB + 1 byte (sparse), more than
 *     cryo saves of a deleted file, in flight in a datagram pair. After
 *     SIGTERM it is received and has its size.
 *   backlog-eventfd: a stream listener (abstract name) with two clients in
 *     its backlog: the first sent "efd" with an eventfd (counter 5), a kind
 *     cryo does not save, the second sent "two". After SIGTERM both are
 *     accepted in that order with what they sent (the eventfd reads 5),
 *     bytes go both ways, and the backlog is empty.
 *   tcp-backlog: a TCP listener on 127.0.0.1 with a client of the process
 *     waiting in its backlog, having sent "x". After SIGTERM it is accepted
 *     and bytes go both ways.
 *   tree: the same across processes. The root has a datagram socket and a
 *     listener (abstract names) and one end of a datagram pair; it connected
 *     a client to the listener and sent "shared" through it before forking
 *     A, so both hold that client. A sent "from-A" to the datagram socket
 *     from a socket of its own (an abstract name), connected to the listener
 *     and sent 12 bytes, and sent over the pair a file (offset 77) and a
 *     pipe's write end, both closed in A, which keeps the pipe's read end.
 *     The datagram socket has SO_PASSCRED. After SIGTERM the root receives
 *     the datagram with A's address and credentials (pid A, uid 0) and
 *     replies to it, accepts the shared client's connection (SO_PEERCRED is
 *     the root) and then A's (SO_PEERCRED is A), reads their bytes and
 *     answers each, receives the file (offset, content) and writes through
 *     the pipe; A then gets the reply, both answers (one through its copy
 *     of the shared client) and the pipe's bytes.
 */
#include "wl.h"
#include <netinet/in.h>
#include <stddef.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

static char buf[8192];

/* A sockaddr_un for a path or, with a leading '@', an abstract name. */
static socklen_t mkaddr(struct sockaddr_un *sa, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (name[0] == '@') {
		memcpy(sa->sun_path + 1, name + 1, strlen(name) - 1);
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	}
	strcpy(sa->sun_path, name);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name) + 1);
}

static int sock(int type) { int s = socket(AF_UNIX, type, 0); if (s < 0) wl_die("socket: %s", strerror(errno)); return s; }

static void bind_to(int s, const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, name);
	if (name[0] != '@')
		unlink(name);
	if (bind(s, (struct sockaddr *)&sa, len))
		wl_die("bind %s: %s", name, strerror(errno));
}

static void connect_to(int s, const char *name)
{
	struct sockaddr_un sa;
	socklen_t len = mkaddr(&sa, name);
	if (connect(s, (struct sockaddr *)&sa, len))
		wl_die("connect %s: %s", name, strerror(errno));
}

static void put(int s, size_t len, uint64_t seed)
{
	wl_fill(buf, len, seed);
	if (send(s, buf, len, MSG_DONTWAIT) != (ssize_t)len)
		wl_die("send %zu bytes: %s", len, strerror(errno));
}

static void put_str(int s, const char *str)
{
	if (send(s, str, strlen(str), MSG_DONTWAIT) != (ssize_t)strlen(str))
		wl_die("send %s: %s", str, strerror(errno));
}

/* Reads a stream's len bytes (all queued: no waiting) and checks them. */
static void expect_bytes(const char *what, int s, size_t len, uint64_t seed)
{
	size_t have = 0;
	while (have < len) {
		ssize_t n = recv(s, buf + have, len - have, MSG_DONTWAIT);
		if (n <= 0)
			break;
		have += (size_t)n;
	}
	CHECK(have == len && wl_verify(buf, len, seed) < 0, "%s: %zu of %zu bytes, or they differ", what, have, len);
}

/* Receives one message, exactly str, without descriptors. */
static void expect_str(const char *what, int s, const char *str)
{
	char got[64];
	ssize_t n = recv(s, got, sizeof got, MSG_DONTWAIT | MSG_TRUNC);
	CHECK(n == (ssize_t)strlen(str) && memcmp(got, str, strlen(str)) == 0, "%s: got %zd bytes (%s), want \"%s\"", what, n,
	      n < 0 ? strerror(errno) : "", str);
}

static void expect_empty(const char *what, int s)
{
	char c;
	ssize_t n = recv(s, &c, 1, MSG_DONTWAIT);
	CHECK(n < 0 && errno == EAGAIN, "%s: more queued than was sent (recv %zd)", what, n);
}

/* Bytes go both ways between two connected sockets. */
static void both_ways(const char *what, int a, int b)
{
	put_str(a, "ping");
	expect_str(what, b, "ping");
	put_str(b, "pong");
	expect_str(what, a, "pong");
}

static int accept_now(const char *what, int l)
{
	int a = accept4(l, NULL, NULL, SOCK_NONBLOCK);
	CHECK(a >= 0, "%s: accept: %s", what, strerror(errno));
	return a;
}

static void send_fds(int s, const char *str, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = {.iov_base = (void *)str, .iov_len = strlen(str)};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = CMSG_SPACE(n * sizeof(int))};
	struct cmsghdr *ch = CMSG_FIRSTHDR(&mh);
	ch->cmsg_level = SOL_SOCKET;
	ch->cmsg_type = SCM_RIGHTS;
	ch->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(ch), fds, n * sizeof(int));
	if (sendmsg(s, &mh, MSG_DONTWAIT) != (ssize_t)strlen(str))
		wl_die("sendmsg %s: %s", str, strerror(errno));
}

/* Receives one message of up to size bytes, exactly str, with exactly n
 * descriptors, returned in fds. */
static int recv_fds(const char *what, int s, size_t size, const char *str, int *fds, int n)
{
	char got[64], cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = {.iov_base = got, .iov_len = size};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	ssize_t len = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	int have = 0;
	for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch))
		if (ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_RIGHTS) {
			have = (int)((ch->cmsg_len - CMSG_LEN(0)) / sizeof(int));
			if (have <= n)
				memcpy(fds, CMSG_DATA(ch), have * sizeof(int));
		}
	CHECK(len == (ssize_t)strlen(str) && memcmp(got, str, strlen(str)) == 0, "%s: got %zd bytes (%s), want \"%s\"", what, len,
	      len < 0 ? strerror(errno) : "", str);
	CHECK(have == n, "%s: %d descriptors came with it, want %d", what, have, n);
	return have == n && len == (ssize_t)strlen(str);
}

static void backlog(void)
{
	char lname[64], qpath[PATH_MAX];
	int l, c[3], lq, q;
	snprintf(lname, sizeof lname, "@cryo-wl-backlog-%d", (int)getpid());
	if (!getcwd(qpath, sizeof qpath - 16))
		wl_die("getcwd: %s", strerror(errno));
	strcat(qpath, "/seq.sock");
	l = sock(SOCK_STREAM);
	bind_to(l, lname);
	if (listen(l, 8))
		wl_die("listen: %s", strerror(errno));
	for (int i = 0; i < 3; i++) {
		c[i] = sock(SOCK_STREAM);
		connect_to(c[i], lname);
	}
	put(c[0], 5000, 11);
	put(c[2], 4, 12);
	lq = sock(SOCK_SEQPACKET);
	bind_to(lq, qpath);
	if (listen(lq, 4))
		wl_die("listen: %s", strerror(errno));
	q = sock(SOCK_SEQPACKET);
	connect_to(q, qpath);
	put(q, 10, 13);
	put(q, 3000, 14);
	{
		int qp[2];
		if (pipe(qp) || write(qp[1], "qpipe", 5) != 5)
			wl_die("pipe: %s", strerror(errno));
		send_fds(q, "fd", &qp[0], 1);
		close(qp[0]);
		close(qp[1]);
	}
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (wl_corrupt)
		put(c[1], 1, 15);
	fcntl(l, F_SETFL, O_NONBLOCK);
	fcntl(lq, F_SETFL, O_NONBLOCK);
	int a[3];
	for (int i = 0; i < 3; i++) {
		struct ucred cr;
		socklen_t len = sizeof cr;
		a[i] = accept_now("stream listener", l);
		if (a[i] < 0)
			return;
		CHECK(getsockopt(a[i], SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == getpid(),
		      "connection %d: SO_PEERCRED pid %d, want %d", i, (int)cr.pid, (int)getpid());
	}
	expect_bytes("first connection", a[0], 5000, 11);
	expect_empty("first connection", a[0]);
	expect_empty("second connection", a[1]);
	expect_bytes("third connection", a[2], 4, 12);
	expect_empty("third connection", a[2]);
	for (int i = 0; i < 3; i++)
		both_ways("stream connection", a[i], c[i]);
	CHECK(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "stream listener: a fourth connection waits");
	int aq = accept_now("seqpacket listener", lq);
	if (aq < 0)
		return;
	ssize_t n = recv(aq, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
	CHECK(n == 10 && wl_verify(buf, 10, 13) < 0, "seqpacket: first message %zd bytes, or it differs", n);
	n = recv(aq, buf, sizeof buf, MSG_DONTWAIT | MSG_TRUNC);
	CHECK(n == 3000 && wl_verify(buf, 3000, 14) < 0, "seqpacket: second message %zd bytes, or it differs", n);
	int qfd;
	if (recv_fds("seqpacket: third message", aq, 64, "fd", &qfd, 1)) {
		char got[8];
		CHECK(read(qfd, got, sizeof got) == 5 && memcmp(got, "qpipe", 5) == 0, "seqpacket: the pipe in flight lost its bytes");
	}
	expect_empty("seqpacket connection", aq);
	both_ways("seqpacket connection", aq, q);
	CHECK(accept(lq, NULL, NULL) < 0 && errno == EAGAIN, "seqpacket listener: a second connection waits");
	unlink(qpath);
}

static void scm(void)
{
	int f, g, p[2], w[2], s[2], d[2], t[2];
	f = open("scm-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (f < 0)
		wl_die("open: %s", strerror(errno));
	wl_fill(buf, sizeof buf, 21);
	if (write(f, buf, sizeof buf) != sizeof buf)
		wl_die("write: %s", strerror(errno));
	lseek(f, 1234, SEEK_SET);
	g = open("scm-file", O_RDONLY);
	lseek(g, 100, SEEK_SET);
	if (pipe(p) || pipe(w) || socketpair(AF_UNIX, SOCK_STREAM, 0, s) || socketpair(AF_UNIX, SOCK_DGRAM, 0, d) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, t))
		wl_die("pipe/socketpair: %s", strerror(errno));
	if (write(p[1], "pipedata", 8) != 8)
		wl_die("write: %s", strerror(errno));
	put_str(s[0], "sockdata");
	put_str(d[0], "m1");
	send_fds(d[0], "m2", (int[]){f, g}, 2);
	put_str(d[0], "m3");
	send_fds(d[0], "m4", (int[]){p[0], w[1], s[1]}, 3);
	put_str(t[0], "abc");
	send_fds(t[0], "X", (int[]){g}, 1);
	put_str(t[0], "yz");
	/* These now live only in flight. */
	close(f);
	close(p[0]);
	close(w[1]);
	close(s[1]);
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (wl_corrupt)
		lseek(g, 7, SEEK_SET);
	int fds[3];
	recv_fds("m1", d[1], 64, "m1", fds, 0);
	if (recv_fds("m2", d[1], 64, "m2", fds, 2)) {
		char got[16];
		CHECK(lseek(fds[0], 0, SEEK_CUR) == 1234, "file in flight: offset %ld, want 1234", (long)lseek(fds[0], 0, SEEK_CUR));
		CHECK((fcntl(fds[0], F_GETFL) & O_ACCMODE) == O_RDWR, "file in flight: not O_RDWR");
		wl_fill(buf, sizeof buf, 21);
		CHECK(read(fds[0], got, sizeof got) == sizeof got && memcmp(got, buf + 1234, sizeof got) == 0,
		      "file in flight: content at 1234 differs");
		CHECK(lseek(fds[1], 0, SEEK_CUR) == 100 && lseek(g, 0, SEEK_CUR) == 100, "shared file: offsets %ld and %ld, want 100",
		      (long)lseek(fds[1], 0, SEEK_CUR), (long)lseek(g, 0, SEEK_CUR));
		lseek(fds[1], 200, SEEK_SET);
		CHECK(lseek(g, 0, SEEK_CUR) == 200, "shared file: the descriptor in flight and the one held do not share an offset");
	}
	recv_fds("m3", d[1], 64, "m3", fds, 0);
	if (recv_fds("m4", d[1], 64, "m4", fds, 3)) {
		char got[16];
		CHECK(read(fds[0], got, sizeof got) == 8 && memcmp(got, "pipedata", 8) == 0, "pipe read end in flight: its 8 bytes differ");
		CHECK(write(fds[1], "through", 7) == 7 && read(w[0], got, sizeof got) == 7 && memcmp(got, "through", 7) == 0,
		      "pipe write end in flight: bytes do not go through");
		expect_str("socket in flight", fds[2], "sockdata");
		both_ways("socket in flight", fds[2], s[0]);
	}
	expect_empty("datagram pair", d[1]);
	recv_fds("stream before the descriptor", t[1], 3, "abc", fds, 0);
	recv_fds("stream byte with the descriptor", t[1], 16, "X", fds, 1);
	expect_str("stream after the descriptor", t[1], "yz");
	unlink("scm-file");
}

/* Receives one datagram, exactly str, and checks its source is name ("" for
 * an unnamed sender) and, if cred_pid is not 0, that it carries the
 * credentials of process cred_pid, uid 0 (the receiver has SO_PASSCRED). */
static void expect_from(int r, const char *str, size_t len, uint64_t seed, const char *name, pid_t cred_pid)
{
	struct sockaddr_un from, want;
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof buf};
	struct msghdr mh = {.msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	/* recvfrom gives no address at all for an unnamed sender. */
	socklen_t wlen = name[0] ? mkaddr(&want, name) : 0;
	ssize_t n = recvmsg(r, &mh, MSG_DONTWAIT | MSG_TRUNC);
	socklen_t flen = mh.msg_namelen;
	if (str)
		CHECK(n == (ssize_t)strlen(str) && memcmp(buf, str, strlen(str)) == 0, "datagram \"%s\": got %zd bytes (%s)", str, n,
		      n < 0 ? strerror(errno) : "");
	else
		CHECK(n == (ssize_t)len && wl_verify(buf, len, seed) < 0, "datagram of %zu bytes: got %zd", len, n);
	CHECK(n >= 0 && flen == wlen && (wlen == 0 || memcmp(from.sun_path, want.sun_path, wlen - offsetof(struct sockaddr_un, sun_path)) == 0),
	      "datagram from %s: source address differs (length %u)", name[0] ? name : "an unnamed socket", flen);
	if (cred_pid && n >= 0) {
		struct ucred cr = {0};
		for (struct cmsghdr *ch = CMSG_FIRSTHDR(&mh); ch; ch = CMSG_NXTHDR(&mh, ch))
			if (ch->cmsg_level == SOL_SOCKET && ch->cmsg_type == SCM_CREDENTIALS)
				memcpy(&cr, CMSG_DATA(ch), sizeof cr);
		CHECK(cr.pid == cred_pid && cr.uid == 0 && cr.gid == 0, "datagram from %s: credentials pid %d uid %d gid %d, want pid %d uid 0 gid 0",
		      name, (int)cr.pid, (int)cr.uid, (int)cr.gid, (int)cred_pid);
	}
}

static void dgram(void)
{
	char rname[64], s2name[64], s1path[PATH_MAX];
	int r, s1, s2, s3;
	snprintf(rname, sizeof rname, "@cryo-wl-dgram-r-%d", (int)getpid());
	snprintf(s2name, sizeof s2name, "@cryo-wl-dgram-s2-%d", (int)getpid());
	if (!getcwd(s1path, sizeof s1path - 16))
		wl_die("getcwd: %s", strerror(errno));
	strcat(s1path, "/s1.sock");
	r = sock(SOCK_DGRAM);
	bind_to(r, rname);
	s1 = sock(SOCK_DGRAM);
	bind_to(s1, s1path);
	s2 = sock(SOCK_DGRAM);
	bind_to(s2, s2name);
	connect_to(s2, rname);
	s3 = sock(SOCK_DGRAM);
	struct sockaddr_un ra;
	socklen_t rlen = mkaddr(&ra, rname);
	if (sendto(s1, "one", 3, 0, (struct sockaddr *)&ra, rlen) != 3 || sendto(s3, "two", 3, 0, (struct sockaddr *)&ra, rlen) != 3)
		wl_die("sendto: %s", strerror(errno));
	put(s2, 3000, 31);
	if (sendto(s1, "four", 4, 0, (struct sockaddr *)&ra, rlen) != 4)
		wl_die("sendto: %s", strerror(errno));
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (wl_corrupt)
		put_str(s2, "extra");
	expect_from(r, "one", 0, 0, s1path, 0);
	expect_from(r, "two", 0, 0, "", 0);
	expect_from(r, NULL, 3000, 31, s2name, 0);
	expect_from(r, "four", 0, 0, s1path, 0);
	expect_empty("receiver", r);
	struct sockaddr_un peer;
	socklen_t plen = sizeof peer;
	CHECK(getpeername(s2, (struct sockaddr *)&peer, &plen) == 0 && plen == rlen && memcmp(&peer, &ra, rlen) == 0,
	      "connected sender: not connected to the receiver");
	put_str(s2, "after");
	expect_from(r, "after", 0, 0, s2name, 0);
	struct sockaddr_un s1a;
	socklen_t s1len = mkaddr(&s1a, s1path);
	CHECK(sendto(r, "reply", 5, 0, (struct sockaddr *)&s1a, s1len) == 5, "reply: %s", strerror(errno));
	expect_str("reply to the path sender", s1, "reply");
	unlink(s1path);
}

static void ext(int type, int passcred)
{
	int r = sock(type), a;
	bind_to(r, "ext.sock");
	if (passcred && setsockopt(r, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)))
		wl_die("SO_PASSCRED: %s", strerror(errno));
	if (type == SOCK_STREAM && listen(r, 4))
		wl_die("listen: %s", strerror(errno));
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	a = type == SOCK_STREAM ? accept_now("listener", r) : r;
	if (a >= 0)
		expect_str("from outside", a, "outside");
	unlink("ext.sock");
}

static void scm_eventfd(void)
{
	int d[2], e = eventfd(5, 0), fds[1];
	uint64_t v = 0;
	if (e < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, d))
		wl_die("eventfd/socketpair: %s", strerror(errno));
	send_fds(d[0], "efd", &e, 1);
	close(e);
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (recv_fds("eventfd in flight", d[1], 64, "efd", fds, 1))
		CHECK(read(fds[0], &v, sizeof v) == sizeof v && v == 5, "eventfd in flight: counter %llu, want 5", (unsigned long long)v);
}

static void scm_big_ghost(void)
{
	int d[2], f = open("big", O_RDWR | O_CREAT | O_TRUNC, 0600), fds[1];
	off_t size = (64 << 20) + 1;
	struct stat st;
	if (f < 0 || ftruncate(f, size) || unlink("big") || socketpair(AF_UNIX, SOCK_DGRAM, 0, d))
		wl_die("big deleted file/socketpair: %s", strerror(errno));
	send_fds(d[0], "big", &f, 1);
	close(f);
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	if (recv_fds("deleted file in flight", d[1], 64, "big", fds, 1))
		CHECK(fstat(fds[0], &st) == 0 && st.st_size == size, "deleted file in flight: %lld bytes, want %lld", (long long)st.st_size, (long long)size);
}

static void backlog_eventfd(void)
{
	char lname[64];
	int l, c[2], a, e = eventfd(5, 0), fds[1];
	uint64_t v = 0;
	if (e < 0)
		wl_die("eventfd: %s", strerror(errno));
	snprintf(lname, sizeof lname, "@cryo-wl-backlog-efd-%d", (int)getpid());
	/* Non-blocking: a lost connection fails the checks, not hangs them. */
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (l < 0)
		wl_die("socket: %s", strerror(errno));
	bind_to(l, lname);
	if (listen(l, 8))
		wl_die("listen: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		c[i] = sock(SOCK_STREAM);
		connect_to(c[i], lname);
	}
	send_fds(c[0], "efd", &e, 1);
	close(e);
	put_str(c[1], "two");
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	a = accept_now("first client", l);
	if (recv_fds("first client", a, 64, "efd", fds, 1))
		CHECK(read(fds[0], &v, sizeof v) == sizeof v && v == 5, "eventfd in flight: counter %llu, want 5", (unsigned long long)v);
	both_ways("first client", c[0], a);
	a = accept_now("second client", l);
	expect_str("second client", a, "two");
	both_ways("second client", c[1], a);
	CHECK(accept(l, NULL, NULL) < 0 && errno == EAGAIN, "more connections in the backlog than were made");
}

static void tcp_backlog(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) || listen(l, 4) || getsockname(l, (struct sockaddr *)&sa, &len) ||
	    connect(c, (struct sockaddr *)&sa, sizeof sa))
		wl_die("tcp: %s", strerror(errno));
	put_str(c, "x");
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	int a = accept(l, NULL, NULL);
	CHECK(a >= 0, "accept: %s", strerror(errno));
	if (a >= 0) {
		char got;
		CHECK(recv(a, &got, 1, 0) == 1 && got == 'x', "the waiting connection's byte differs");
		put_str(a, "y");
		CHECK(recv(c, &got, 1, 0) == 1 && got == 'y', "no byte back to the client");
	}
}

/* A listener bound to a path, made first (lowest descriptor), and a
 * connection it accepted, both ends held by the process, "x" queued
 * towards the accepted end. After SIGTERM: the accepted end is named by
 * the listener's path, the pair carries bytes both ways, and the listener
 * is still reached through its path by a new client. Mode "accepted":
 * an absolute path; mode "relative": the name "rel.sock", bound in the
 * working directory (a restore from elsewhere must bind it there again). */
static void accepted(int relative)
{
	char path[PATH_MAX], got[sizeof(struct sockaddr_un)];
	struct sockaddr_un *sa = (struct sockaddr_un *)got;
	socklen_t len = sizeof(got);
	struct stat st;
	if (relative) {
		strcpy(path, "rel.sock");
	} else {
		if (!getcwd(path, sizeof(path) - 16))
			wl_die("getcwd: %s", strerror(errno));
		strcat(path, "/acc.sock");
	}
	int l = sock(SOCK_STREAM), c = sock(SOCK_STREAM), a;
	bind_to(l, path);
	if (listen(l, 4))
		wl_die("listen: %s", strerror(errno));
	connect_to(c, path);
	if ((a = accept(l, NULL, NULL)) < 0)
		wl_die("accept: %s", strerror(errno));
	put_str(c, "x");
	wl_ready();
	wl_wait_stop();
	wl_check_ids(0);
	CHECK(getsockname(a, (struct sockaddr *)sa, &len) == 0 && strcmp(sa->sun_path, path) == 0,
	      "the accepted end is named \"%s\", want the listener's %s", sa->sun_path, path);
	len = sizeof(got);
	CHECK(getsockname(l, (struct sockaddr *)sa, &len) == 0 && strcmp(sa->sun_path, path) == 0,
	      "the listener is named \"%s\", want %s", sa->sun_path, path);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode), "no socket file at %s in the working directory", path);
	expect_str("accepted end", a, "x");
	both_ways("accepted connection", c, a);
	int n = sock(SOCK_STREAM), b;
	struct sockaddr_un nsa;
	socklen_t nlen = mkaddr(&nsa, path);
	CHECK(connect(n, (struct sockaddr *)&nsa, nlen) == 0, "a new client cannot reach the listener at %s: %s", path,
	      strerror(errno));
	b = accept(l, NULL, NULL);
	CHECK(b >= 0, "accept of the new client: %s", strerror(errno));
	if (b >= 0)
		both_ways("new connection", n, b);
}

static void tree(void)
{
	char rname[64], lname[64], aname[64];
	int r, l, p[2];
	pid_t a;
	/* The PID and the clock: the tree may be pid 1 of a pid namespace of
	 * its own, and abstract names belong to the network namespace. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	snprintf(rname, sizeof rname, "@cryo-wl-tree-r-%d-%ld", (int)getpid(), now.tv_nsec);
	snprintf(lname, sizeof lname, "@cryo-wl-tree-l-%d-%ld", (int)getpid(), now.tv_nsec);
	snprintf(aname, sizeof aname, "@cryo-wl-tree-a-%d-%ld", (int)getpid(), now.tv_nsec);
	wl_exp_pid = getpid();
	wl_clear_marks();
	r = sock(SOCK_DGRAM);
	bind_to(r, rname);
	/* The root wants its datagrams' senders' credentials. */
	if (setsockopt(r, SOL_SOCKET, SO_PASSCRED, &(int){1}, sizeof(int)))
		wl_die("SO_PASSCRED: %s", strerror(errno));
	l = sock(SOCK_STREAM);
	bind_to(l, lname);
	if (listen(l, 4) || socketpair(AF_UNIX, SOCK_DGRAM, 0, p))
		wl_die("listen/socketpair: %s", strerror(errno));
	int shared = sock(SOCK_STREAM);
	connect_to(shared, lname);
	put_str(shared, "shared");
	if ((a = wl_fork("A")) == 0) {
		int sa = sock(SOCK_DGRAM), ca = sock(SOCK_STREAM), f, ap[2];
		struct sockaddr_un ra;
		socklen_t rlen = mkaddr(&ra, rname);
		close(r);
		close(l);
		close(p[1]);
		bind_to(sa, aname);
		if (sendto(sa, "from-A", 6, 0, (struct sockaddr *)&ra, rlen) != 6)
			wl_die("sendto: %s", strerror(errno));
		connect_to(ca, lname);
		put_str(ca, "hello from A");
		f = open("tree-file", O_RDWR | O_CREAT | O_TRUNC, 0600);
		wl_fill(buf, sizeof buf, 41);
		if (f < 0 || write(f, buf, sizeof buf) != sizeof buf || pipe(ap))
			wl_die("file/pipe: %s", strerror(errno));
		lseek(f, 77, SEEK_SET);
		send_fds(p[0], "fd", (int[]){f, ap[1]}, 2);
		close(f);
		close(ap[1]);
		wl_tree_line();
		wl_mark("A");
		wl_tree_wait_stop();
		wl_tree_check_ids();
		if (wl_await_mark("root.done", 5000)) {
			char got[16];
			CHECK(read(ap[0], got, sizeof got) == 8 && memcmp(got, "via-pipe", 8) == 0, "A: the root's bytes did not come through the pipe");
			expect_str("A: answer on its connection", ca, "welcome");
			expect_str("A: answer on the shared connection", shared, "to-shared");
			expect_str("A: reply to its datagram", sa, "reply");
		}
		wl_child_exit();
	}
	close(p[0]);
	wl_wait_mark("A");
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();
	if (kill(a, SIGTERM))
		wl_fail("root: kill(A %d): %s", (int)a, strerror(errno));
	wl_check_ids(0);
	wl_tree_check_ids();
	if (wl_corrupt)
		recv(r, buf, sizeof buf, MSG_DONTWAIT);
	expect_from(r, "from-A", 0, 0, aname, a);
	struct sockaddr_un aa;
	socklen_t alen = mkaddr(&aa, aname);
	CHECK(sendto(r, "reply", 5, 0, (struct sockaddr *)&aa, alen) == 5, "root: reply: %s", strerror(errno));
	fcntl(l, F_SETFL, O_NONBLOCK);
	int c = accept_now("root: listener", l);
	if (c >= 0) {
		struct ucred cr;
		socklen_t len = sizeof cr;
		CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == getpid(),
		      "root: shared client: SO_PEERCRED pid %d, want the root's %d", (int)cr.pid, (int)getpid());
		expect_str("root: shared connection", c, "shared");
		put_str(c, "to-shared");
	}
	c = accept_now("root: listener", l);
	if (c >= 0) {
		struct ucred cr;
		socklen_t len = sizeof cr;
		CHECK(getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid == a, "root: SO_PEERCRED pid %d, want A's %d",
		      (int)cr.pid, (int)a);
		expect_str("root: A's connection", c, "hello from A");
		put_str(c, "welcome");
	}
	int fds[2];
	if (recv_fds("root: descriptors from A", p[1], 64, "fd", fds, 2)) {
		char got[16];
		wl_fill(buf, sizeof buf, 41);
		CHECK(lseek(fds[0], 0, SEEK_CUR) == 77 && read(fds[0], got, sizeof got) == sizeof got && memcmp(got, buf + 77, sizeof got) == 0,
		      "root: A's file: offset or content differs");
		CHECK(write(fds[1], "via-pipe", 8) == 8, "root: write to A's pipe: %s", strerror(errno));
	}
	wl_mark("root.done");
	wl_reap_ok(a, "A");
	unlink("tree-file");
	wl_check_no_children();
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (strcmp(wl_mode, "backlog") == 0)
		backlog();
	else if (strcmp(wl_mode, "scm") == 0)
		scm();
	else if (strcmp(wl_mode, "dgram") == 0)
		dgram();
	else if (strcmp(wl_mode, "ext-dgram") == 0)
		ext(SOCK_DGRAM, 0);
	else if (strcmp(wl_mode, "ext-cred") == 0)
		ext(SOCK_DGRAM, 1);
	else if (strcmp(wl_mode, "ext-stream") == 0)
		ext(SOCK_STREAM, 0);
	else if (strcmp(wl_mode, "scm-eventfd") == 0)
		scm_eventfd();
	else if (strcmp(wl_mode, "scm-big-ghost") == 0)
		scm_big_ghost();
	else if (strcmp(wl_mode, "backlog-eventfd") == 0)
		backlog_eventfd();
	else if (strcmp(wl_mode, "tcp-backlog") == 0)
		tcp_backlog();
	else if (strcmp(wl_mode, "tree") == 0)
		tree();
	else if (strcmp(wl_mode, "accepted") == 0)
		accepted(0);
	else if (strcmp(wl_mode, "relative") == 0)
		accepted(1);
	else
		wl_usage();
	return wl_finish();
}
