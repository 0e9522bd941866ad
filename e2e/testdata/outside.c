/*
 * outside: a descriptor shared with the world outside the tree (issue 11
 * item 15), the way a service's stdout goes to a logger.
 *
 *   outside pipe PATH   opens PATH (/proc/TEST/fd/N: a write end of the
 *                       test's pipe) for writing
 *   outside unix PATH   connects a stream socket to the test's listener
 *   outside tty PATH    opens PATH, a pty slave whose master the test holds
 *   PATH fd:N           uses the inherited descriptor N instead
 * It writes "before\n" to it, prints READY and waits. After SIGTERM it
 * writes "after PID\n" to the same descriptor (on restore, whatever
 * --inherit-fd gave it), which must work, and checks that the descriptor
 * is still of its kind.
 */
#include "wl.h"
#include <sys/socket.h>
#include <sys/un.h>

int main(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[argc - 1] : "";
	if (argc < 3)
		wl_die("usage: outside pipe|unix|tty PATH");
	argv[argc - 1] = NULL;
	wl_init(argc - 1, argv);
	int fd;
	mode_t kind;
	if (strcmp(wl_mode, "unix") == 0) {
		struct sockaddr_un a = {.sun_family = AF_UNIX};
		snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)))
			wl_die("connect %s: %s", path, strerror(errno));
		kind = S_IFSOCK;
	} else if (strncmp(path, "fd:", 3) == 0) {
		fd = atoi(path + 3);
		kind = strcmp(wl_mode, "tty") == 0 ? S_IFCHR : S_IFIFO;
	} else {
		fd = open(path, O_WRONLY | O_NOCTTY);
		if (fd < 0)
			wl_die("open %s: %s", path, strerror(errno));
		kind = strcmp(wl_mode, "tty") == 0 ? S_IFCHR : S_IFIFO;
	}
	if (write(fd, "before\n", 7) != 7)
		wl_die("write before: %s", strerror(errno));
	wl_ready();
	wl_wait_stop();

	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & S_IFMT) == kind, "fd %d is no longer a %s", fd, wl_mode);
	char line[64];
	int n = snprintf(line, sizeof(line), "after %d\n", (int)getpid());
	signal(SIGPIPE, SIG_IGN);
	ssize_t w = write(fd, line, (size_t)n);
	CHECK(w == n, "write after the restore: %zd (%s)", w, w < 0 ? strerror(errno) : "short");
	return wl_finish();
}
