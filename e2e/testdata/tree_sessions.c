/*
 * tree_sessions: trees whose sessions and process groups were made, left
 * and made again in an order a restore cannot simply replay (parents
 * first, session leaders calling setsid before they fork, group leaders
 * leading their group). A few fixed shapes, each a mode:
 *
 * "old-session": A forks B, then A calls setsid; B stays in the root's
 *   session, below a parent that leads another one. A then forks D, in
 *   A's session. B forks C before A's setsid, and C stays there too.
 *
 *   root (session leader)
 *   +-- A        setsid after forking B
 *       +-- B    root's session and group
 *       |   +-- C
 *       +-- D    A's session and group
 *
 * "group-left": groups whose id is a live process that left them.
 *
 *   root (session leader)
 *   +-- A        setpgid(0, 0), forks M and B, then joins root's group
 *       +-- M    group A (its leader A is elsewhere now)
 *       +-- B    setpgid(0, 0), forks N, then joins group A
 *           +-- N  group B (its leader B is in group A)
 *
 * "gone-leader": a session whose leader is gone.
 *
 *   root (session leader, child subreaper)
 *   +-- (A)      setsid, forks B, exits; root reaps it
 *   +-- B        reparented to root, in A's session and group, which have
 *                no live leader
 *
 * Every process prints its TREE line once its ids are final, checks them
 * after SIGTERM, SIGTERMs and reaps its children.
 */
#include "wl.h"

static pid_t kids[4];
static const char *kid_names[4];
static int nkids;

/* The end of every process: wait for SIGTERM, pass it on, check, reap. */
static void finish_node(void)
{
	wl_tree_wait_stop();
	for (int i = 0; i < nkids; i++)
		if (kill(kids[i], SIGTERM))
			wl_fail("%s: kill(%s %d, SIGTERM): %s", wl_role, kid_names[i], kids[i], strerror(errno));
	if (wl_corrupt)
		wl_exp_pgid += 100000;
	wl_tree_check_ids();
	for (int i = 0; i < nkids; i++)
		wl_reap_ok(kids[i], kid_names[i]);
	wl_check_no_children();
}

/* Forks a child that runs fn and ends as a tree member. */
static pid_t spawn(const char *role, void (*fn)(void))
{
	pid_t pid = wl_fork(role);
	if (pid == 0) {
		nkids = 0;
		fn();
		finish_node();
		wl_child_exit();
	}
	kids[nkids] = pid;
	kid_names[nkids++] = role;
	return pid;
}

static void leaf(void)
{
	wl_tree_line();
	wl_mark(wl_role);
}

static void old_b(void)
{
	spawn("C", leaf);
	wl_wait_mark("C");
	leaf();
}

static void old_a(void)
{
	spawn("B", old_b);
	wl_wait_mark("B");
	if (setsid() < 0)
		wl_die("A: setsid: %s", strerror(errno));
	spawn("D", leaf);
	wl_wait_mark("D");
	leaf();
}

static pid_t a_pid;

static void left_b(void)
{
	if (setpgid(0, 0))
		wl_die("B: setpgid(0, 0): %s", strerror(errno));
	spawn("N", leaf);
	wl_wait_mark("N");
	if (setpgid(0, a_pid))
		wl_die("B: join group %d: %s", a_pid, strerror(errno));
	leaf();
}

static void left_a(void)
{
	a_pid = getpid();
	if (setpgid(0, 0))
		wl_die("A: setpgid(0, 0): %s", strerror(errno));
	spawn("M", leaf);
	spawn("B", left_b);
	wl_wait_mark("M");
	wl_wait_mark("B");
	if (setpgid(0, getsid(0)))
		wl_die("A: join the root's group: %s", strerror(errno));
	leaf();
}

static void gone_a(void)
{
	pid_t b, a = getpid();
	if (setsid() < 0)
		wl_die("A: setsid: %s", strerror(errno));
	b = wl_fork("B");
	if (b == 0) {
		nkids = 0;
		for (int i = 0; i < 8000 && getppid() == a; i++)
			wl_msleep(1);
		if (getppid() == a)
			wl_die("B: still a child of A after 8 s");
		leaf();
		finish_node();
		wl_child_exit();
	}
	fflush(stdout);
	_exit(0);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (getsid(0) != getpid())
		wl_die("root must lead its session (start it with setsid)");
	if (strcmp(wl_mode, "old-session") == 0)
		spawn("A", old_a);
	else if (strcmp(wl_mode, "group-left") == 0)
		spawn("A", left_a);
	else if (strcmp(wl_mode, "gone-leader") == 0) {
		pid_t a;
		if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
			wl_die("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
		a = wl_fork("A");
		if (a == 0)
			gone_a();
		if (waitpid(a, NULL, 0) != a)
			wl_die("reap A: %s", strerror(errno));
		kids[nkids] = wl_wait_mark("B");
		kid_names[nkids++] = "B";
	} else
		wl_die("mode must be old-session, group-left or gone-leader, not '%s'", wl_mode);
	if (strcmp(wl_mode, "gone-leader") != 0)
		wl_wait_mark("A");
	wl_tree_line();
	wl_ready();
	finish_node();
	return wl_finish();
}
