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
 */
#include "wl.h"

#define HUGE (2ul << 20)
#define AREA (32ul << 20)
#define PLAIN (3ul << 20)

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
	unsigned char *raw, *area, *plain;
	long before, after;
	int hg;

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

	wl_ready();
	wl_wait_stop();

	after = anon_huge_kb((unsigned long)area, &hg);
	wl_info("AnonHugePages %ld kB after", after);
	CHECK(hg, "the area lost its MADV_HUGEPAGE flag");
	CHECK(after * 2 >= before, "AnonHugePages %ld kB after restore, %ld kB before", after, before);
	CHECK(wl_verify(area, AREA, 42) < 0, "huge area: data differs at word %ld", wl_verify(area, AREA, 42));
	CHECK(wl_verify(plain, PLAIN, 43) < 0, "plain area: data differs at word %ld", wl_verify(plain, PLAIN, 43));
	return wl_finish();
}
