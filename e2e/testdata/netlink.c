/*
 * netlink: netlink sockets across a checkpoint, as a browser's network
 * link monitor holds them.
 *
 * Before its own net namespace, the process makes socket A (NETLINK_ROUTE,
 * SOCK_RAW) in the net namespace it was started in (the test's, cryo's),
 * and sends an rtnetlink link dump request on it, which binds it to a port
 * the kernel picks; it reads the whole answer. Then it unshares its net
 * namespace (the loopback stays down) and makes there:
 *   - socket B (NETLINK_ROUTE, SOCK_DGRAM, O_NONBLOCK), bound to the link
 *     group (RTMGRP_LINK) and joined to group 33 (above the first 32, which
 *     bind cannot name), with NETLINK_EXT_ACK on and SO_RCVBUF set;
 *   - socket C (NETLINK_KOBJECT_UEVENT), bound to a port of its choosing
 *     (no group: uevents of the host would reach it while it is dumped).
 * It records each socket's port, groups (NETLINK_LIST_MEMBERSHIPS) and
 * type, prints READY and waits for SIGTERM.
 *
 * After SIGTERM it checks that each socket has the same port, groups,
 * type and options, that B and C are in the process's net namespace and
 * A is not; then that they work: it brings its loopback up and B receives
 * the RTM_NEWLINK event of it; a link dump on B lists the one loopback of
 * its namespace; a link dump on A is answered to A's port.
 *
 * Mode "queued": the answer to a link dump request waits unread on A while
 * the tree is dumped (the dump refuses it); it is read after SIGTERM.
 */
#include "wl.h"
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#define C_PORT 0x43525901u
#define HIGH_GROUP 33
#define RCVBUF 65536

struct nl {
	const char *name;
	int fd, type;
	uint32_t port;
	uint32_t groups[4];
	socklen_t glen;
};

static void record(struct nl *s)
{
	struct sockaddr_nl a;
	socklen_t len = sizeof(a);
	if (getsockname(s->fd, (struct sockaddr *)&a, &len) < 0)
		wl_die("%s: getsockname: %s", s->name, strerror(errno));
	s->port = a.nl_pid;
	s->glen = sizeof(s->groups);
	memset(s->groups, 0, sizeof(s->groups));
	if (getsockopt(s->fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, s->groups, &s->glen) < 0)
		wl_die("%s: NETLINK_LIST_MEMBERSHIPS: %s", s->name, strerror(errno));
	wl_info("%s: port %u groups %#x %#x", s->name, s->port, s->groups[0], s->groups[1]);
}

