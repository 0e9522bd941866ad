/*
 * tree_basic: a process tree with process groups and sessions.
 *
 *   root (session leader: the harness starts it with setsid)
 *   +-- A            plain child (root's group and session)
 *   |   +-- A1       setpgid(0, 0): leader of its own group
 *   |   +-- A2       setpgid(0, A1): joins its sibling's group
 *   +-- B            setsid(): new session and group
 *   |   +-- B1       member of B's session and group (forked after setsid)
 *   +-- C            setpgid(0, 0); 3 threads
 *
 * Every process checks getpid/getppid/getpgrp/getsid, its own memory
 * (private anonymous region and heap block with its own pattern), the pages
 * inherited from the root and from its parent (one page of the root's
 * region overwritten after fork, the rest untouched: copy-on-write sharing),
 * and that it can reap its children (exit status 0) and has no other child.
 * C's worker threads check their TIDs.
 *
 * Mode "orphan-pgrp" adds root's children D and E: D makes its own group, E
 * joins it, D exits and root reaps it. E keeps the group id D whose leader is
 * gone (a restore needs a placeholder process at PID D to recreate the
 * group, which must be gone again afterwards): E checks getpgrp() == D,
 * kill(-D, 0) works and no process D exists (kill(D, 0) gives ESRCH).
 *
 * Mode "iouring": A2 also holds an io_uring fd, which cryo cannot dump (it
 * prints "IOURING pid=<A2> fd=<n>"); used to test that a failing tree dump
 * leaves the whole tree running.
 */
#include "wl.h"

#define REGION_LEN (256 << 10)
#define HEAP_LEN (64 << 10)
#define INHERIT_LEN (128 << 10)
#define PAGE 4096

static struct wl_region own;
static uint64_t *heap_block;
static uint64_t heap_seed;
static uint64_t own_seed;
/* The root's region: every process overwrites its first page after fork
 * (own seed + 2), the other pages keep the root's pattern (seed 1). */
static uint64_t *inherit;
/* A's region, made before it forks A1 and A2, untouched by them. */
static struct wl_region a_region;
static int have_a_region;

static pid_t kids[8];
static const char *kid_names[8];
static int nkids;
static int iouring_fd = -1;

static atomic_int c_stop;
static pthread_t c_threads[3];

static void setup_memory(uint64_t seed)
{
	own_seed = seed;
	wl_region_new(&own, REGION_LEN, seed, "own region");
	heap_seed = seed + 1;
	heap_block = malloc(HEAP_LEN);
	if (!heap_block)
		wl_die("%s: malloc", wl_role);
	wl_fill(heap_block, HEAP_LEN, heap_seed);
	if (strcmp(wl_role, "root") != 0)
		wl_fill(inherit, PAGE, seed + 2);
}

static void check_memory(void)
{
	long bad;
	wl_region_check(&own);
	bad = wl_verify(heap_block, HEAP_LEN, heap_seed);
	TCHECK(bad < 0, "heap block: word %ld differs", bad);
	if (strcmp(wl_role, "root") == 0) {
		bad = wl_verify(inherit, INHERIT_LEN, 1);
		TCHECK(bad < 0, "root region: word %ld differs", bad);
	} else {
		bad = wl_verify(inherit, PAGE, own_seed + 2);
		TCHECK(bad < 0, "first page of the region inherited from root (written after fork): word %ld differs",
		       bad);
		/* the other pages: root's pattern, with the offset of page 1 */
		for (size_t i = PAGE / 8; i < INHERIT_LEN / 8; i++)
			if (inherit[i] != wl_pat(1, i)) {
				wl_fail("%s[%d]: region inherited from root (untouched after fork): word %zu differs",
					wl_role, (int)wl_exp_pid, i);
				break;
			}
	}
	if (have_a_region)
		wl_region_check(&a_region);
}

/* wl_fork for this workload: a new process has no children of its own. */
static pid_t fork_kid(const char *role)
{
	pid_t p = wl_fork(role);
	if (p == 0)
		nkids = 0;
	return p;
}

