/*
 * memory: address space contents and layout survive checkpoint/restore.
 *
 * Checks: private anonymous memory with a pattern (8 MiB, some pages never
 * touched must still read as zero), heap (malloc'ed chunks, brk region made
 * with sbrk, sbrk(0) unchanged), a MAP_PRIVATE file mapping with some pages
 * modified (COW, keep the new data) and some untouched (keep the file data and
 * still track later changes of the file), a PROT_NONE region whose pages were
 * written before protecting, a read-only region holding data, stack data in
 * main (including 512 KiB that grew the main [stack]) and in every thread,
 * /proc/self/maps identical, [vdso] still at AT_SYSINFO_EHDR.
 */
#include "wl.h"
#include <alloca.h>
#include <sys/auxv.h>

#define PAGE 4096ul
#define ANON_PAGES 2048 /* 8 MiB */
#define FILE_PAGES 16
#define NSMALL 2000
#define MAPS_SIZE (256 * 1024)

static unsigned char *anon;
static unsigned char *fmap;
static unsigned char *guard;
static unsigned char *ro;
static unsigned char *big;
static unsigned char *small[NSMALL];
static unsigned char *brk_region;
static void *brk_end;
static unsigned long vdso;
static char maps_before[MAPS_SIZE], maps_after[MAPS_SIZE];
static volatile int snap_done;

static int anon_untouched(int p) { return p % 7 == 3; }
static int fmap_modified(int p) { return p == 1 || p == 4 || p == 9; }
static int fmap_readonly_touched(int p) { return p == 2 || p == 5; }

static void check_stack(const volatile unsigned char *buf, size_t len, uint64_t seed, const char *what)
{
	long bad = wl_verify((const void *)buf, len, seed);
	CHECK(bad < 0, "%s: data differs at word %ld", what, bad);
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	volatile unsigned char stackbuf[16384] __attribute__((aligned(8)));

	wl_block_sigterm();
	wl_fill((void *)stackbuf, sizeof(stackbuf), 100 + idx);
	wl_thread_started(idx);
	wl_wait_stop();
	while (!snap_done)
		wl_msleep(1);
	if (wl_corrupt)
		stackbuf[100] ^= 1;
	wl_check_ids(idx);
	check_stack(stackbuf, sizeof(stackbuf), 100 + idx, "thread stack");
	return NULL;
}

static void diff_maps(void)
{
	int reported = 0;
	char *lines_b[4096], *lines_a[4096];
	int nb = 0, na = 0;
	char *save;

	if (strcmp(maps_before, maps_after) == 0)
		return;
	for (char *l = strtok_r(maps_before, "\n", &save); l && nb < 4096; l = strtok_r(NULL, "\n", &save))
		lines_b[nb++] = l;
	for (char *l = strtok_r(maps_after, "\n", &save); l && na < 4096; l = strtok_r(NULL, "\n", &save))
		lines_a[na++] = l;
	for (int i = 0; i < nb; i++) {
		int found = 0;
		for (int j = 0; j < na && !found; j++)
			found = strcmp(lines_b[i], lines_a[j]) == 0;
		if (!found && reported++ < 10)
			wl_fail("maps: line gone after restore: %s", lines_b[i]);
	}
	for (int j = 0; j < na; j++) {
		int found = 0;
		for (int i = 0; i < nb && !found; i++)
			found = strcmp(lines_b[i], lines_a[j]) == 0;
		if (!found && reported++ < 20)
			wl_fail("maps: new line after restore: %s", lines_a[j]);
	}
	if (reported == 0)
		wl_fail("maps: /proc/self/maps differs");
}

static unsigned long maps_find(const char *maps, const char *name)
{
	const char *p = strstr(maps, name);
	if (!p)
		return 0;
	while (p > maps && p[-1] != '\n')
		p--;
	return strtoul(p, NULL, 16);
}

/*
 * Touch 64 KiB below the current stack pointer so that the main [stack] does
 * not grow later (signal frames, deeper calls) between the two maps snapshots.
 */
static __attribute__((noinline)) void pregrow_stack(void)
{
	volatile unsigned char buf[65536];
	for (size_t i = 0; i < sizeof(buf); i += 512)
		buf[i] = 0;
}

