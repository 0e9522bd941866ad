// ctflock: a file lock inside a container, for the runc file_locks test.
//
//   ctflock hold FILE   takes an exclusive flock on FILE, says "flock-held",
//                       then sleeps forever holding it;
//   ctflock probe FILE  tries the same lock without waiting, from another
//                       open file description, and says "locked-by-other"
//                       when it is refused (EWOULDBLOCK), "free" otherwise.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 3) {
		fprintf(stderr, "usage: ctflock hold|probe FILE\n");
		return 2;
	}
	int fd = open(argv[2], O_RDWR | O_CREAT, 0644);
	if (fd < 0) {
		fprintf(stderr, "FAIL: open %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	if (strcmp(argv[1], "hold") == 0) {
		if (flock(fd, LOCK_EX) != 0) {
			fprintf(stderr, "FAIL: flock: %s\n", strerror(errno));
			return 1;
		}
		printf("flock-held\n");
		fflush(stdout);
		for (;;)
			pause();
	}
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
		printf("free\n");
		return 0;
	}
	if (errno == EWOULDBLOCK) {
		printf("locked-by-other\n");
		return 0;
	}
	fprintf(stderr, "FAIL: flock probe: %s\n", strerror(errno));
	return 1;
}
