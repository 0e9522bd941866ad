/*
 * tree_cow: copy-on-write sharing across fork.
 *
 *   root            fills a 64 MiB private anonymous region (every page)
 *   +-- W0..W3      forked after the fill; each overwrites 4 pages of the
 *                   region with its own pattern and leaves the rest alone
 *       W0 +-- G    forked by W0 after W0's writes; overwrites 1 more page
 *
 * After SIGTERM every process checks the region's contents: the root's
 * pattern everywhere but the pages it (or its ancestor W0 for G) wrote.
 * As root (PFNs in /proc/PID/pagemap need CAP_SYS_ADMIN), each child also
 * checks through pagemap that every page it did not write is the very page
 * its parent has there (same page frame number), and that the pages it
 * wrote are not. The same check runs at setup (a failure there is a
 * workload bug: no sharing to keep).
 */
#include "wl.h"

#define REGION_LEN (64ul << 20)
#define PAGE 4096ul
#define NPAGES (REGION_LEN / PAGE)
#define NWORKERS 4
#define NWRITES 4

static uint8_t *region;
static int worker = -1; /* 0..3 for W0..W3, 4 for G */
static pid_t kids[NWORKERS];

/* The pages worker w writes: spread over the region. */
static unsigned long written_page(int w, int k)
{
	return (unsigned long)(w * 1031 + k * 4099 + 7) % NPAGES;
}

static uint64_t page_seed(int w) { return 100 + (uint64_t)w; }

/* Which seed page i of this process should hold: the root's 1, or the
 * writer's. G inherits W0's pages. */
static uint64_t expected_seed(unsigned long i)
{
	if (worker < 0)
		return 1;
	if (worker == 4) {
		if (i == written_page(4, 0))
			return page_seed(4);
		for (int k = 0; k < NWRITES; k++)
			if (i == written_page(0, k))
				return page_seed(0);
		return 1;
	}
	for (int k = 0; k < NWRITES; k++)
		if (i == written_page(worker, k))
			return page_seed(worker);
	return 1;
}

/* Whether this process wrote page i itself (so it must not share it with
 * its parent). */
static int own_write(unsigned long i)
{
	int w = worker, n = w == 4 ? 1 : NWRITES;
	for (int k = 0; k < n; k++)
		if (i == written_page(w, k))
			return 1;
	return 0;
}

static void check_contents(void)
{
	for (unsigned long i = 0; i < NPAGES; i++) {
		long bad = wl_verify(region + i * PAGE, PAGE, expected_seed(i) * NPAGES + i);
		if (bad >= 0) {
			wl_fail("%s: page %lu of the region: word %ld differs", wl_role, i, bad);
			return;
		}
	}
}

/* Reads the PFNs of the region in process pid ("self" for 0). Returns 0
 * when PFNs are hidden (no CAP_SYS_ADMIN). */
static int read_pfns(pid_t pid, uint64_t *out)
{
	char path[64];
	int fd;
	size_t want = NPAGES * sizeof(uint64_t);
	ssize_t n;
	int any = 0;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/pagemap", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/pagemap");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		wl_die("%s: open %s: %s", wl_role, path, strerror(errno));
	n = pread(fd, out, want, (off_t)((uintptr_t)region / PAGE * sizeof(uint64_t)));
	close(fd);
	if (n != (ssize_t)want)
		wl_die("%s: read %s: %zd bytes", wl_role, path, n);
	for (unsigned long i = 0; i < NPAGES; i++) {
		out[i] = (out[i] >> 63) ? (out[i] & ((1ull << 55) - 1)) : 0;
		any |= out[i] != 0;
	}
	return any;
}

/* Checks that the pages this process did not write are its parent's. */
static int check_shared(const char *when)
{
	static uint64_t mine[NPAGES], theirs[NPAGES];
	long notshared = 0, shared_own = 0;
	/* Fault every page in first: a page never touched has no PFN. */
	volatile uint8_t sink = 0;
	for (unsigned long i = 0; i < NPAGES; i++)
		sink ^= region[i * PAGE];
	(void)sink;
	if (!read_pfns(0, mine) || !read_pfns(getppid(), theirs)) {
		printf("INFO: %s: page frame numbers are hidden: sharing not checked\n", wl_role);
		return 0;
	}
	for (unsigned long i = 0; i < NPAGES; i++) {
		if (own_write(i))
			shared_own += mine[i] == theirs[i];
		else
			notshared += mine[i] != theirs[i] || mine[i] == 0;
	}
	if (notshared || shared_own) {
		wl_fail("%s %s: %ld of the pages it did not write have another page frame than its parent's, %ld it "
			"wrote have the parent's",
			wl_role, when, notshared, shared_own);
		return -1;
	}
	return 0;
}

static void write_pages(int w)
{
	int n = w == 4 ? 1 : NWRITES;
	for (int k = 0; k < n; k++) {
		unsigned long i = written_page(w, k);
		wl_fill(region + i * PAGE, PAGE, page_seed(w) * NPAGES + i);
	}
}

static void child(int w)
{
	pid_t g = 0;
	worker = w;
	write_pages(w);
	if (check_shared("at setup"))
		wl_die("%s: workload bug: no sharing with the parent before the dump", wl_role);
	if (w == 0) {
		if ((g = wl_fork("G")) == 0) {
			child(4);
			return;
		}
		wl_wait_mark("G");
	}
	wl_tree_line();
	wl_mark(wl_role);
	wl_tree_wait_stop();
	if (g && kill(g, SIGTERM))
		wl_fail("%s: kill(G %d, SIGTERM): %s", wl_role, g, strerror(errno));
	if (wl_corrupt)
		region[5 * PAGE] ^= 1;
	check_contents();
	check_shared("after the restore");
	if (g)
		wl_reap_ok(g, "G");
	wl_check_no_children();
	wl_child_exit();
}

int main(int argc, char **argv)
{
	char name[8];
	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	region = mmap(NULL, REGION_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	/* Each page its own pattern, so a page in the wrong place shows. */
	for (unsigned long i = 0; i < NPAGES; i++)
		wl_fill(region + i * PAGE, PAGE, NPAGES + i);
	for (int w = 0; w < NWORKERS; w++) {
		snprintf(name, sizeof(name), "W%d", w);
		if ((kids[w] = wl_fork(strdup(name))) == 0) {
			child(w);
			return 0;
		}
	}
	for (int w = 0; w < NWORKERS; w++) {
		snprintf(name, sizeof(name), "W%d", w);
		wl_wait_mark(name);
	}
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();
	for (int w = 0; w < NWORKERS; w++)
		if (kill(kids[w], SIGTERM))
			wl_fail("root: kill(W%d %d, SIGTERM): %s", w, kids[w], strerror(errno));
	check_contents();
	for (int w = 0; w < NWORKERS; w++)
		wl_reap_ok(kids[w], "worker");
	wl_check_no_children();
	return wl_finish();
}