static void corrupt(void)
{
	anon[5 * PAGE + 17] ^= 1;
	anon[3 * PAGE] = 1; /* an untouched page */
	small[NSMALL / 2][3] ^= 1;
	big[12345] ^= 1;
	brk_region[100] ^= 1;
	fmap[1 * PAGE + 8] ^= 1; /* a COW page */
	fmap[3 * PAGE + 8] ^= 1; /* an untouched page becomes COW */
	mprotect(guard, 4 * PAGE, PROT_READ | PROT_WRITE);
	guard[2 * PAGE + 5] ^= 1;
	mprotect(guard, 4 * PAGE, PROT_NONE);
	mprotect(ro, 16 * PAGE, PROT_READ | PROT_WRITE);
	ro[7] ^= 1;
	mprotect(ro, 16 * PAGE, PROT_READ);
	sbrk(PAGE);
	mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	volatile unsigned char mainbuf[65536] __attribute__((aligned(8)));
	volatile unsigned char *deep;
	size_t deep_len = 512 * 1024;
	int fd;

	wl_init(argc, argv);

	/* private anonymous memory, 8 MiB, every 7th page never touched */
	anon = mmap(NULL, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		wl_die("mmap anon: %s", strerror(errno));
	for (int p = 0; p < ANON_PAGES; p++)
		if (!anon_untouched(p))
			wl_fill(anon + p * PAGE, PAGE, 1000 + p);

	/* heap: a large malloc (mmap'ed by glibc) and many small ones (brk) */
	big = malloc(1 << 20);
	if (!big)
		wl_die("malloc");
	wl_fill(big, 1 << 20, 2);
	for (int i = 0; i < NSMALL; i++) {
		size_t len = 64 + (size_t)(i % 16) * 64;
		small[i] = malloc(len);
		if (!small[i])
			wl_die("malloc");
		wl_fill(small[i], len, 3000 + i);
	}
	/* brk: extend the program break ourselves */
	brk_region = sbrk(16 * PAGE);
	if (brk_region == (void *)-1)
		wl_die("sbrk: %s", strerror(errno));
	wl_fill(brk_region, 16 * PAGE, 4);
	brk_end = sbrk(0);

	/* MAP_PRIVATE file mapping of a file in the cwd */
	fd = open("mapped.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		wl_die("open mapped.bin: %s", strerror(errno));
	{
		static unsigned char filebuf[FILE_PAGES * PAGE];
		for (int p = 0; p < FILE_PAGES; p++)
			wl_fill(filebuf + p * PAGE, PAGE, 5000 + p);
		if (write(fd, filebuf, sizeof(filebuf)) != (ssize_t)sizeof(filebuf))
			wl_die("write mapped.bin: %s", strerror(errno));
	}
	fmap = mmap(NULL, FILE_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (fmap == MAP_FAILED)
		wl_die("mmap file: %s", strerror(errno));
	close(fd); /* the mapping alone keeps the file */
	for (int p = 0; p < FILE_PAGES; p++) {
		if (fmap_modified(p))
			wl_fill(fmap + p * PAGE, PAGE, 6000 + p);
		else if (fmap_readonly_touched(p))
			(void)*(volatile unsigned char *)(fmap + p * PAGE);
	}

	/* PROT_NONE region: pages 0 and 2 written before protecting */
	guard = mmap(NULL, 4 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (guard == MAP_FAILED)
		wl_die("mmap guard: %s", strerror(errno));
	wl_fill(guard, PAGE, 7000);
	wl_fill(guard + 2 * PAGE, PAGE, 7002);
	if (mprotect(guard, 4 * PAGE, PROT_NONE))
		wl_die("mprotect none: %s", strerror(errno));

	/* read-only region holding data */
	ro = mmap(NULL, 16 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ro == MAP_FAILED)
		wl_die("mmap ro: %s", strerror(errno));
	wl_fill(ro, 16 * PAGE, 8);
	if (mprotect(ro, 16 * PAGE, PROT_READ))
		wl_die("mprotect ro: %s", strerror(errno));

	/* stack data in main; 512 KiB more grows the main [stack] */
	wl_fill((void *)mainbuf, sizeof(mainbuf), 9);
	deep = alloca(deep_len);
	wl_fill((void *)deep, deep_len, 10);

	vdso = getauxval(AT_SYSINFO_EHDR);

	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);

	pregrow_stack();
	if (wl_read_file("/proc/self/maps", maps_before, sizeof(maps_before)) <= 0)
		wl_die("read maps");
	if (maps_find(maps_before, "[vdso]") != vdso)
		wl_die("[vdso] not at AT_SYSINFO_EHDR before checkpoint");
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt)
		corrupt();
	/* snapshot before anything else can change the address space */
	if (wl_read_file("/proc/self/maps", maps_after, sizeof(maps_after)) <= 0)
		wl_fail("cannot read /proc/self/maps after restore");
	{
		void *cur = sbrk(0);
		CHECK(cur == brk_end, "brk: sbrk(0) = %p, want %p", cur, brk_end);
	}
	snap_done = 1;

	wl_check_ids(0);
	{
		unsigned long v = maps_find(maps_after, "[vdso]");
		CHECK(v == vdso, "vdso: [vdso] at %#lx, want %#lx (AT_SYSINFO_EHDR)", v, vdso);
		CHECK(wl_now_ns(CLOCK_MONOTONIC) > 0, "vdso: clock_gettime does not work");
	}
	diff_maps();

	for (int p = 0; p < ANON_PAGES; p++) {
		long bad = anon_untouched(p) ? wl_verify_zero(anon + p * PAGE, PAGE)
					     : wl_verify(anon + p * PAGE, PAGE, 1000 + p);
		if (bad >= 0) {
			wl_fail("anon: page %d (%s) differs at word %ld", p,
				anon_untouched(p) ? "never touched, want zeros" : "pattern", bad);
			break;
		}
	}
	CHECK(wl_verify(big, 1 << 20, 2) < 0, "heap: large malloc chunk differs");
	for (int i = 0; i < NSMALL; i++) {
		if (wl_verify(small[i], 64 + (size_t)(i % 16) * 64, 3000 + i) >= 0) {
			wl_fail("heap: small malloc chunk %d differs", i);
			break;
		}
	}
	CHECK(wl_verify(brk_region, 16 * PAGE, 4) < 0, "brk: sbrk'ed region differs");

	for (int p = 0; p < FILE_PAGES; p++) {
		uint64_t seed = fmap_modified(p) ? 6000 + p : 5000 + p;
		long bad = wl_verify(fmap + p * PAGE, PAGE, seed);
		CHECK(bad < 0, "file mapping: page %d (%s) differs at word %ld", p,
		      fmap_modified(p) ? "modified, COW" : "untouched, file data", bad);
	}
	/* untouched pages of a private file mapping still track the file */
	fd = open("mapped.bin", O_RDWR);
	if (fd < 0) {
		wl_fail("file mapping: cannot reopen mapped.bin: %s", strerror(errno));
	} else {
		static unsigned char newpage[PAGE];
		wl_fill(newpage, PAGE, 5555);
		for (int p = 0; p < 3; p++)
			if (pwrite(fd, newpage, PAGE, p * PAGE) != (ssize_t)PAGE)
				wl_fail("file mapping: pwrite: %s", strerror(errno));
		close(fd);
		CHECK(wl_verify(fmap, PAGE, 5555) < 0,
		      "file mapping: untouched page 0 does not see the file update (not file-backed any more)");
		CHECK(wl_verify(fmap + 2 * PAGE, PAGE, 5555) < 0,
		      "file mapping: read-only-touched page 2 does not see the file update (not file-backed any more)");
		CHECK(wl_verify(fmap + PAGE, PAGE, 6000 + 1) < 0,
		      "file mapping: COW page 1 changed by a file update (should be private)");
	}

	if (mprotect(guard, 4 * PAGE, PROT_READ)) {
		wl_fail("PROT_NONE region: mprotect(PROT_READ): %s", strerror(errno));
	} else {
		CHECK(wl_verify(guard, PAGE, 7000) < 0, "PROT_NONE region: written page 0 lost its data");
		CHECK(wl_verify(guard + 2 * PAGE, PAGE, 7002) < 0, "PROT_NONE region: written page 2 lost its data");
		CHECK(wl_verify_zero(guard + PAGE, PAGE) < 0, "PROT_NONE region: untouched page 1 not zero");
		CHECK(wl_verify_zero(guard + 3 * PAGE, PAGE) < 0, "PROT_NONE region: untouched page 3 not zero");
	}
	CHECK(wl_verify(ro, 16 * PAGE, 8) < 0, "read-only region: data differs");

	if (wl_corrupt) {
		mainbuf[10] ^= 1;
		deep[deep_len - 10] ^= 1;
	}
	check_stack(mainbuf, sizeof(mainbuf), 9, "main stack");
	check_stack(deep, deep_len, 10, "main stack (grown by 512 KiB)");

	wl_join(th, wl_nthreads);
	return wl_finish();
}