static void add_kid(pid_t pid, const char *name)
{
	kids[nkids] = pid;
	kid_names[nkids] = name;
	nkids++;
}

static void corrupt(void)
{
	/* damage the memory, the expected ids, and the group */
	own.p[100] ^= 1;
	heap_block[7] ^= 1;
	inherit[INHERIT_LEN / 8 - 1] ^= 1;
	inherit[0] ^= 1;
	if (have_a_region)
		a_region.p[3] ^= 1;
	wl_exp_ppid += 100000;
	wl_exp_sid += 100000;
	if (getpgrp() != getpid())
		setpgid(0, 0);
	else
		wl_exp_pgid += 100000;
}

static void *c_worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	while (!atomic_load(&c_stop))
		wl_msleep(10);
	{
		pid_t tid = wl_gettid(), pid = getpid();
		TCHECK(tid == wl_tids[idx], "thread %d: gettid() = %d, want %d", idx, tid, wl_tids[idx]);
		TCHECK(pid == wl_exp_pid, "thread %d: getpid() = %d, want %d", idx, pid, wl_exp_pid);
	}
	return NULL;
}

/* The common part of every process: TREE line, mark, wait for SIGTERM,
 * pass it on, check, reap. Does not return for non-root processes. */
static void run_node(void)
{
	wl_tree_line();
	if (strcmp(wl_role, "root") == 0)
		return;
	wl_mark(wl_role);
	wl_tree_wait_stop();
	for (int i = 0; i < nkids; i++)
		if (kill(kids[i], SIGTERM))
			wl_fail("%s: kill(%s %d, SIGTERM): %s", wl_role, kid_names[i], kids[i], strerror(errno));
	if (wl_corrupt)
		corrupt();
	wl_tree_check_ids();
	check_memory();
	if (strcmp(wl_role, "C") == 0) {
		atomic_store(&c_stop, 1);
		wl_join(c_threads, 3);
	}
	if (strcmp(wl_role, "E") == 0) {
		pid_t d = wl_exp_pgid;
		errno = 0;
		TCHECK(kill(d, 0) == -1 && errno == ESRCH,
		       "the exited group leader's pid %d exists again (kill(%d, 0): %s); a placeholder left behind?", d,
		       d, errno ? strerror(errno) : "ok");
		TCHECK(kill(-d, 0) == 0, "kill(-%d, 0): %s: the process group without leader is gone", d,
		       strerror(errno));
	}
	if (iouring_fd >= 0) {
		struct stat st;
		TCHECK(fstat(iouring_fd, &st) == 0, "io_uring fd %d: %s", iouring_fd, strerror(errno));
	}
	for (int i = 0; i < nkids; i++)
		wl_reap_ok(kids[i], kid_names[i]);
	wl_check_no_children();
	wl_child_exit();
}

static void child_a1(void)
{
	if (setpgid(0, 0))
		wl_die("A1: setpgid(0, 0): %s", strerror(errno));
	setup_memory(21);
	run_node();
}

static void child_a2(pid_t a1)
{
	if (setpgid(0, a1))
		wl_die("A2: setpgid(0, %d): %s", a1, strerror(errno));
	setup_memory(22);
	if (strcmp(wl_mode, "iouring") == 0) {
		unsigned char params[120];
		memset(params, 0, sizeof(params));
		iouring_fd = (int)syscall(425 /* io_uring_setup */, 4, params);
		if (iouring_fd < 0)
			wl_die("A2: io_uring_setup: %s", strerror(errno));
		printf("IOURING pid=%d fd=%d\n", (int)getpid(), iouring_fd);
		fflush(stdout);
	}
	run_node();
}

static void child_a(void)
{
	pid_t p;
	setup_memory(20);
	wl_region_new(&a_region, 64 << 10, 50, "A's region (inherited by A1, A2)");
	have_a_region = 1;
	if ((p = fork_kid("A1")) == 0)
		child_a1();
	add_kid(p, "A1");
	wl_wait_mark("A1");
	if ((p = fork_kid("A2")) == 0)
		child_a2(kids[0]);
	add_kid(p, "A2");
	wl_wait_mark("A2");
	run_node();
}

