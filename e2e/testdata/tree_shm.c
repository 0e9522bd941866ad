/*
 * tree_shm: shared memory inherited by the children of a tree.
 *
 *   root  maps, before forking:
 *         ANON  4 MiB MAP_SHARED|MAP_ANONYMOUS: pages i%3==0 (i<600) hold a
 *               pattern, B wrote page 2 (after fork), the rest was never
 *               touched (zero);
 *         MEMFD memfd_create("cryo-shm-test", MFD_ALLOW_SEALING), 1 MiB:
 *               the first 512 KiB written with pwrite, A wrote page 200
 *               through its mapping, the rest is a hole; mapped MAP_SHARED;
 *               seals F_SEAL_SHRINK|F_SEAL_GROW; the fd stays open at
 *               offset 777;
 *         SHMF  /dev/shm/cryo-shm-test.<root pid>, 256 KiB: even pages
 *               written with write(), B wrote page 63, the rest a hole;
 *               mapped MAP_SHARED, fd closed, unlinked by the root at the end
 *         GHOST ghost-shm.dat in the cwd, 128 KiB: pages i%4==0 written with
 *               write(), A wrote page 9, the rest a hole; mapped MAP_SHARED
 *               and unlinked before the fork; the root keeps its fd (O_RDWR)
 *   +-- A  inherits all three
 *   +-- B  inherits all three
 *
 * After SIGTERM every process checks the contents of the three regions
 * (pattern pages, the pages the children wrote, zero pages), their
 * /proc/self/maps perms and path, and the memfd's fd (link
 * /memfd:cryo-shm-test, F_GET_SEALS, offset 777, size); then it proves the
 * memory is still shared: once A and B marked "X.checked", the root writes a
 * token into word 0 of each region and marks "tokens"; A and B must see the
 * tokens and write their own into words 1 and 2, mark "X.back"; the root
 * must see those, and so must pread() on the deleted file's fd. After
 * restore nothing may be left at the deleted file's path.
 */
#include "wl.h"

#define PG 4096
#define ANON_LEN (4 << 20)
#define MEMFD_LEN (1 << 20)
#define SHMF_LEN (256 << 10)
#define GHOST_LEN (128 << 10)
#define GHOST_NAME "ghost-shm.dat"
#define MEMFD_NAME "cryo-shm-test"
#define MEMFD_POS 777
#define WANT_SEALS (F_SEAL_SHRINK | F_SEAL_GROW)

enum { R_ANON, R_MEMFD, R_SHMF, R_GHOST, NREG };

struct region {
	const char *what;
	char *p;
	size_t len;
	char perms[8], path[256]; /* from /proc/self/maps before READY */
};

static struct region reg[NREG];
static int memfd = -1, ghost_fd = -1;
static char memfd_link[256], shm_path[128], ghost_path[PATH_MAX];
static int role_idx; /* 0 root, 1 A, 2 B */

/* Seed of page i of region r, or 0 for a page that must be zero. */
static uint64_t page_seed(int r, size_t i)
{
	switch (r) {
	case R_ANON:
		if (i == 2)
			return 7002; /* written by B */
		return (i % 3 == 0 && i < 600) ? 100 + i : 0;
	case R_MEMFD:
		if (i == 200)
			return 8200; /* written by A */
		return i < 128 ? 2000 + i : 0;
	case R_GHOST:
		if (i == 9)
			return 6009; /* written by A */
		return i % 4 == 0 ? 4000 + i : 0;
	default:
		if (i == 63)
			return 9063; /* written by B */
		return i % 2 == 0 ? 3000 + i : 0;
	}
}

static uint64_t root_token(int r) { return 0xC0FFEE0000000000ull | ((uint64_t)r << 8) | 0x11; }
static uint64_t child_token(int r, int idx) { return 0xB0B0000000000000ull | ((uint64_t)r << 8) | (uint64_t)idx; }
static volatile uint64_t *word(int r, int i) { return (volatile uint64_t *)reg[r].p + i; }

static void fill_page(int r, size_t i) { wl_fill(reg[r].p + i * PG, PG, page_seed(r, i)); }

static void gen_page(char *buf, int r, size_t i) { wl_fill(buf, PG, page_seed(r, i)); }

