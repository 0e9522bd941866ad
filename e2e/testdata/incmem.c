/*
 * incmem: memory for incremental dumps. 32 MiB filled with a pattern;
 * each SIGUSR1 rewrites one page in ten (a new pattern per round, a
 * different tenth each time) and prints "INFO: round N done". After
 * SIGTERM every page must hold what the last round that touched it wrote
 * (or the first pattern): restored from a dump whose unchanged pages are in
 * a pre-dump's images, every page checks.
 */
#include "wl.h"

#define AREA (32ul << 20)
#define PAGE 4096ul
#define NPAGES (AREA / PAGE)

static volatile sig_atomic_t want_round;

static void on_usr1(int sig)
{
	(void)sig;
	want_round++;
}

/* seed of page i after round r (0: the first fill). */
static uint64_t seed_of(unsigned long i, int r)
{
	for (; r > 0; r--)
		if (i % 10 == (unsigned long)(r - 1) % 10)
			return 100 + r;
	return 7;
}

int main(int argc, char **argv)
{
	unsigned char *area;
	int round = 0;
	struct sigaction sa;

	wl_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	if (sigaction(SIGUSR1, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));
	area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	for (unsigned long i = 0; i < NPAGES; i++)
		wl_fill(area + i * PAGE, PAGE, seed_of(i, 0) * 1000003 + i);
	wl_ready();
	while (!wl_stop) {
		if (round < want_round) {
			round++;
			for (unsigned long i = (round - 1) % 10; i < NPAGES; i += 10)
				wl_fill(area + i * PAGE, PAGE, seed_of(i, round) * 1000003 + i);
			wl_info("round %d done", round);
			continue;
		}
		wl_msleep(5);
	}
	if (wl_corrupt)
		area[5 * PAGE] ^= 1;
	for (unsigned long i = 0; i < NPAGES; i++) {
		long w = wl_verify(area + i * PAGE, PAGE, seed_of(i, round) * 1000003 + i);
		if (w >= 0) {
			wl_fail("page %lu differs at word %ld (after %d rounds)", i, w, round);
			break;
		}
	}
	wl_info("%d rounds", round);
	return wl_finish();
}
