/*
 * netns: a process in a net namespace of its own, as `unshare -n` and
 * sandboxes make them, across a checkpoint.
 *
 * The process unshares its net namespace itself (the test starts it in a
 * user namespace for a rootless run), then:
 *   - mode "up": brings the loopback up with MTU 16000 and adds 127.0.0.2/8
 *     labelled lo:1; sets net.core.somaxconn 511, net.unix.max_dgram_qlen
 *     77, net.ipv4.ping_group_range "0 0" and net.ipv4.conf.lo.arp_announce
 *     2; listens on TCP 127.0.0.2:7011, binds UDP 127.0.0.2:7012 and listens
 *     on the abstract Unix name "cryo-netns-test";
 *   - mode "down": the loopback stays down, MTU 1280; the abstract Unix
 *     listener only (Unix sockets need no link); somaxconn 300;
 *   - mode "two": as "up", and a child makes a second namespace with the
 *     loopback up and 127.0.0.3/8, and listens on the same abstract name
 *     and the same TCP port (on 127.0.0.3): names are per namespace, so
 *     both can only come back each in its own. The child also holds the
 *     root's sockets (inherited), which it checks are the root's.
 *
 * After SIGTERM each process checks its namespace from inside: the
 * loopback's state and MTU, its addresses (getifaddrs), the settings; then
 * that its sockets work: a fresh client connects to the TCP listener and
 * to the abstract name and exchanges a byte with what it accepted, and a
 * datagram reaches the UDP socket. Each prints "INFO: WHO pid=PID
 * netns=INODE" before READY.
 */
#include "wl.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/un.h>
#include <sys/wait.h>

#define ABSTRACT "cryo-netns-test"
#define TCP_PORT 7011
#define UDP_PORT 7012

struct setting {
	const char *path, *value;
};

static const struct setting up_settings[] = {
	{"/proc/sys/net/core/somaxconn", "511"},
	{"/proc/sys/net/unix/max_dgram_qlen", "77"},
	{"/proc/sys/net/ipv4/ping_group_range", "0\t0"},
	{"/proc/sys/net/ipv4/conf/lo/arp_announce", "2"},
	{NULL, NULL},
};
static const struct setting down_settings[] = {
	{"/proc/sys/net/core/somaxconn", "300"},
	{NULL, NULL},
};

static void set_file(const char *path, const char *value)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		wl_die("write %s: %s", path, strerror(errno));
	close(fd);
}

static void check_settings(const struct setting *s)
{
	char buf[256];
	for (; s->path; s++) {
		if (wl_read_file(s->path, buf, sizeof(buf)) < 0) {
			wl_fail("read %s: %s", s->path, strerror(errno));
			continue;
		}
		buf[strcspn(buf, "\n")] = 0;
		CHECK(strcmp(buf, s->value) == 0, "%s is %s, want %s", s->path, buf, s->value);
	}
}

static void ifreq_call(unsigned long req, struct ifreq *ifr, const char *what)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, req, ifr) < 0)
		wl_die("%s: %s", what, strerror(errno));
	close(s);
}

/* set_lo gives the loopback its state and MTU, and address addr (if any)
 * as the alias lo:1. */
static void set_lo(int up, int mtu, const char *addr)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_mtu = mtu;
	ifreq_call(SIOCSIFMTU, &ifr, "set lo MTU");
	if (up) {
		ifreq_call(SIOCGIFFLAGS, &ifr, "lo flags");
		ifr.ifr_flags |= IFF_UP;
		ifreq_call(SIOCSIFFLAGS, &ifr, "lo up");
	}
	if (addr) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
		memset(&ifr, 0, sizeof(ifr));
		strcpy(ifr.ifr_name, "lo:1");
		sin->sin_family = AF_INET;
		inet_pton(AF_INET, addr, &sin->sin_addr);
		ifreq_call(SIOCSIFADDR, &ifr, "add address");
	}
}