static void check_same(struct nl *s)
{
	struct nl now = *s;
	struct sockaddr_nl a;
	socklen_t len = sizeof(a);
	CHECK(getsockname(s->fd, (struct sockaddr *)&a, &len) == 0 && a.nl_family == AF_NETLINK, "%s: getsockname: %s", s->name,
	      strerror(errno));
	CHECK(a.nl_pid == s->port, "%s: port %u, was %u", s->name, a.nl_pid, s->port);
	now.glen = sizeof(now.groups);
	memset(now.groups, 0, sizeof(now.groups));
	CHECK(getsockopt(s->fd, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, now.groups, &now.glen) == 0, "%s: memberships: %s",
	      s->name, strerror(errno));
	for (int i = 0; i < 4; i++)
		CHECK(now.groups[i] == s->groups[i], "%s: group word %d is %#x, was %#x", s->name, i, now.groups[i], s->groups[i]);
	int type = 0;
	len = sizeof(type);
	CHECK(getsockopt(s->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == s->type, "%s: type %d, was %d", s->name, type,
	      s->type);
}

static ino_t sock_ns(int fd)
{
	int ns = ioctl(fd, SIOCGSKNS);
	struct stat st;
	if (ns < 0 || fstat(ns, &st) < 0)
		return 0;
	close(ns);
	return st.st_ino;
}

/* Sends a link dump request on fd. */
static void send_dump(int fd, const char *who)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = {{sizeof(req), RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, 42, 0}, {.ifi_family = AF_UNSPEC}};
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	if (sendto(fd, &req, sizeof(req), 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		wl_fail("%s: link dump request: %s", who, strerror(errno));
}

/* Reads the answer to a link dump request on fd; returns the number of
 * links in it (-1 on error), whose messages must all be for port. */
static int read_dump(int fd, uint32_t port, const char *who, int want_lo_only)
{
	static char buf[1 << 16];
	int links = 0;
	for (;;) {
		if (!wl_readable(fd, 10000)) {
			wl_fail("%s: no answer to the link dump within 10 s", who);
			return -1;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			wl_fail("%s: recv: %s", who, strerror(errno));
			return -1;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != 42)
				continue; /* an event, not the answer */
			if (port)
				CHECK(h->nlmsg_pid == port, "%s: answer for port %u, not %u", who, h->nlmsg_pid, port);
			if (h->nlmsg_type == NLMSG_DONE)
				return links;
			if (h->nlmsg_type == NLMSG_ERROR) {
				wl_fail("%s: link dump: error %d", who, ((struct nlmsgerr *)NLMSG_DATA(h))->error);
				return -1;
			}
			if (h->nlmsg_type == RTM_NEWLINK) {
				links++;
				if (want_lo_only) {
					struct ifinfomsg *ifi = NLMSG_DATA(h);
					CHECK(ifi->ifi_flags & IFF_LOOPBACK, "%s: a link other than the loopback (index %d)", who,
					      ifi->ifi_index);
				}
			}
		}
	}
}

static int dump_links(int fd, uint32_t port, const char *who, int want_lo_only)
{
	send_dump(fd, who);
	return read_dump(fd, port, who, want_lo_only);
}

/* Waits for an RTM_NEWLINK event of the loopback, up, on fd. */
static void wait_lo_event(int fd)
{
	static char buf[1 << 16];
	for (;;) {
		if (!wl_readable(fd, 10000)) {
			wl_fail("B: no RTM_NEWLINK event within 10 s of the loopback going up");
			return;
		}
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0) {
			wl_fail("B: recv event: %s", strerror(errno));
			return;
		}
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			struct ifinfomsg *ifi = NLMSG_DATA(h);
			if (h->nlmsg_type == RTM_NEWLINK && (ifi->ifi_flags & IFF_LOOPBACK) && (ifi->ifi_flags & IFF_UP)) {
				CHECK(h->nlmsg_pid == 0, "B: event from port %u, not the kernel", h->nlmsg_pid);
				return;
			}
		}
	}
}

