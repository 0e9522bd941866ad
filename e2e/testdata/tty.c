/*
 * tty - shell-job workload: its standard descriptors are a terminal.
 *   usage: tty REPORT_FILE
 * Prints READY (and later PASS/FAIL) to REPORT_FILE, a regular file, since
 * stdout is the terminal. After SIGTERM it checks that fds 0-2 are still
 * terminals (with -j, the restoring one) and writes a marker line to its
 * terminal so that the test can see where it went.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static void on_term(int sig) { (void)sig; stop = 1; }

/* A thread blocked in read() on the terminal at dump time: after the
 * restore it must get the line the test types on the new terminal. */
static char line[64];
static volatile int got_line;
static void *reader(void *arg)
{
	(void)arg;
	ssize_t n = read(0, line, sizeof line - 1);
	if (n > 0) {
		line[n] = 0;
		got_line = 1;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	FILE *report = fopen(argv[1], "a");
	if (!report)
		return 2;
	setvbuf(report, NULL, _IONBF, 0);
	signal(SIGTERM, on_term);
	for (int fd = 0; fd < 3; fd++)
		if (!isatty(fd)) {
			fprintf(report, "FAIL: setup: fd %d is not a terminal\n", fd);
			return 2;
		}
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	pthread_t th;
	pthread_create(&th, NULL, reader, NULL);
	pthread_sigmask(SIG_UNBLOCK, &term, NULL);
	usleep(50000);
	fprintf(report, "READY pid=%d tids=%d\n", getpid(), getpid());
	/* Not pause(): a SIGTERM landing between the test of stop and
	 * pause() would leave it waiting for good. */
	while (!stop)
		usleep(20000);
	int bad = 0;
	for (int fd = 0; fd < 3; fd++)
		if (!isatty(fd)) {
			fprintf(report, "FAIL: fd %d is no longer a terminal\n", fd);
			bad = 1;
		}
	pthread_join(th, NULL);
	if (!got_line || strncmp(line, "ping", 4) != 0) {
		fprintf(report, "FAIL: the blocked read got %s\n", got_line ? line : "nothing");
		bad = 1;
	}
	const char *msg = "tty-workload-after-restore\n";
	if (write(1, msg, strlen(msg)) != (ssize_t)strlen(msg)) {
		fprintf(report, "FAIL: write to the terminal\n");
		bad = 1;
	}
	fprintf(report, bad ? "FAIL: see above\n" : "PASS\n");
	return bad;
}
