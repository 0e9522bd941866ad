/*
 * snapwrite: a process that rewrites all of its memory, all the time, so
 * that a dump that copies pages after the tree runs again (from a
 * copy-on-write snapshot) must still save every page as it was at the
 * freeze.
 *
 * It fills AREA with generation 1 (the first and last word of each page),
 * then loops: generation g rewrites the pages in order, and before writing
 * page i it checks that the page still holds g-1. Restored from an image
 * taken at (g, i), pages before i hold g and the others g-1; a page copied
 * after the freeze holds a later generation and fails the check.
 *
 * Also: an area advised MADV_DONTFORK and one advised MADV_WIPEONFORK,
 * each filled with a pattern (a fork does not copy them: the dump must copy
 * them while frozen), and a MAP_SHARED anonymous area.
 *
 * Checks after SIGTERM: every page holds the generation its position says;
 * the three areas hold their patterns; no child is left behind (a snapshot
 * child must be reaped: wait4(-1, __WALL|WNOHANG) gives ECHILD).
 */
#include "wl.h"
#include <sys/wait.h>

#define AREA (32ul << 20)
#define SIDE (1ul << 20)
#define PAGE 4096ul
#define NPAGES (AREA / PAGE)
#define LAST (PAGE / 8 - 1)

static uint64_t *area;
static volatile uint64_t gen;
static volatile unsigned long pos;
static int bad;

/* check reports page i holding something other than want (once). */
static void check(unsigned long i, uint64_t want)
{
	uint64_t *p = area + i * (PAGE / 8);
	if (bad || (p[0] == want && p[LAST] == want))
		return;
	bad = 1;
	wl_fail("page %lu holds generation %llu/%llu, want %llu (generation %llu at page %lu)", i,
		(unsigned long long)p[0], (unsigned long long)p[LAST], (unsigned long long)want,
		(unsigned long long)gen, pos);
}

int main(int argc, char **argv)
{
	unsigned char *dontfork, *wipe, *shared;

	wl_init(argc, argv);
	area = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	dontfork = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	wipe = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	shared = mmap(NULL, SIDE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED || dontfork == MAP_FAILED || wipe == MAP_FAILED || shared == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	if (madvise(dontfork, SIDE, MADV_DONTFORK) || madvise(wipe, SIDE, MADV_WIPEONFORK))
		wl_die("madvise: %s", strerror(errno));
	wl_fill(dontfork, SIDE, 51);
	wl_fill(wipe, SIDE, 52);
	wl_fill(shared, SIDE, 53);
	gen = 1;
	for (unsigned long i = 0; i < NPAGES; i++) {
		area[i * (PAGE / 8)] = 1;
		area[i * (PAGE / 8) + LAST] = 1;
	}
	wl_ready();

	for (gen = 2; !wl_stop; gen++) {
		for (pos = 0; pos < NPAGES && !wl_stop; pos++) {
			uint64_t *p = area + pos * (PAGE / 8);
			check(pos, gen - 1);
			p[0] = gen;
			p[LAST] = gen;
		}
		if (wl_stop)
			break;
	}
	if (wl_corrupt)
		area[(NPAGES - 1) * (PAGE / 8)] = gen + 1;
	/* Stopped at (gen, pos): pages before pos hold gen, the rest gen-1. */
	for (unsigned long i = 0; i < NPAGES; i++)
		check(i, i < pos ? gen : gen - 1);
	wl_info("stopped at generation %llu page %lu", (unsigned long long)gen, pos);
	CHECK(wl_verify(dontfork, SIDE, 51) < 0, "MADV_DONTFORK area differs at word %ld", wl_verify(dontfork, SIDE, 51));
	CHECK(wl_verify(wipe, SIDE, 52) < 0, "MADV_WIPEONFORK area differs at word %ld", wl_verify(wipe, SIDE, 52));
	CHECK(wl_verify(shared, SIDE, 53) < 0, "shared area differs at word %ld", wl_verify(shared, SIDE, 53));
	{
		int st;
		pid_t c = waitpid(-1, &st, __WALL | WNOHANG);
		CHECK(c < 0 && errno == ECHILD, "a child is left: waitpid(-1, __WALL) = %d (%s)", (int)c,
		      c < 0 ? strerror(errno) : "a child");
	}
	return wl_finish();
}