static void check_lo(int up, int mtu, const char *addr)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	ifreq_call(SIOCGIFFLAGS, &ifr, "lo flags");
	CHECK(!!(ifr.ifr_flags & IFF_UP) == up, "lo is %s, want %s", ifr.ifr_flags & IFF_UP ? "up" : "down", up ? "up" : "down");
	ifreq_call(SIOCGIFMTU, &ifr, "lo MTU");
	CHECK(ifr.ifr_mtu == mtu, "lo MTU %d, want %d", ifr.ifr_mtu, mtu);
	if (!addr)
		return;
	struct ifaddrs *ifa, *i;
	int found = 0;
	if (getifaddrs(&ifa) < 0) {
		wl_fail("getifaddrs: %s", strerror(errno));
		return;
	}
	for (i = ifa; i; i = i->ifa_next) {
		char s[INET_ADDRSTRLEN];
		if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
			continue;
		inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, s, sizeof(s));
		if (strcmp(s, addr) == 0) {
			found = 1;
			CHECK(strcmp(i->ifa_name, "lo:1") == 0, "%s has label %s, want lo:1", addr, i->ifa_name);
		}
	}
	freeifaddrs(ifa);
	CHECK(found, "address %s is not in the namespace", addr);
}

static socklen_t abstract_addr(struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path + 1, ABSTRACT, strlen(ABSTRACT));
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(ABSTRACT));
}

static struct sockaddr_in inet_addr4(const char *addr, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
	inet_pton(AF_INET, addr, &sin.sin_addr);
	return sin;
}

struct socks {
	int tcp, udp, ux;
};

