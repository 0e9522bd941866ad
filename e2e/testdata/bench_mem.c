/*
 * bench_mem - benchmark workload: holds SIZE_MIB MiB of touched private
 * anonymous memory filled with a pattern, prints READY, and on SIGTERM
 * checks the pattern and prints PASS or FAIL. On SIGUSR1 it rewrites one
 * page in ten (same values: the pattern holds) and prints TOUCHED, for the
 * incremental dump figures.
 *   usage: bench_mem SIZE_MIB
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile sig_atomic_t stop, touch;
static void on_term(int sig) { (void)sig; stop = 1; }
static void on_usr1(int sig) { (void)sig; touch = 1; }

int main(int argc, char **argv)
{
	size_t size = (size_t)atol(argc > 1 ? argv[1] : "64") << 20;
	uint64_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("FAIL: setup: mmap %zu bytes\n", size);
		return 2;
	}
	for (size_t i = 0; i < size / 8; i++)
		p[i] = i * 0x9e3779b97f4a7c15ull;
	signal(SIGTERM, on_term);
	signal(SIGUSR1, on_usr1);
	printf("READY pid=%d tids=%d\n", getpid(), getpid());
	fflush(stdout);
	while (!stop) {
		if (touch) {
			touch = 0;
			for (size_t i = 0; i < size / 8; i += 10 * 4096 / 8)
				((volatile uint64_t *)p)[i] = i * 0x9e3779b97f4a7c15ull;
			printf("TOUCHED\n");
			fflush(stdout);
			continue;
		}
		pause();
	}
	for (size_t i = 0; i < size / 8; i++)
		if (p[i] != i * 0x9e3779b97f4a7c15ull) {
			printf("FAIL: word %zu changed\n", i);
			return 1;
		}
	printf("PASS\n");
	return 0;
}