static int nl_socket(int type, int protocol, const char *who)
{
	int fd = socket(AF_NETLINK, type | SOCK_CLOEXEC, protocol);
	if (fd < 0)
		wl_die("%s: socket: %s", who, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	struct nl a = {.name = "A", .fd = nl_socket(SOCK_RAW, NETLINK_ROUTE, "A"), .type = SOCK_RAW};
	if (dump_links(a.fd, 0, "A (before)", 0) < 1)
		wl_die("A: no link in the first dump");
	record(&a);
	if (unshare(CLONE_NEWNET) < 0)
		wl_die("unshare(CLONE_NEWNET): %s", strerror(errno));
	struct nl b = {.name = "B", .fd = nl_socket(SOCK_DGRAM | SOCK_NONBLOCK, NETLINK_ROUTE, "B"), .type = SOCK_DGRAM};
	struct sockaddr_nl sa = {.nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK};
	if (bind(b.fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		wl_die("B: bind: %s", strerror(errno));
	int one = 1, group = HIGH_GROUP, rcvbuf = RCVBUF;
	if (setsockopt(b.fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)) < 0)
		wl_die("B: join group %d: %s", group, strerror(errno));
	if (setsockopt(b.fd, SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof(one)) < 0)
		wl_die("B: NETLINK_EXT_ACK: %s", strerror(errno));
	if (setsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)) < 0)
		wl_die("B: SO_RCVBUF: %s", strerror(errno));
	record(&b);
	struct nl c = {.name = "C", .fd = nl_socket(SOCK_RAW, NETLINK_KOBJECT_UEVENT, "C"), .type = SOCK_RAW};
	struct sockaddr_nl ca = {.nl_family = AF_NETLINK, .nl_pid = C_PORT};
	if (bind(c.fd, (struct sockaddr *)&ca, sizeof(ca)) < 0)
		wl_die("C: bind: %s", strerror(errno));
	record(&c);
	int rcvbuf_was = 0;
	socklen_t len = sizeof(rcvbuf_was);
	getsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_was, &len);

	/* Mode "queued": an answer waits unread on A, which the dump refuses
	 * to lose; the process reads it after SIGTERM. */
	int queued = strcmp(wl_mode, "queued") == 0;
	if (queued)
		send_dump(a.fd, "A (left unread)");
	printf("READY pid=%d tids=%d\n", wl_pid, wl_pid);
	fflush(stdout);
	while (!wl_stop)
		pause();
	if (wl_corrupt)
		setsockopt(b.fd, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &group, sizeof(group));

	if (queued)
		CHECK(read_dump(a.fd, a.port, "A (left unread)", 0) >= 1, "A: the answer left unread lists no link");
	check_same(&a);
	check_same(&b);
	check_same(&c);
	CHECK(c.port == C_PORT, "C: port %u, bound %u", c.port, C_PORT);
	CHECK(b.groups[0] == RTMGRP_LINK && b.groups[1] == 1u,
	      "B: groups %#x %#x, want %#x %#x", b.groups[0], b.groups[1], RTMGRP_LINK, 1u);
	int v = 0;
	len = sizeof(v);
	CHECK(getsockopt(b.fd, SOL_NETLINK, NETLINK_EXT_ACK, &v, &len) == 0 && v == 1, "B: NETLINK_EXT_ACK is %d", v);
	len = sizeof(v);
	CHECK(getsockopt(b.fd, SOL_SOCKET, SO_RCVBUF, &v, &len) == 0 && v == rcvbuf_was, "B: SO_RCVBUF %d, was %d", v, rcvbuf_was);
	CHECK(fcntl(b.fd, F_GETFL) & O_NONBLOCK, "B: not O_NONBLOCK");
	CHECK(!(fcntl(a.fd, F_GETFL) & O_NONBLOCK), "A: O_NONBLOCK");

	struct stat own;
	if (stat("/proc/self/ns/net", &own) < 0)
		wl_die("stat /proc/self/ns/net: %s", strerror(errno));
	CHECK(sock_ns(b.fd) == own.st_ino, "B: in net namespace %lu, the process in %lu", (unsigned long)sock_ns(b.fd),
	      (unsigned long)own.st_ino);
	CHECK(sock_ns(c.fd) == own.st_ino, "C: in net namespace %lu, the process in %lu", (unsigned long)sock_ns(c.fd),
	      (unsigned long)own.st_ino);
	CHECK(sock_ns(a.fd) != own.st_ino, "A: in the process's net namespace, not the one it was made in");

	/* B hears of its loopback going up, and lists it alone. */
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct ifreq ifr = {0};
	strcpy(ifr.ifr_name, "lo");
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		wl_die("SIOCGIFFLAGS lo: %s", strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		wl_die("SIOCSIFFLAGS lo up: %s", strerror(errno));
	close(s);
	wait_lo_event(b.fd);
	CHECK(dump_links(b.fd, b.port, "B", 1) == 1, "B: the link dump of its namespace does not list one link");
	CHECK(dump_links(a.fd, a.port, "A", 0) >= 1, "A: the link dump lists no link");

	return wl_finish();
}