static void maps_entry(const char *p, char *perms, char *path)
{
	static char buf[1 << 16];
	char *save = NULL;
	perms[0] = path[0] = 0;
	if (wl_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		return;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long start;
		int n = 0;
		if (sscanf(l, "%lx-%*x %7s %*s %*s %*s %n", &start, perms, &n) < 2 || start != (unsigned long)p)
			continue;
		snprintf(path, 256, "%s", n ? l + n : "");
		return;
	}
	perms[0] = 0;
}

static void record(void)
{
	ssize_t n;
	char path[64];
	for (int r = 0; r < NREG; r++)
		maps_entry(reg[r].p, reg[r].perms, reg[r].path);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	n = readlink(path, memfd_link, sizeof(memfd_link) - 1);
	memfd_link[n < 0 ? 0 : n] = 0;
}

static void check_regions(void)
{
	for (int r = 0; r < NREG; r++) {
		struct region *g = &reg[r];
		char perms[8], path[256];
		long bad_pat = 0, bad_zero = 0, first = -1;
		for (size_t i = 0; i < g->len / PG; i++) {
			uint64_t s = page_seed(r, i);
			long w = s ? wl_verify(g->p + i * PG, PG, s) : wl_verify_zero(g->p + i * PG, PG);
			if (w >= 0) {
				if (first < 0)
					first = (long)i;
				if (s)
					bad_pat++;
				else
					bad_zero++;
			}
		}
		TCHECK(first < 0, "%s: %ld pattern page(s) and %ld never-touched (zero) page(s) differ, first page %ld",
		       g->what, bad_pat, bad_zero, first);
		maps_entry(g->p, perms, path);
		TCHECK(strcmp(perms, g->perms) == 0 && strcmp(path, g->path) == 0,
		       "%s at %p: /proc/self/maps says \"%s %s\", want \"%s %s\"", g->what, (void *)g->p, perms, path,
		       g->perms, g->path);
	}
}

static void check_memfd(void)
{
	char path[64], link[256];
	ssize_t n;
	struct stat st;
	int seals = fcntl(memfd, F_GET_SEALS);
	off_t pos = lseek(memfd, 0, SEEK_CUR);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	n = readlink(path, link, sizeof(link) - 1);
	link[n < 0 ? 0 : n] = 0;
	TCHECK(strncmp(link, "/memfd:" MEMFD_NAME, strlen("/memfd:" MEMFD_NAME)) == 0 && strcmp(link, memfd_link) == 0,
	       "memfd fd %d: link \"%s\", want \"%s\"", memfd, link, memfd_link);
	TCHECK(seals == WANT_SEALS, "memfd fd %d: F_GET_SEALS %#x, want %#x (SHRINK|GROW)", memfd, seals, WANT_SEALS);
	TCHECK(pos == MEMFD_POS, "memfd fd %d: offset %ld, want %d", memfd, (long)pos, MEMFD_POS);
	TCHECK(fstat(memfd, &st) == 0 && st.st_size == MEMFD_LEN, "memfd fd %d: size %ld, want %d", memfd,
	       (long)st.st_size, MEMFD_LEN);
}

static void *xmap(size_t len, int flags, int fd, void *at)
{
	void *p = mmap(at, len, PROT_READ | PROT_WRITE, flags | (at ? MAP_FIXED : 0), fd, 0);
	if (p == MAP_FAILED)
		wl_die("%s: mmap %zu: %s", wl_role, len, strerror(errno));
	return p;
}

/* WL_CORRUPT: turn a shared region into a private copy with the same data
 * (as a restore that lost the sharing would). */
static void make_private_copy(int r)
{
	void *tmp = xmap(reg[r].len, MAP_PRIVATE | MAP_ANONYMOUS, -1, NULL);
	memcpy(tmp, reg[r].p, reg[r].len);
	if (mremap(tmp, reg[r].len, reg[r].len, MREMAP_MAYMOVE | MREMAP_FIXED, reg[r].p) == MAP_FAILED)
		wl_die("%s: mremap: %s", wl_role, strerror(errno));
}

/* Creates the file of region r at path, writes its pattern pages (every
 * step-th page, the rest a hole), maps it MAP_SHARED and returns its fd. */
