/*
 * conform_tree: process states CRIU keeps that a tree can be in (issue 11).
 *
 * Mode "zkill": a zombie killed by SIGKILL.
 *   root
 *   +-- ZK    waits; the root SIGKILLs it and does not reap it
 *   After SIGTERM the root checks that ZK is still a zombie and that
 *   waitpid gives "killed by SIGKILL".
 *
 * Mode "stopped": stopped processes under a job-control parent.
 *   root
 *   +-- S1    stops itself with raise(SIGSTOP)
 *   +-- S2    in a process group of its own, stopped by the root's SIGTSTP
 *   The root waits for both stops with waitid(WSTOPPED|WNOWAIT), which does
 *   not consume the report. After SIGTERM it checks that each child is
 *   stopped (/proc/PID/stat state T) and that waitpid(WUNTRACED|WNOHANG)
 *   reports it stopped by its own signal (SIGSTOP, SIGTSTP), then sends it
 *   SIGCONT and SIGTERM: each child checks that it ran on (its SIGCONT
 *   handler counted one), its ids, and exits 0.
 */
#include "wl.h"

static volatile sig_atomic_t conts;

static void on_cont(int sig)
{
	(void)sig;
	conts++;
}

static char proc_state(pid_t pid)
{
	char path[64], buf[1024], *p;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0)
		return '?';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

/* Waits until pid reports a stop or an exit, without consuming it. */
static void wait_nowait(pid_t pid, int how, const char *what)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, pid, &si, how | WNOWAIT) == -1)
		if (errno != EINTR)
			wl_die("root: waitid(%s %d): %s", what, pid, strerror(errno));
}

static void zkill(void)
{
	pid_t zk;
	int st = 0;
	if ((zk = wl_fork("ZK")) == 0) {
		wl_tree_line();
		wl_mark("ZK");
		for (;;)
			pause();
	}
	wl_wait_mark("ZK");
	if (kill(zk, SIGKILL))
		wl_die("root: kill(ZK, SIGKILL): %s", strerror(errno));
	wait_nowait(zk, WEXITED, "ZK");
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();
	if (wl_corrupt)
		waitpid(zk, &st, 0);
	TCHECK(proc_state(zk) == 'Z', "ZK (pid %d) is in state %c, want Z", zk, proc_state(zk));
	pid_t r = waitpid(zk, &st, WNOHANG);
	TCHECK(r == zk, "waitpid(ZK %d, WNOHANG) = %d (%s), want the zombie", zk, r, r < 0 ? strerror(errno) : "");
	if (r == zk)
		TCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "ZK: wait status %#x, want killed by SIGKILL", st);
}

static void stopped_child(int own_group)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_cont;
	sigaction(SIGCONT, &sa, NULL);
	if (own_group && setpgid(0, 0))
		wl_die("%s: setpgid: %s", wl_role, strerror(errno));
	wl_tree_line();
	wl_mark(wl_role);
	if (!own_group)
		raise(SIGSTOP);
	wl_tree_wait_stop();
	wl_tree_check_ids();
	TCHECK(conts == 1, "SIGCONT handler ran %d times, want 1", (int)conts);
	wl_child_exit();
}

static void check_stopped(pid_t pid, const char *what, int sig)
{
	int st = 0;
	pid_t r;
	char s = proc_state(pid);
	TCHECK(s == 'T', "%s (pid %d) is in state %c, want T (stopped)", what, pid, s);
	r = waitpid(pid, &st, WUNTRACED | WNOHANG);
	TCHECK(r == pid, "waitpid(%s %d, WUNTRACED|WNOHANG) = %d (%s), want its stop", what, pid, r,
	       r < 0 ? strerror(errno) : "nothing to report");
	if (r == pid)
		TCHECK(WIFSTOPPED(st) && WSTOPSIG(st) == sig, "%s: wait status %#x, want stopped by %s", what, st,
		       strsignal(sig));
	if (kill(pid, SIGCONT))
		wl_fail("root: kill(%s, SIGCONT): %s", what, strerror(errno));
	/* continued: WCONTINUED reports it once it runs */
	for (int i = 0; i < 5000; i++) {
		r = waitpid(pid, &st, WCONTINUED | WNOHANG);
		if (r == pid)
			break;
		wl_msleep(1);
	}
	TCHECK(r == pid && WIFCONTINUED(st), "%s: no WCONTINUED report after SIGCONT (%d, %#x)", what, r, st);
	kill(pid, SIGTERM);
}

static void stopped(void)
{
	pid_t s1, s2;
	if ((s1 = wl_fork("S1")) == 0)
		stopped_child(0);
	if ((s2 = wl_fork("S2")) == 0)
		stopped_child(1);
	wl_wait_mark("S1");
	wl_wait_mark("S2");
	if (kill(s2, SIGTSTP))
		wl_die("root: kill(S2, SIGTSTP): %s", strerror(errno));
	wait_nowait(s1, WSTOPPED, "S1");
	wait_nowait(s2, WSTOPPED, "S2");
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();
	if (wl_corrupt)
		kill(s1, SIGCONT);
	check_stopped(s1, "S1", SIGSTOP);
	check_stopped(s2, "S2", SIGTSTP);
	wl_reap_ok(s1, "S1");
	wl_reap_ok(s2, "S2");
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (strcmp(wl_mode, "zkill") == 0)
		zkill();
	else if (strcmp(wl_mode, "stopped") == 0)
		stopped();
	else
		wl_die("conform_tree: unknown mode %s", wl_mode);
	wl_tree_check_ids();
	wl_check_no_children();
	return wl_finish();
}
