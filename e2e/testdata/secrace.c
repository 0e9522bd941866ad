/*
 * secrace - the racer of e2e/security_files_test.go: a normal user who
 * swaps a directory of theirs with a symlink to root's, as fast as it can.
 *   usage: secrace A B
 * Exchanges A and B (renameat2 RENAME_EXCHANGE) in a loop until SIGTERM,
 * prints "RACING" once the first exchange is done, then "SWAPS n".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)
#endif

static volatile sig_atomic_t stop;

static void on_term(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: secrace A B\n");
		return 2;
	}
	signal(SIGTERM, on_term);
	long n = 0;
	while (!stop) {
		if (syscall(SYS_renameat2, AT_FDCWD, argv[1], AT_FDCWD, argv[2], RENAME_EXCHANGE) != 0) {
			printf("FAIL: exchange %s %s: %s\n", argv[1], argv[2], strerror(errno));
			return 1;
		}
		if (++n == 1) {
			printf("RACING\n");
			fflush(stdout);
		}
	}
	printf("SWAPS %ld\n", n);
	return 0;
}
