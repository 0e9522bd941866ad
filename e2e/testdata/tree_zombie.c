/*
 * tree_zombie: unreaped children (zombies) and the pending SIGCHLD.
 *
 *   root            blocks SIGCHLD before forking
 *   +-- Z42         exit(42), not reaped
 *   +-- ZSIG        setpgid(0, 0), then killed by SIGUSR1, not reaped
 *   +-- L           live; inherits the blocked SIGCHLD
 *       +-- L1      exit(7), not reaped (a zombie whose parent is not root)
 *
 * Each process prints its TREE line before it exits; the parents wait for
 * the exits with waitid(WEXITED|WNOWAIT), which does not reap. Z42 exits
 * before ZSIG is forked, so root's pending SIGCHLD (a standard signal: one
 * instance, the first siginfo wins) carries Z42's siginfo.
 *
 * After SIGTERM root checks, before anything else can send it a SIGCHLD:
 * the pending sets (rt_sigpending, and /proc/self/status SigPnd and ShdPnd:
 * SIGCHLD of an exiting child is process-wide) are exactly those recorded
 * before READY (restoring the zombies raises new SIGCHLDs: they must not
 * show); sigtimedwait(SIGCHLD) returns one instance, si_pid = Z42,
 * CLD_EXITED, status 42, and a second one finds nothing; the zombies are
 * still zombies (/proc/PID/stat state Z); waitpid returns exactly exit(42)
 * for Z42 and "killed by SIGUSR1, no core" for ZSIG. Then it SIGTERMs L,
 * which makes the same checks for L1 (status 7, its own pending SIGCHLD),
 * and reaps it (exit 0); no child is left. Both check ids and memory.
 */
#include "wl.h"

static struct wl_region own;
static sigset_t recorded_pending;
static char recorded_sigpnd[64], recorded_shdpnd[64];

static void status_field(const char *name, char *out, size_t size)
{
	char buf[8192], *p;
	size_t n = strlen(name);
	out[0] = 0;
	if (wl_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		return;
	for (p = buf; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, n) == 0 && p[n] == ':') {
			char *v = p + n + 1, *e;
			while (*v == ' ' || *v == '\t')
				v++;
			e = strchr(v, '\n');
			snprintf(out, size, "%.*s", e ? (int)(e - v) : (int)strlen(v), v);
			return;
		}
	}
}

static void record_pending(void)
{
	sigpending(&recorded_pending);
	status_field("SigPnd", recorded_sigpnd, sizeof(recorded_sigpnd));
	status_field("ShdPnd", recorded_shdpnd, sizeof(recorded_shdpnd));
	if (!sigismember(&recorded_pending, SIGCHLD))
		wl_die("%s: no SIGCHLD pending before READY", wl_role);
}

static void check_pending(void)
{
	sigset_t now;
	char sigpnd[64], shdpnd[64];
	sigpending(&now);
	status_field("SigPnd", sigpnd, sizeof(sigpnd));
	status_field("ShdPnd", shdpnd, sizeof(shdpnd));
	for (int s = 1; s < NSIG; s++) {
		int was = sigismember(&recorded_pending, s) == 1, is = sigismember(&now, s) == 1;
		TCHECK(was == is, "signal %d (%s) is %spending, was %spending before the checkpoint", s, strsignal(s),
		       is ? "" : "not ", was ? "" : "not ");
	}
	TCHECK(strcmp(sigpnd, recorded_sigpnd) == 0, "/proc/self/status SigPnd (thread) %s, want %s", sigpnd,
	       recorded_sigpnd);
	TCHECK(strcmp(shdpnd, recorded_shdpnd) == 0, "/proc/self/status ShdPnd (process-wide) %s, want %s", shdpnd,
	       recorded_shdpnd);
}

/* The pending SIGCHLD carries the first zombie's siginfo, once. */
static void check_sigchld(pid_t first, int status)
{
	sigset_t set;
	siginfo_t si;
	struct timespec zero = {0, 0};
	int r;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	memset(&si, 0, sizeof(si));
	r = sigtimedwait(&set, &si, &zero);
	TCHECK(r == SIGCHLD, "sigtimedwait(SIGCHLD) = %d (%s), want the pending SIGCHLD", r,
	       r < 0 ? strerror(errno) : "");
	if (r == SIGCHLD)
		TCHECK(si.si_pid == first && si.si_code == CLD_EXITED && si.si_status == status && si.si_uid == getuid(),
		       "pending SIGCHLD: si_pid %d si_code %d si_status %d si_uid %d, want %d CLD_EXITED(%d) %d %d",
		       si.si_pid, si.si_code, si.si_status, si.si_uid, first, CLD_EXITED, status, getuid());
	r = sigtimedwait(&set, &si, &zero);
	TCHECK(r == -1 && errno == EAGAIN, "a second SIGCHLD is pending (sigtimedwait = %d, si_pid %d)", r,
	       r > 0 ? si.si_pid : 0);
}

