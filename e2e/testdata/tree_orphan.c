/*
 * tree_orphan: a grandchild whose parent exited (reparented).
 *
 *   root            mode "subreaper": prctl(PR_SET_CHILD_SUBREAPER)
 *   +-- N           plain live child
 *   +-- P           maps a region, forks G, waits until G is set up, exit(3);
 *       |           root reaps it (before READY)
 *       +-- G       orphaned: reparented
 *
 * Mode "subreaper": G is reparented to root and so is root's child: G
 * checks getppid() == root, root checks it is still a child subreaper
 * (PR_GET_CHILD_SUBREAPER), that G is its child (waitid WNOHANG|WNOWAIT:
 * no ECHILD) and reaps G (exit 0) after SIGTERMing it.
 *
 * Mode "outside": root is no subreaper, so G is reparented above the tree
 * (to the nearest subreaper: the test process, or init) while staying in
 * root's session and process group. A dump of root must refuse this tree,
 * naming G's pid (G is in the tree's session but not in the tree: it would
 * be lost, and a restored session could not be rebuilt beside it). After
 * SIGTERM root SIGTERMs G (not its child) and reads G's verdict from the
 * file wl-verdict.G (bounded wait).
 *
 * Every process checks its ids and memory; G also the region it inherited
 * from P, which exists nowhere else any more.
 */
#include "wl.h"

static struct wl_region own, from_p;
static int have_from_p;
static int outside;

static void corrupt(void)
{
	own.p[9] ^= 1;
	if (have_from_p)
		from_p.p[9] ^= 1;
	wl_exp_ppid += 100000;
	wl_exp_pgid += 100000;
	wl_exp_sid += 100000;
}

static void check_self(void)
{
	if (wl_corrupt)
		corrupt();
	wl_tree_check_ids();
	wl_region_check(&own);
	if (have_from_p)
		wl_region_check(&from_p);
}

static void write_verdict(int fails)
{
	int fd = open(".wl-verdict.G", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd >= 0) {
		if (write(fd, fails ? "1\n" : "0\n", 2) != 2)
			wl_fail("G: write verdict: %s", strerror(errno));
		close(fd);
		rename(".wl-verdict.G", "wl-verdict.G");
	}
}

static void child_g(pid_t p)
{
	wl_region_new(&own, 128 << 10, 80, "G's own region");
	wl_mark("G-setup");
	/* P exits now: wait until we are reparented */
	for (int i = 0; i < 8000 && getppid() == p; i++)
		wl_msleep(1);
	if (getppid() == p)
		wl_die("G: still a child of P (%d) after 8 s", p);
	wl_tree_line();
	wl_mark("G");
	wl_tree_wait_stop();
	check_self();
	if (outside)
		write_verdict(atomic_load(&wl_fails));
	wl_child_exit();
}

static void child_p(void)
{
	pid_t g;
	wl_region_new(&from_p, 192 << 10, 70, "region made by P before forking G (P is gone)");
	have_from_p = 1;
	if ((g = wl_fork("G")) == 0)
		child_g(getppid());
	wl_wait_mark("G-setup");
	fflush(stdout);
	_exit(3);
}

static void child_n(void)
{
	wl_region_new(&own, 64 << 10, 90, "N's region");
	wl_tree_line();
	wl_mark("N");
	wl_tree_wait_stop();
	check_self();
	wl_check_no_children();
	wl_child_exit();
}

/* 1 if pid is our child (exited or not), 0 if not (ECHILD). */
static int is_child(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	return waitid(P_PID, pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0;
}

int main(int argc, char **argv)
{
	pid_t n, p, g;
	int st = 0, subreaper = -1;

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (strcmp(wl_mode, "subreaper") == 0)
		outside = 0;
	else if (strcmp(wl_mode, "outside") == 0)
		outside = 1;
	else
		wl_die("mode must be subreaper or outside, not '%s'", wl_mode);
	if (wl_nthreads != 1)
		wl_die("tree_orphan takes no threads");
	if (!outside && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
		wl_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	wl_region_new(&own, 256 << 10, 10, "root's region");

	if ((n = wl_fork("N")) == 0)
		child_n();
	if ((p = wl_fork("P")) == 0)
		child_p();
	if (wl_reap(p, "P", &st, 8000) || !WIFEXITED(st) || WEXITSTATUS(st) != 3)
		wl_die("P (pid %d) did not exit(3): status %#x", p, st);
	g = wl_wait_mark("G");
	wl_wait_mark("N");
	if (is_child(g) != !outside)
		wl_die("G (pid %d) is %sroot's child", g, outside ? "" : "not ");
	printf("INFO: G (pid %d) was reparented to %s\n", g, outside ? "a process outside the tree" : "root");
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt)
		prctl(PR_SET_CHILD_SUBREAPER, outside, 0, 0, 0);
	prctl(PR_GET_CHILD_SUBREAPER, &subreaper, 0, 0, 0);
	TCHECK(subreaper == !outside, "PR_GET_CHILD_SUBREAPER = %d, want %d", subreaper, !outside);
	TCHECK(is_child(g) == !outside, "G (pid %d) is %sroot's child", g, outside ? "" : "not ");
	if (kill(n, SIGTERM))
		wl_fail("root: kill(N %d, SIGTERM): %s", n, strerror(errno));
	if (kill(g, SIGTERM))
		wl_fail("root: kill(G %d, SIGTERM): %s", g, strerror(errno));
	check_self();
	wl_check_ids(0);
	wl_reap_ok(n, "N");
	if (outside) {
		char buf[16];
		int i;
		for (i = 0; i < 10000 && wl_read_file("wl-verdict.G", buf, sizeof(buf)) <= 0; i++)
			wl_msleep(1);
		if (i == 10000)
			wl_fail("root: G (pid %d, outside the tree) gave no verdict within 10 s", g);
		else
			TCHECK(buf[0] == '0', "G (pid %d, outside the tree) failed its checks", g);
	} else {
		wl_reap_ok(g, "G");
	}
	wl_check_no_children();
	return wl_finish();
}