static void child_b1(void)
{
	setup_memory(31);
	run_node();
}

static void child_b(void)
{
	pid_t p;
	if (setsid() < 0)
		wl_die("B: setsid: %s", strerror(errno));
	setup_memory(30);
	if ((p = fork_kid("B1")) == 0)
		child_b1();
	add_kid(p, "B1");
	wl_wait_mark("B1");
	run_node();
}

static void child_c(void)
{
	if (setpgid(0, 0))
		wl_die("C: setpgid(0, 0): %s", strerror(errno));
	setup_memory(40);
	wl_nthreads = 3;
	for (int i = 1; i < 3; i++)
		if (pthread_create(&c_threads[i], NULL, c_worker, (void *)(long)i))
			wl_die("C: pthread_create");
	wl_wait_started(2);
	run_node();
}

static void child_d(void)
{
	if (setpgid(0, 0))
		wl_die("D: setpgid(0, 0): %s", strerror(errno));
	wl_mark("D");
	/* stay until E has joined the group, then exit */
	wl_wait_mark("E");
	fflush(stdout);
	_exit(0);
}

static void child_e(pid_t d)
{
	if (setpgid(0, d))
		wl_die("E: setpgid(0, %d): %s", d, strerror(errno));
	setup_memory(60);
	run_node();
}

int main(int argc, char **argv)
{
	pid_t p, d = 0;
	int orphan_pgrp;

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	orphan_pgrp = strcmp(wl_mode, "orphan-pgrp") == 0;
	if (wl_mode[0] && !orphan_pgrp && strcmp(wl_mode, "iouring") != 0)
		wl_die("unknown mode '%s' (orphan-pgrp, iouring)", wl_mode);
	if (wl_nthreads != 1)
		wl_die("tree_basic is single-threaded at the root (C has 3 threads)");
	if (strcmp(wl_mode, "iouring") == 0) {
		unsigned char params[120];
		int fd;
		memset(params, 0, sizeof(params));
		fd = (int)syscall(425 /* io_uring_setup */, 4, params);
		if (fd < 0)
			wl_skip("io_uring_setup: %s", strerror(errno));
		close(fd);
	}

	inherit = mmap(NULL, INHERIT_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (inherit == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(inherit, INHERIT_LEN, 1);
	setup_memory(10);

	if ((p = fork_kid("A")) == 0)
		child_a();
	add_kid(p, "A");
	if ((p = fork_kid("B")) == 0)
		child_b();
	add_kid(p, "B");
	if ((p = fork_kid("C")) == 0)
		child_c();
	add_kid(p, "C");
	if (orphan_pgrp) {
		if ((d = fork_kid("D")) == 0)
			child_d();
		wl_wait_mark("D");
		if ((p = fork_kid("E")) == 0)
			child_e(d);
		add_kid(p, "E");
	}
	wl_wait_mark("A");
	wl_wait_mark("B");
	wl_wait_mark("C");
	if (orphan_pgrp) {
		int st = 0;
		wl_wait_mark("E");
		if (wl_reap(d, "D", &st, 8000) || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			wl_die("D (pid %d) did not exit 0 (status %#x)", d, st);
		printf("INFO: group %d has lost its leader; E keeps it\n", d);
	}
	run_node();
	wl_ready();
	wl_tree_wait_stop();

	for (int i = 0; i < nkids; i++)
		if (kill(kids[i], SIGTERM))
			wl_fail("root: kill(%s %d, SIGTERM): %s", kid_names[i], kids[i], strerror(errno));
	if (wl_corrupt)
		corrupt();
	wl_check_ids(0);
	wl_tree_check_ids();
	check_memory();
	for (int i = 0; i < nkids; i++)
		wl_reap_ok(kids[i], kid_names[i]);
	wl_check_no_children();
	return wl_finish();
}
