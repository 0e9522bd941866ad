/*
 * hugemem: an area advised MADV_HUGEPAGE and backed by transparent huge
 * pages keeps its data and gets huge pages back after restore, so that the
 * application does not pay a first access to each small page afterwards.
 *
 * Checks: 32 MiB (2 MiB-aligned, MADV_HUGEPAGE) filled with a pattern is
 * intact; smaps AnonHugePages of the area is non-zero before the dump (else
 * setup fails: the kernel gave no huge pages) and at least half of it after
 * restore; the area still carries the "hg" VmFlag; a plain area beside it
 * (no advice) is intact too.
 *
 * A third area has huge pages without the advice: 8 MiB, 2 MiB-aligned,
 * the first 6 MiB filled and collapsed by the program itself
 * (MADV_COLLAPSE), the last 2 MiB only half touched. After restore its data
 * is intact, it has no "hg" flag, at least half of its huge pages are back,
 * and no more than it had (the half-touched block stays small pages).
 */
#include "wl.h"

#define HUGE (2ul << 20)
#define AREA (32ul << 20)
#define PLAIN (3ul << 20)
#define COLL (8ul << 20)
#define COLL_DENSE (6ul << 20)

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

/* anon_huge_kb returns smaps' AnonHugePages (KiB) of the VMA starting at
 * start, and whether its VmFlags has "hg" in *hg. */
static long anon_huge_kb(unsigned long start, int *hg)
{
	static char buf[1 << 20];
	ssize_t n = wl_read_file("/proc/self/smaps", buf, sizeof(buf) - 1);
	char head[32];
	char *p;
	long kb = -1;

	if (n <= 0)
		wl_die("read smaps");
	buf[n] = 0;
	snprintf(head, sizeof(head), "\n%lx-", start);
	p = strstr(buf, head);
	if (!p)
		wl_die("smaps: no area at %lx", start);
	p = strstr(p, "AnonHugePages:");
	if (!p || sscanf(p, "AnonHugePages: %ld kB", &kb) != 1)
		wl_die("smaps: no AnonHugePages for %lx", start);
	p = strstr(p, "VmFlags:");
	if (!p)
		wl_die("smaps: no VmFlags for %lx", start);
	*hg = strstr(p, " hg") != NULL && strstr(p, " hg") < strchr(p, '\n');
	return kb;
}

int main(int argc, char **argv)
{
	unsigned char *raw, *area, *plain, *craw, *coll;
	long before, after, cbefore, cafter;
	int hg, chg;

	wl_init(argc, argv);
	raw = mmap(NULL, AREA + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	area = (unsigned char *)(((unsigned long)raw + HUGE - 1) & ~(HUGE - 1));
	if (madvise(area, AREA, MADV_HUGEPAGE))
		wl_die("madvise(MADV_HUGEPAGE): %s", strerror(errno));
	wl_fill(area, AREA, 42);
	before = anon_huge_kb((unsigned long)area, &hg);
	if (before <= 0 || !hg)
		wl_die("the kernel gave no huge pages (AnonHugePages %ld kB, hg %d): THP is off?", before, hg);
	plain = mmap(NULL, PLAIN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (plain == MAP_FAILED)
		wl_die("mmap plain: %s", strerror(errno));
	wl_fill(plain, PLAIN, 43);
	wl_info("huge area %p: AnonHugePages %ld kB before", (void *)area, before);
	craw = mmap(NULL, COLL + HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (craw == MAP_FAILED)
		wl_die("mmap collapsed: %s", strerror(errno));
	coll = (unsigned char *)(((unsigned long)craw + HUGE - 1) & ~(HUGE - 1));
	/* Its own VMA, whatever the neighbours: protections differ around it. */
	if (coll > craw && mprotect(craw, coll - craw, PROT_READ))
		wl_die("mprotect: %s", strerror(errno));
	if (mprotect(coll + COLL, craw + COLL + HUGE - (coll + COLL), PROT_READ))
		wl_die("mprotect: %s", strerror(errno));
	wl_fill(coll, COLL_DENSE, 44);
	wl_fill(coll + COLL_DENSE, HUGE / 2, 45);
	if (madvise(coll, COLL_DENSE, MADV_COLLAPSE))
		wl_die("the kernel gave no huge pages: madvise(MADV_COLLAPSE): %s", strerror(errno));
	cbefore = anon_huge_kb((unsigned long)coll, &chg);
	if (cbefore <= 0 || chg)
		wl_die("collapsed area: AnonHugePages %ld kB, hg %d", cbefore, chg);
	wl_info("collapsed area %p: AnonHugePages %ld kB before", (void *)coll, cbefore);

	wl_ready();
	wl_wait_stop();

	after = anon_huge_kb((unsigned long)area, &hg);
	wl_info("AnonHugePages %ld kB after", after);
	CHECK(hg, "the area lost its MADV_HUGEPAGE flag");
	CHECK(after * 2 >= before, "AnonHugePages %ld kB after restore, %ld kB before", after, before);
	CHECK(wl_verify(area, AREA, 42) < 0, "huge area: data differs at word %ld", wl_verify(area, AREA, 42));
	CHECK(wl_verify(plain, PLAIN, 43) < 0, "plain area: data differs at word %ld", wl_verify(plain, PLAIN, 43));
	cafter = anon_huge_kb((unsigned long)coll, &chg);
	wl_info("collapsed area: AnonHugePages %ld kB after", cafter);
	CHECK(!chg, "the collapsed area got an hg flag it did not have");
	CHECK(cafter * 2 >= cbefore, "collapsed area: AnonHugePages %ld kB after restore, %ld kB before", cafter, cbefore);
	CHECK(cafter <= cbefore, "collapsed area: AnonHugePages %ld kB after restore, more than the %ld kB before", cafter, cbefore);
	CHECK(wl_verify(coll, COLL_DENSE, 44) < 0, "collapsed area: data differs at word %ld", wl_verify(coll, COLL_DENSE, 44));
	CHECK(wl_verify(coll + COLL_DENSE, HUGE / 2, 45) < 0, "collapsed area, sparse block: data differs at word %ld", wl_verify(coll + COLL_DENSE, HUGE / 2, 45));
	return wl_finish();
}
