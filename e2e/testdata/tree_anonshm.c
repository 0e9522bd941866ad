/*
 * tree_anonshm: a shell above a program that shares a large anonymous
 * MAP_SHARED area with the workers it forked
 *
 *   sh -c "'tree_anonshm'; exit \$?"
 *
 * The root of the tree is sh, which does not hold the area: it lies
 * outside the subtree that shares it (a restore once unmapped the root's
 * scratch memory at the area's staging address and failed).
 *
 * owner (sh's child): maps 64 MiB MAP_SHARED|MAP_ANONYMOUS; every 8th page
 *        holds a pattern, the others are zero; forks 3 workers; once each
 *        wrote its token into page 1+i, prints TREE lines for sh, itself
 *        and the workers and READY for sh.
 * worker i: writes its token into page 1+i, then waits for the file
 *        "stop" in the cwd.
 *
 * Once "stop" exists each process checks the whole area (pattern pages,
 * zero pages, the three tokens) and its ids; then it proves the area is
 * still one memory: each worker writes a second token into word 1 of its
 * page, the owner waits for all three, writes an acknowledgement into page
 * 4, which each worker must see; the owner reaps the workers and prints
 * PASS or FAIL lines, exiting 0 or 1 (sh's exit status). The owner also
 * checks the area's /proc/self/maps line (rw-s, /dev/zero).
 *
 * WL_CORRUPT=1: the owner damages a pattern page once "stop" exists.
 */
#include "wl.h"

#define PG 4096
#define AREA_LEN (64ul << 20)
#define NWORKERS 3
#define SEED 0xa5a5
#define ACK_PAGE 4
#define ACK 0xacc0acc0acc0ull

static char *area;

static int stop_requested(void) { return access("stop", F_OK) == 0; }

static uint64_t token(int i, int round) { return 0x70c0000000ull + (uint64_t)round * 0x100 + (uint64_t)i; }

/* Waits for "stop", at most about 10 minutes (a test that died). */
static void wait_stop(void)
{
	for (long n = 0; !stop_requested(); n++) {
		if (n >= 30000) {
			wl_fail("%s[%d]: no stop file within 10 minutes: giving up", wl_role, (int)wl_exp_pid);
			fflush(stdout);
			_exit(1);
		}
		wl_msleep(20);
	}
}

/* Waits (about 30 s at most) until word w of page pg holds want. */
static int wait_word(size_t pg, int w, uint64_t want)
{
	volatile uint64_t *q = (volatile uint64_t *)(area + pg * PG);
	for (int n = 0; n < 3000; n++) {
		if (q[w] == want)
			return 1;
		wl_msleep(10);
	}
	return q[w] == want;
}

/* Checks every page of the area: patterns, zeros and round-0 tokens. */
static void check_area(void)
{
	int bad = 0;
	for (size_t pg = 0; pg < AREA_LEN / PG && bad < 5; pg++) {
		char *p = area + pg * PG;
		long i;
		if (pg % 8 == 0) {
			i = wl_verify(p, PG, SEED + pg);
			TCHECK(i < 0, "page %zu: pattern differs at word %ld", pg, i);
		} else if (pg >= 1 && pg <= NWORKERS) {
			uint64_t got = *(volatile uint64_t *)p;
			TCHECK(got == token((int)pg - 1, 0), "page %zu: token %#llx, want %#llx", pg,
			       (unsigned long long)got, (unsigned long long)token((int)pg - 1, 0));
			i = wl_verify_zero(p + 16, PG - 16);
			TCHECK(i < 0, "page %zu: not zero after the tokens at word %ld", pg, i);
			continue;
		} else if (pg == ACK_PAGE) {
			continue;
		} else {
			i = wl_verify_zero(p, PG);
			TCHECK(i < 0, "page %zu: not zero at word %ld", pg, i);
		}
		bad += i >= 0;
	}
}