static void check_zombie_state(pid_t pid, const char *what)
{
	char path[64], buf[1024], *p;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0) {
		wl_fail("%s[%d]: %s (pid %d): no /proc/%d/stat", wl_role, wl_exp_pid, what, pid, pid);
		return;
	}
	p = strrchr(buf, ')');
	TCHECK(p && p[1] == ' ' && p[2] == 'Z', "%s (pid %d) is not a zombie: /proc/%d/stat: %s", what, pid, pid, buf);
}

static void wait_exited(pid_t pid, const char *what)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	while (waitid(P_PID, pid, &si, WEXITED | WNOWAIT) == -1)
		if (errno != EINTR)
			wl_die("%s: waitid(%s %d, WNOWAIT): %s", wl_role, what, pid, strerror(errno));
}

static void check_exit_status(pid_t pid, const char *what, int code)
{
	int st = 0;
	pid_t r = waitpid(pid, &st, WNOHANG);
	TCHECK(r == pid, "waitpid(%s %d, WNOHANG) = %d (%s), want the zombie", what, pid, r,
	       r < 0 ? strerror(errno) : "not exited");
	if (r == pid)
		TCHECK(WIFEXITED(st) && WEXITSTATUS(st) == code, "%s (pid %d): wait status %#x, want exit(%d)", what,
		       pid, st, code);
}

static void corrupt(pid_t early_reap)
{
	sigset_t set;
	struct timespec zero = {0, 0};
	siginfo_t si;
	int st;
	own.p[5] ^= 1;
	wl_exp_ppid += 100000;
	/* reap a zombie too early, replace the pending SIGCHLD by a wrong one,
	 * add a pending signal */
	waitpid(early_reap, &st, 0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	sigdelset(&set, SIGUSR2);
	if (sigtimedwait(&set, &si, &zero) == SIGCHLD) {
		si.si_status = 43;
		syscall(SYS_rt_sigqueueinfo, getpid(), SIGCHLD, &si);
	}
	raise(SIGUSR2);
}

static void child_l1(void)
{
	wl_tree_line();
	fflush(stdout);
	_exit(7);
}

static void child_l(void)
{
	pid_t l1;
	wl_region_new(&own, 128 << 10, 30, "L's region");
	if ((l1 = wl_fork("L1")) == 0)
		child_l1();
	wait_exited(l1, "L1");
	wl_tree_line();
	record_pending();
	wl_mark("L");
	wl_tree_wait_stop();
	if (wl_corrupt)
		corrupt(l1);
	wl_tree_check_ids();
	wl_region_check(&own);
	check_pending();
	check_sigchld(l1, 7);
	check_zombie_state(l1, "L1");
	check_exit_status(l1, "L1", 7);
	wl_check_no_children();
	wl_child_exit();
}

int main(int argc, char **argv)
{
	pid_t z42, zsig, l;
	sigset_t set;

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (wl_mode[0] || wl_nthreads != 1)
		wl_die("tree_zombie takes no mode and no threads");
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		wl_die("sigprocmask: %s", strerror(errno));
	signal(SIGUSR1, SIG_DFL);
	wl_region_new(&own, 256 << 10, 10, "root's region");

	if ((z42 = wl_fork("Z42")) == 0) {
		wl_tree_line();
		fflush(stdout);
		_exit(42);
	}
	wait_exited(z42, "Z42");
	if ((zsig = wl_fork("ZSIG")) == 0) {
		sigset_t none;
		if (setpgid(0, 0))
			wl_die("ZSIG: setpgid: %s", strerror(errno));
		wl_tree_line();
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		kill(getpid(), SIGUSR1);
		for (;;)
			pause();
	}
	wait_exited(zsig, "ZSIG");
	if ((l = wl_fork("L")) == 0)
		child_l();
	wl_wait_mark("L");
	wl_tree_line();
	record_pending();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt)
		corrupt(zsig);
	/* first what a restore could have disturbed: signals, zombies */
	check_pending();
	check_sigchld(z42, 42);
	check_zombie_state(z42, "Z42");
	check_zombie_state(zsig, "ZSIG");
	check_exit_status(z42, "Z42", 42);
	{
		int st = 0;
		pid_t r = waitpid(zsig, &st, WNOHANG);
		TCHECK(r == zsig, "waitpid(ZSIG %d, WNOHANG) = %d (%s), want the zombie", zsig, r,
		       r < 0 ? strerror(errno) : "not exited");
		if (r == zsig)
			TCHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1 && !WCOREDUMP(st),
			       "ZSIG (pid %d): wait status %#x, want killed by SIGUSR1 (%d) without core", zsig, st,
			       SIGUSR1);
	}
	if (kill(l, SIGTERM))
		wl_fail("root: kill(L %d, SIGTERM): %s", l, strerror(errno));
	wl_check_ids(0);
	wl_tree_check_ids();
	wl_region_check(&own);
	wl_reap_ok(l, "L");
	wl_check_no_children();
	return wl_finish();
}
