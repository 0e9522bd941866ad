/*
 * netns_veth: two processes in two net namespaces joined by a veth pair,
 * as `ip netns` setups make them, with a TCP connection over it, across a
 * checkpoint with --tcp-established.
 *
 *   root  ns A: lo up, veth "va" 10.77.0.1/24 up, accept_local set on va;
 *   |           listens on 10.77.0.1:7100
 *   +-- child  ns B: veth "vb" 10.77.0.2/24 up, MTU 1400, a route to
 *              10.99.0.0/24 via 10.77.0.1; connected to the root's
 *              listener
 *
 * The pair is made by the root with iproute2 (ip link add ... netns
 * CHILD), the rest by each process in its own namespace. Before READY a
 * byte goes each way, and one more each way is left unread (in flight).
 *
 * Mode "listen": no connection before READY (the rootless harness dumps
 * without --tcp-established); only the fresh one after.
 *
 * After SIGTERM each process checks from inside its namespace, with
 * iproute2, that its veth is up with its address (and the child its MTU
 * and route) and its setting; reads the byte left in flight; sends one
 * more each way; and the child connects afresh to the root's listener.
 */
#include "wl.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>

#define PORT 7100

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	int st = system(cmd);
	if (st != 0)
		wl_die("%s: status %#x", cmd, st);
}

/* out_has runs cmd and checks its output contains want. */
static void out_has(const char *cmd, const char *want)
{
	char buf[4096];
	size_t n = 0;
	FILE *f = popen(cmd, "r");
	if (!f) {
		wl_fail("%s: %s", cmd, strerror(errno));
		return;
	}
	while (n + 1 < sizeof(buf)) {
		size_t r = fread(buf + n, 1, sizeof(buf) - 1 - n, f);
		if (r == 0)
			break;
		n += r;
	}
	buf[n] = 0;
	pclose(f);
	CHECK(strstr(buf, want) != NULL, "%s: no %s in: %s", cmd, want, buf);
}

static void check_setting(const char *path, const char *want)
{
	char buf[64];
	if (wl_read_file(path, buf, sizeof(buf)) < 0) {
		wl_fail("%s: %s", path, strerror(errno));
		return;
	}
	buf[strcspn(buf, "\n")] = 0;
	CHECK(strcmp(buf, want) == 0, "%s is %s, want %s", path, buf, want);
}

static struct sockaddr_in server_addr(void)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(PORT)};
	inet_pton(AF_INET, "10.77.0.1", &sin.sin_addr);
	return sin;
}

static void xchg(int fd, char send, char recvd, const char *who)
{
	char b = 0;
	if (!wl_readable(fd, 5000) || read(fd, &b, 1) != 1 || b != recvd)
		wl_fail("%s: read %c, want %c (%s)", who, b, recvd, strerror(errno));
	if (write(fd, &send, 1) != 1)
		wl_fail("%s: write: %s", who, strerror(errno));
}

