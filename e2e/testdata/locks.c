/*
 * locks: file locks held and waited for (issue 11 item 12).
 *
 *   root  holds a flock write lock on lock-a (and a dup of that
 *         descriptor), a POSIX write lock on bytes 10-19 and a POSIX read
 *         lock from byte 100 to the end of lock-b, an OFD read lock on
 *         lock-c
 *   +-- WA  blocked in flock(LOCK_EX) on its own open of lock-a
 *   +-- WB  blocked in fcntl(F_SETLKW) for bytes 10-19 of lock-b
 *   +-- WC  blocked in fcntl(F_OFD_SETLKW) for lock-c
 * After SIGTERM the root checks that its locks are there (its fdinfo, and
 * a new child that probes each with LOCK_NB, F_GETLK and F_OFD_GETLK),
 * that each waiter is blocked again in its call and got nothing, then lets
 * each lock go: each waiter must now get its lock (it leaves a mark).
 */
#include "wl.h"
#include <sys/file.h>

/* Waits (at most 5 s) until pid is blocked in system call nr. */
static void wait_blocked(pid_t pid, long nr, const char *what)
{
	char path[64], buf[512] = "";
	snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
	for (int i = 0; i < 5000; i++) {
		long n;
		if (wl_read_file(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%ld", &n) == 1 && n == nr)
			return;
		wl_msleep(1);
	}
	wl_fail("%s[%d]: %s (pid %d) is not blocked in call %ld: %s", wl_role, (int)wl_exp_pid, what, (int)pid, nr, buf);
}

static int open_lock(const char *name)
{
	int fd = open(name, O_RDWR | O_CREAT, 0600);
	if (fd < 0)
		wl_die("%s: open %s: %s", wl_role, name, strerror(errno));
	return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	return fcntl(fd, cmd, &fl);
}

/* getlk returns the type of the lock that conflicts with a write lock on
 * [start, start+len) (F_UNLCK: none) and its owner's pid. */
static short getlk(int fd, int cmd, off_t start, off_t len, pid_t *pid)
{
	struct flock fl;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = start;
	fl.l_len = len;
	if (fcntl(fd, cmd, &fl))
		return -1;
	*pid = fl.l_pid;
	return fl.l_type;
}

static void waiter(const char *role, const char *file, int kind)
{
	if (wl_fork(role) != 0)
		return;
	wl_tree_line();
	int fd = open_lock(file);
	int r;
	wl_mark(role);
	do {
		if (kind == 0)
			r = flock(fd, LOCK_EX);
		else if (kind == 1)
			r = setlk(fd, F_SETLKW, F_WRLCK, 10, 10);
		else
			r = setlk(fd, F_OFD_SETLKW, F_WRLCK, 0, 0);
	} while (r && errno == EINTR && !wl_stop);
	TCHECK(r == 0, "lock %s: %s", file, strerror(errno));
	char got[32];
	snprintf(got, sizeof(got), "got%s", role);
	wl_mark(got);
	wl_tree_wait_stop();
	wl_child_exit();
}

static int has_line(int fd, const char *want)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	return strstr(buf, want) != NULL;
}

/* probe runs in a new child: each lock of the root must conflict. */
static void probe(pid_t root)
{
	pid_t pid = wl_fork("probe");
	if (pid != 0) {
		wl_reap_ok(pid, "probe");
		return;
	}
	wl_exp_pid = getpid();
	int a = open_lock("lock-a"), b = open_lock("lock-b"), c = open_lock("lock-c");
	TCHECK(flock(a, LOCK_EX | LOCK_NB) == -1 && errno == EWOULDBLOCK, "lock-a: flock(LOCK_EX|LOCK_NB) did not fail with EWOULDBLOCK: the root's flock lock is lost");
	pid_t owner = 0;
	short ty = getlk(b, F_GETLK, 10, 10, &owner);
	TCHECK(ty == F_WRLCK && owner == root, "lock-b bytes 10-19: F_GETLK gives type %d owner %d, want a write lock of %d", ty, owner, root);
	ty = getlk(b, F_GETLK, 0, 10, &owner);
	TCHECK(ty == F_UNLCK, "lock-b bytes 0-9: F_GETLK gives type %d owner %d, want no lock", ty, owner);
	ty = getlk(b, F_GETLK, 1000, 1, &owner);
	TCHECK(ty == F_RDLCK && owner == root, "lock-b byte 1000: F_GETLK gives type %d owner %d, want a read lock of %d", ty, owner, root);
	ty = getlk(c, F_OFD_GETLK, 0, 0, &owner);
	TCHECK(ty == F_RDLCK, "lock-c: F_OFD_GETLK gives type %d, want the OFD read lock", ty);
	wl_child_exit();
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	wl_clear_marks();
	wl_tree_line();
	int a = open_lock("lock-a"), b = open_lock("lock-b"), c = open_lock("lock-c");
	if (flock(a, LOCK_EX))
		wl_die("flock lock-a: %s", strerror(errno));
	int a2 = dup(a);
	if (setlk(b, F_SETLK, F_WRLCK, 10, 10) || setlk(b, F_SETLK, F_RDLCK, 100, 0))
		wl_die("POSIX lock lock-b: %s", strerror(errno));
	if (setlk(c, F_OFD_SETLK, F_RDLCK, 0, 0))
		wl_die("OFD lock lock-c: %s", strerror(errno));
	waiter("WA", "lock-a", 0);
	waiter("WB", "lock-b", 1);
	waiter("WC", "lock-c", 2);
	pid_t wa = wl_wait_mark("WA"), wb = wl_wait_mark("WB"), wc = wl_wait_mark("WC");
	wait_blocked(wa, SYS_flock, "WA");
	wait_blocked(wb, SYS_fcntl, "WB");
	wait_blocked(wc, SYS_fcntl, "WC");
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt)
		flock(a, LOCK_UN);
	wl_tree_check_ids();
	TCHECK(has_line(a, "FLOCK  ADVISORY  WRITE") && has_line(a2, "FLOCK  ADVISORY  WRITE"), "lock-a: no flock write lock in fdinfo");
	TCHECK(has_line(b, "POSIX  ADVISORY  WRITE") && has_line(b, " 10 19"), "lock-b: no POSIX write lock on 10-19 in fdinfo");
	TCHECK(has_line(b, "POSIX  ADVISORY  READ") && has_line(b, " 100 EOF"), "lock-b: no POSIX read lock from 100 in fdinfo");
	TCHECK(has_line(c, "OFDLCK ADVISORY  READ"), "lock-c: no OFD read lock in fdinfo");
	probe(getpid());
	wait_blocked(wa, SYS_flock, "WA");
	wait_blocked(wb, SYS_fcntl, "WB");
	wait_blocked(wc, SYS_fcntl, "WC");
	TCHECK(!wl_read_mark("gotWA") && !wl_read_mark("gotWB") && !wl_read_mark("gotWC"), "a waiter got its lock while the root held it");

	/* Let each lock go: each waiter gets its own. */
	flock(a, LOCK_UN);
	wl_await_mark("gotWA", 5000);
	setlk(b, F_SETLK, F_UNLCK, 0, 0);
	wl_await_mark("gotWB", 5000);
	setlk(c, F_OFD_SETLK, F_UNLCK, 0, 0);
	wl_await_mark("gotWC", 5000);
	kill(wa, SIGTERM);
	kill(wb, SIGTERM);
	kill(wc, SIGTERM);
	wl_reap_ok(wa, "WA");
	wl_reap_ok(wb, "WB");
	wl_reap_ok(wc, "WC");
	return wl_finish();
}