static void worker(int i)
{
	volatile uint64_t *mine = (volatile uint64_t *)(area + (size_t)(1 + i) * PG);
	wl_exp_pid = getpid();
	wl_exp_ppid = getppid();
	wl_exp_pgid = getpgrp();
	wl_exp_sid = getsid(0);
	mine[0] = token(i, 0);
	wait_stop();
	wl_tree_check_ids();
	check_area();
	mine[1] = token(i, 1);
	TCHECK(wait_word(ACK_PAGE, 0, ACK), "the owner's acknowledgement never appeared: the area is not shared");
	fflush(stdout);
	_exit(atomic_load(&wl_fails) ? 1 : 0);
}

/* Prints one TREE line for pid from /proc. */
static void tree_line(pid_t pid, const char *role)
{
	char path[64], buf[1024], *p;
	int ppid, pgid, sid;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')) ||
	    sscanf(p + 2, "%*c %d %d %d", &ppid, &pgid, &sid) != 3)
		wl_die("/proc/%d/stat", pid);
	printf("TREE pid=%d ppid=%d pgid=%d sid=%d role=%s\n", pid, ppid, pgid, sid, role);
}

/* The area's line in /proc/self/maps must say shared, /dev/zero. */
static void check_maps(void)
{
	static char buf[1 << 16];
	char want[64], *l;
	snprintf(want, sizeof(want), "%lx-%lx rw-s ", (unsigned long)area, (unsigned long)area + AREA_LEN);
	if (wl_read_file("/proc/self/maps", buf, sizeof(buf)) <= 0)
		wl_die("read /proc/self/maps");
	l = strstr(buf, want);
	TCHECK(l != NULL, "no line %s in /proc/self/maps", want);
	if (l) {
		char *e = strchr(l, '\n');
		if (e)
			*e = 0;
		TCHECK(strstr(l, "/dev/zero") != NULL, "maps line %s does not name /dev/zero", l);
	}
}

int main(int argc, char **argv)
{
	pid_t sh = getppid(), w[NWORKERS];
	wl_init(argc, argv);
	wl_role = "owner";
	wl_exp_pid = getpid();
	wl_exp_ppid = sh;
	wl_exp_pgid = getpgrp();
	wl_exp_sid = getsid(0);
	area = mmap(NULL, AREA_LEN, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		wl_die("mmap %lu bytes: %s", AREA_LEN, strerror(errno));
	for (size_t pg = 0; pg < AREA_LEN / PG; pg += 8)
		wl_fill(area + pg * PG, PG, SEED + pg);
	for (int i = 0; i < NWORKERS; i++) {
		char role[16];
		snprintf(role, sizeof(role), "worker%d", i);
		w[i] = wl_fork(role);
		if (w[i] == 0)
			worker(i);
	}
	for (int i = 0; i < NWORKERS; i++)
		if (!wait_word((size_t)(1 + i), 0, token(i, 0)))
			wl_die("worker %d never wrote its token", i);
	check_maps();
	flockfile(stdout);
	tree_line(sh, "sh");
	tree_line(getpid(), "owner");
	for (int i = 0; i < NWORKERS; i++) {
		char role[16];
		snprintf(role, sizeof(role), "worker%d", i);
		tree_line(w[i], role);
	}
	printf("READY pid=%d tids=%d\n", sh, sh);
	fflush(stdout);
	funlockfile(stdout);

	wait_stop();
	if (wl_corrupt)
		area[8 * PG + 100] ^= 1;
	wl_tree_check_ids();
	check_maps();
	check_area();
	for (int i = 0; i < NWORKERS; i++)
		TCHECK(wait_word((size_t)(1 + i), 1, token(i, 1)), "worker %d's second token never appeared: the area is not shared", i);
	*(volatile uint64_t *)(area + ACK_PAGE * PG) = ACK;
	for (int i = 0; i < NWORKERS; i++) {
		int st = 0;
		pid_t r;
		do
			r = waitpid(w[i], &st, 0);
		while (r < 0 && errno == EINTR);
		TCHECK(r == w[i] && WIFEXITED(st) && WEXITSTATUS(st) == 0, "worker %d (pid %d) ended with status %#x", i, (int)w[i], st);
	}
	if (atomic_load(&wl_fails) == 0)
		printf("PASS\n");
	fflush(stdout);
	return atomic_load(&wl_fails) ? 1 : 0;
}