int main(int argc, char **argv)
{
	int to_child[2], to_root[2];
	char c;

	wl_init(argc, argv);
	int conn = strcmp(wl_mode, "listen") != 0;
	if (unshare(CLONE_NEWNET) < 0)
		wl_die("unshare: %s", strerror(errno));
	if (pipe2(to_child, O_CLOEXEC) < 0 || pipe2(to_root, O_CLOEXEC) < 0)
		wl_die("pipe: %s", strerror(errno));
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	pid_t child = fork();
	if (child < 0)
		wl_die("fork: %s", strerror(errno));
	if (child == 0) {
		close(l);
		if (unshare(CLONE_NEWNET) < 0)
			wl_die("child unshare: %s", strerror(errno));
		if (write(to_root[1], "n", 1) != 1 || read(to_child[0], &c, 1) != 1)
			wl_die("child sync");
		sh("ip link set lo up && ip link set vb mtu 1400 && ip addr add 10.77.0.2/24 dev vb && ip link set vb up"
		   " && ip route add 10.99.0.0/24 via 10.77.0.1");
		struct sockaddr_in sin = server_addr();
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int tries = 0;
		if (!conn && read(to_child[0], &c, 1) != 1) /* the root listens */
			wl_die("child sync");
		while (conn && connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
			if (++tries > 500)
				wl_die("connect: %s", strerror(errno));
			wl_msleep(10);
		}
		if (conn) {
			xchg(s, 'c', 'p', "child before");
			if (write(s, "d", 1) != 1) /* left in flight */
				wl_die("write");
		}
		if (write(to_root[1], "r", 1) != 1)
			wl_die("child sync");
		while (!wl_stop)
			pause();
		out_has("ip -o addr show dev vb", "inet 10.77.0.2/24");
		out_has("ip -o link show dev vb", "mtu 1400");
		out_has("ip -o link show dev vb", "state UP");
		out_has("ip route show 10.99.0.0/24", "via 10.77.0.1 dev vb");
		if (conn) {
			xchg(s, 'e', 'q', "child after");
			if (!wl_readable(s, 5000))
				wl_fail("child: no byte after its own");
			else if (read(s, &c, 1) != 1 || c != 'z')
				wl_fail("child: read %c, want z", c);
		}
		int s2 = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (connect(s2, (struct sockaddr *)&sin, sizeof(sin)) < 0 || write(s2, "f", 1) != 1)
			wl_fail("child: fresh connection: %s", strerror(errno));
		else if (!wl_readable(s2, 5000) || read(s2, &c, 1) != 1 || c != 'g')
			wl_fail("child: fresh connection: no answer");
		close(s2);
		_exit(atomic_load(&wl_fails) ? 1 : 0);
	}
	if (read(to_root[0], &c, 1) != 1)
		wl_die("sync");
	sh("ip link add va type veth peer name vb netns %d && ip link set lo up && ip addr add 10.77.0.1/24 dev va"
	   " && ip link set va up && echo 1 > /proc/sys/net/ipv4/conf/va/accept_local", (int)child);
	struct sockaddr_in sin = server_addr();
	if (bind(l, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(l, 8) < 0)
		wl_die("listen: %s", strerror(errno));
	if (write(to_child[1], "g", 1) != 1 || (!conn && write(to_child[1], "l", 1) != 1))
		wl_die("sync");
	int a = -1;
	if (conn) {
		a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (a < 0)
			wl_die("accept: %s", strerror(errno));
		if (write(a, "p", 1) != 1)
			wl_die("write");
		xchg(a, 'q', 'c', "root before"); /* 'q' stays in flight */
	}
	if (read(to_root[0], &c, 1) != 1)
		wl_die("sync");
	wl_info("child pid=%d", (int)child);
	printf("READY pid=%d tids=%d\n", wl_pid, wl_pid);
	fflush(stdout);
	while (!wl_stop)
		pause();
	out_has("ip -o addr show dev va", "inet 10.77.0.1/24");
	out_has("ip -o link show dev va", "state UP");
	check_setting("/proc/sys/net/ipv4/conf/va/accept_local", wl_corrupt ? "0" : "1");
	kill(child, SIGTERM);
	if (conn) {
		xchg(a, 'z', 'd', "root after");
		if (!wl_readable(a, 5000) || read(a, &c, 1) != 1 || c != 'e')
			wl_fail("root: read %c, want e", c);
	}
	if (!wl_readable(l, 5000)) {
		wl_fail("root: no fresh connection");
	} else {
		int b = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		if (b < 0 || !wl_readable(b, 5000) || read(b, &c, 1) != 1 || c != 'f' || write(b, "g", 1) != 1)
			wl_fail("root: fresh connection: %s", strerror(errno));
	}
	int st;
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		wl_fail("child: status %#x", st);
	if (atomic_load(&wl_fails))
		return 1;
	printf("PASS\n");
	return 0;
}