static struct socks make_socks(const char *addr, int inet)
{
	struct socks s = {-1, -1, -1};
	struct sockaddr_un sun;
	socklen_t len = abstract_addr(&sun);
	s.ux = socket(AF_UNIX, SOCK_STREAM, 0);
	if (s.ux < 0 || bind(s.ux, (struct sockaddr *)&sun, len) < 0 || listen(s.ux, 8) < 0)
		wl_die("abstract listener: %s", strerror(errno));
	if (!inet)
		return s;
	struct sockaddr_in sin = inet_addr4(addr, TCP_PORT);
	s.tcp = socket(AF_INET, SOCK_STREAM, 0);
	if (s.tcp < 0 || bind(s.tcp, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s.tcp, 8) < 0)
		wl_die("TCP listener on %s: %s", addr, strerror(errno));
	sin = inet_addr4(addr, UDP_PORT);
	s.udp = socket(AF_INET, SOCK_DGRAM, 0);
	if (s.udp < 0 || bind(s.udp, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		wl_die("UDP socket on %s: %s", addr, strerror(errno));
	return s;
}

/* exchange connects a fresh client of family fam to sa, accepts it on
 * listener l, and sends a byte each way. */
static void exchange(const char *what, int l, int fam, struct sockaddr *sa, socklen_t len)
{
	int c = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0), a;
	char b = 'x';
	if (c < 0 || connect(c, sa, len) < 0) {
		wl_fail("%s: connect: %s", what, strerror(errno));
		if (c >= 0)
			close(c);
		return;
	}
	if (!wl_readable(l, 5000) || (a = accept4(l, NULL, NULL, SOCK_CLOEXEC)) < 0) {
		wl_fail("%s: accept: %s", what, strerror(errno));
		close(c);
		return;
	}
	if (write(c, "c", 1) != 1 || !wl_readable(a, 5000) || read(a, &b, 1) != 1 || b != 'c' ||
	    write(a, "a", 1) != 1 || !wl_readable(c, 5000) || read(c, &b, 1) != 1 || b != 'a')
		wl_fail("%s: no byte each way", what);
	close(a);
	close(c);
}

static void check_socks(struct socks *s, const char *addr)
{
	struct sockaddr_un sun;
	socklen_t len = abstract_addr(&sun);
	exchange("abstract Unix listener", s->ux, AF_UNIX, (struct sockaddr *)&sun, len);
	if (s->tcp < 0)
		return;
	struct sockaddr_in sin = inet_addr4(addr, TCP_PORT);
	exchange("TCP listener", s->tcp, AF_INET, (struct sockaddr *)&sin, sizeof(sin));
	sin = inet_addr4(addr, UDP_PORT);
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char b = 0;
	if (c < 0 || sendto(c, "u", 1, 0, (struct sockaddr *)&sin, sizeof(sin)) != 1 || !wl_readable(s->udp, 5000) ||
	    recv(s->udp, &b, 1, 0) != 1 || b != 'u')
		wl_fail("UDP socket on %s: no datagram (%s)", addr, strerror(errno));
	if (c >= 0)
		close(c);
}

static void print_ns(const char *who)
{
	struct stat st;
	if (stat("/proc/self/ns/net", &st) == 0)
		wl_info("%s pid=%d netns=%lu", who, (int)getpid(), (unsigned long)st.st_ino);
}

static void new_net(void)
{
	if (unshare(CLONE_NEWNET) < 0)
		wl_die("unshare(CLONE_NEWNET): %s", strerror(errno));
}

int main(int argc, char **argv)
{
	int up, mtu;
	const char *addr;
	const struct setting *settings;
	pid_t child = -1;
	int pipefd[2];

	wl_init(argc, argv);
	int two = strcmp(wl_mode, "two") == 0;
	if (strcmp(wl_mode, "up") == 0 || two) {
		up = 1, mtu = 16000, addr = "127.0.0.2", settings = up_settings;
	} else if (strcmp(wl_mode, "down") == 0) {
		up = 0, mtu = 1280, addr = NULL, settings = down_settings;
	} else {
		wl_die("mode must be up, down or two");
	}
	new_net();
	set_lo(up, mtu, addr);
	for (const struct setting *s = settings; s->path; s++)
		set_file(s->path, s->value);
	struct socks s = make_socks(addr, up);
	print_ns("root");
	if (two) {
		if (pipe2(pipefd, O_CLOEXEC) < 0)
			wl_die("pipe: %s", strerror(errno));
		child = fork();
		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			close(pipefd[0]);
			new_net();
			set_lo(1, 65536, "127.0.0.3");
			struct socks cs = make_socks("127.0.0.3", 1);
			print_ns("child");
			close(pipefd[1]);
			while (!wl_stop)
				pause();
			check_lo(1, 65536, "127.0.0.3");
			check_socks(&cs, "127.0.0.3");
			/* The root's sockets, inherited: still the root's. */
			struct sockaddr_in sin;
			socklen_t len = sizeof(sin);
			CHECK(getsockname(s.tcp, (struct sockaddr *)&sin, &len) == 0 && sin.sin_port == htons(TCP_PORT) &&
				      sin.sin_addr.s_addr == inet_addr4("127.0.0.2", 0).sin_addr.s_addr,
			      "inherited TCP listener is not on 127.0.0.2:%d", TCP_PORT);
			_exit(atomic_load(&wl_fails) ? 1 : 0);
		}
		close(pipefd[1]);
		char c;
		if (read(pipefd[0], &c, 1) != 0)
			wl_die("child setup");
		close(pipefd[0]);
	}
	printf("READY pid=%d tids=%d\n", wl_pid, wl_pid);
	fflush(stdout);
	while (!wl_stop)
		pause();
	if (wl_corrupt)
		set_file("/proc/sys/net/core/somaxconn", "100");
	check_lo(up, mtu, addr);
	check_settings(settings);
	check_socks(&s, addr);
	if (child > 0) {
		int st;
		kill(child, SIGTERM);
		if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			wl_fail("child: status %#x", st);
	}
	if (atomic_load(&wl_fails))
		return 1;
	printf("PASS\n");
	return 0;
}
