// sec_sock: a Unix stream listener bound to a path, for the security
// tests of socket restore (e2e/security_sockets_test.go).
//
//   sec_sock PATH
//
// Binds a stream socket to PATH, listens, prints READY, then serves: each
// client gets one line "uid=U pid=P\n" with the SO_PEERCRED the listener
// sees of it, and "SELF uid=U\n" with the process's own euid. SIGTERM
// ends it with status 0.
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
	if (argc != 2 || strlen(argv[1]) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		fprintf(stderr, "usage: sec_sock PATH\n");
		return 2;
	}
	struct sigaction sa = {.sa_handler = on_term};
	sigaction(SIGTERM, &sa, NULL);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strcpy(a.sun_path, argv[1]);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 8) < 0) {
		perror("listen");
		return 1;
	}
	printf("READY pid=%d tids=%d\n", getpid(), getpid());
	fflush(stdout);
	while (!stop) {
		int c = accept(l, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("accept");
			return 1;
		}
		struct ucred cr;
		socklen_t n = sizeof(cr);
		char line[128];
		if (getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &n) < 0)
			cr.uid = -1, cr.pid = -1;
		int len = snprintf(line, sizeof(line), "uid=%d pid=%d\nSELF uid=%d\n", (int)cr.uid, (int)cr.pid, (int)geteuid());
		if (write(c, line, len) != len)
			perror("write");
		close(c);
	}
	printf("DONE\n");
	return 0;
}