static int map_new_file(int r, const char *path, mode_t mode, size_t step)
{
	static char buf[PG];
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		wl_die("create %s: %s", path, strerror(errno));
	if (ftruncate(fd, (off_t)reg[r].len))
		wl_die("ftruncate %s: %s", path, strerror(errno));
	for (size_t i = 0; i < reg[r].len / PG; i += step) {
		gen_page(buf, r, i);
		if (pwrite(fd, buf, PG, (off_t)(i * PG)) != PG)
			wl_die("write %s: %s", path, strerror(errno));
	}
	reg[r].p = xmap(reg[r].len, MAP_SHARED, fd, NULL);
	return fd;
}

static void child(void)
{
	char mark[32];
	wl_tree_line();
	wl_mark(wl_role);
	wl_tree_wait_stop();
	if (wl_corrupt) {
		if (role_idx == 1) {
			make_private_copy(R_ANON);
		} else {
			/* private file mapping: sees the root's writes until
			 * B writes (COW) */
			xmap(MEMFD_LEN, MAP_PRIVATE, memfd, reg[R_MEMFD].p);
			*word(R_MEMFD, 5 * PG / 8) ^= 1;
		}
	}
	wl_tree_check_ids();
	check_regions();
	check_memfd();
	snprintf(mark, sizeof(mark), "%s.checked", wl_role);
	wl_mark(mark);
	if (wl_await_mark("tokens", 5000)) {
		for (int r = 0; r < NREG; r++) {
			uint64_t got = *word(r, 0);
			TCHECK(got == root_token(r), "%s: word 0 is %#llx, want the root's token %#llx: not shared",
			       reg[r].what, (unsigned long long)got, (unsigned long long)root_token(r));
			*word(r, role_idx) = child_token(r, role_idx);
		}
	}
	snprintf(mark, sizeof(mark), "%s.back", wl_role);
	wl_mark(mark);
	wl_check_no_children();
	wl_child_exit();
}

int main(int argc, char **argv)
{
	static char buf[PG];
	const char *roles[] = {"root", "A", "B"};
	pid_t kids[3] = {0};
	int fd;

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (wl_mode[0] || wl_nthreads != 1)
		wl_die("tree_shm takes no mode and no threads");

	/* ANON */
	reg[R_ANON] = (struct region){.what = "MAP_SHARED|MAP_ANONYMOUS 4 MiB", .len = ANON_LEN};
	reg[R_ANON].p = xmap(ANON_LEN, MAP_SHARED | MAP_ANONYMOUS, -1, NULL);
	for (size_t i = 0; i < ANON_LEN / PG; i++)
		if (page_seed(R_ANON, i) && i != 2)
			fill_page(R_ANON, i);

	/* MEMFD */
	memfd = memfd_create(MEMFD_NAME, MFD_ALLOW_SEALING);
	if (memfd < 0)
		wl_die("memfd_create: %s", strerror(errno));
	if (ftruncate(memfd, MEMFD_LEN))
		wl_die("ftruncate memfd: %s", strerror(errno));
	for (size_t i = 0; i < 128; i++) {
		gen_page(buf, R_MEMFD, i);
		if (pwrite(memfd, buf, PG, (off_t)(i * PG)) != PG)
			wl_die("pwrite memfd: %s", strerror(errno));
	}
	if (fcntl(memfd, F_ADD_SEALS, WANT_SEALS))
		wl_die("F_ADD_SEALS: %s", strerror(errno));
	reg[R_MEMFD] = (struct region){.what = "memfd " MEMFD_NAME " 1 MiB", .len = MEMFD_LEN};
	reg[R_MEMFD].p = xmap(MEMFD_LEN, MAP_SHARED, memfd, NULL);
	if (lseek(memfd, MEMFD_POS, SEEK_SET) != MEMFD_POS)
		wl_die("lseek memfd: %s", strerror(errno));

	/* GHOST */
	{
		char cwd[PATH_MAX - 32];
		if (!getcwd(cwd, sizeof(cwd)))
			wl_die("getcwd: %s", strerror(errno));
		snprintf(ghost_path, sizeof(ghost_path), "%s/" GHOST_NAME, cwd);
	}
	reg[R_GHOST] = (struct region){.what = "deleted " GHOST_NAME, .len = GHOST_LEN};
	ghost_fd = map_new_file(R_GHOST, ghost_path, 0640, 4);
	if (unlink(ghost_path))
		wl_die("unlink %s: %s", ghost_path, strerror(errno));

	/* SHMF */
	snprintf(shm_path, sizeof(shm_path), "/dev/shm/cryo-shm-test.%d", (int)wl_exp_pid);
	reg[R_SHMF] = (struct region){.what = shm_path, .len = SHMF_LEN};
	close(map_new_file(R_SHMF, shm_path, 0600, 2));
	record();
	if (strncmp(reg[R_MEMFD].path, "/memfd:" MEMFD_NAME, 7 + strlen(MEMFD_NAME)) != 0 ||
	    strcmp(reg[R_SHMF].path, shm_path) != 0 || strchr(reg[R_ANON].perms, 's') == NULL ||
	    strncmp(reg[R_GHOST].path, ghost_path, strlen(ghost_path)) != 0 || !strstr(reg[R_GHOST].path, "(deleted)"))
		wl_die("unexpected maps entries: \"%s\", \"%s\", \"%s\", anon perms \"%s\"", reg[R_MEMFD].path,
		       reg[R_SHMF].path, reg[R_GHOST].path, reg[R_ANON].perms);

	for (int k = 1; k <= 2; k++) {
		if ((kids[k] = wl_fork(roles[k])) == 0) {
			role_idx = k;
			if (k == 1) {
				fill_page(R_MEMFD, 200);
				fill_page(R_GHOST, 9);
			} else {
				fill_page(R_ANON, 2);
				fill_page(R_SHMF, 63);
			}
			child();
		}
		wl_wait_mark(roles[k]);
	}
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt) {
		lseek(memfd, 1, SEEK_CUR);
		fcntl(memfd, F_ADD_SEALS, F_SEAL_SEAL);
		*word(R_ANON, PG / 8) = 1; /* page 1: never touched */
		fd = open(shm_path, O_RDWR | O_CLOEXEC);
		xmap(SHMF_LEN, MAP_PRIVATE, fd, reg[R_SHMF].p);
		close(fd);
		make_private_copy(R_GHOST);
	}
	for (int k = 1; k <= 2; k++)
		if (kill(kids[k], SIGTERM))
			wl_fail("root: kill(%s %d): %s", roles[k], kids[k], strerror(errno));
	wl_check_ids(0);
	wl_tree_check_ids();
	check_regions();
	check_memfd();
	wl_await_mark("A.checked", 5000);
	wl_await_mark("B.checked", 5000);
	for (int r = 0; r < NREG; r++)
		*word(r, 0) = root_token(r);
	wl_mark("tokens");
	wl_await_mark("A.back", 5000);
	wl_await_mark("B.back", 5000);
	for (int r = 0; r < NREG; r++)
		for (int k = 1; k <= 2; k++) {
			uint64_t got = *word(r, k);
			TCHECK(got == child_token(r, k), "%s: word %d is %#llx, want %s's token %#llx: not shared",
			       reg[r].what, k, (unsigned long long)got, roles[k], (unsigned long long)child_token(r, k));
		}
	for (int k = 1; k <= 2; k++) {
		uint64_t got = 0;
		off_t at = (off_t)k * (off_t)sizeof(got);
		TCHECK(pread(ghost_fd, &got, sizeof(got), at) == (ssize_t)sizeof(got) && got == child_token(R_GHOST, k),
		       "%s: pread of word %d on its fd gives %#llx, want %s's token %#llx: fd and mapping not one file",
		       reg[R_GHOST].what, k, (unsigned long long)got, roles[k], (unsigned long long)child_token(R_GHOST, k));
	}
	TCHECK(access(ghost_path, F_OK) != 0, "a file is left at %s", ghost_path);
	for (int k = 1; k <= 2; k++)
		wl_reap_ok(kids[k], roles[k]);
	if (unlink(shm_path))
		wl_fail("root: unlink %s: %s", shm_path, strerror(errno));
	wl_check_no_children();
	return wl_finish();
}
