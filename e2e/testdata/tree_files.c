/*
 * tree_files: open files shared (or not) between the processes of a tree.
 *
 *   root   fd 10: shared.dat O_RDWR, FD_CLOEXEC, at offset 1000 (before fork)
 *          fd 11: log.txt O_WRONLY|O_APPEND, written by every process
 *   +-- A  fd 10 inherited; FD_CLOEXEC cleared in A only (fd flags are per
 *   |      process), O_NONBLOCK set through it (file status flags are per
 *   |      open file description: root sees it too); fd 20 = dup2(10);
 *   |      fd 12: private.txt opened after fork, offset 10;
 *   |      fd 13: sub.txt opened before forking A1, offset 500
 *   |  +-- A1  fd 10, 11, 13 inherited; fd 12: private.txt opened by A1
 *   |          itself (same file and fd number as A's, another open file
 *   |          description), offset 30
 *   +-- B  closes fd 10 and opens shared.dat again at fd 10 (same path, same
 *          fd number as root's, but its own description, O_RDONLY) at 7777;
 *          fd 12: private.txt of its own, offset 20
 *
 * After SIGTERM root checks with kcmp(KCMP_FILE) across the processes which
 * descriptors share an open file description (10 of root/A/A1 and 20 of A,
 * 13 of A/A1, 11 and 1 everywhere) and which do not (B's 10, all the 12s),
 * then the offsets move for all sharers: root reads 100 bytes on 10 (1000 ->
 * 1100), A sees 1100 on 10 and 20 and reads 100 on 20, A1 sees 1200 and
 * reads 100 on 10, root sees 1300 at the end; A1 reads 50 on 13 and A sees
 * 550. The bytes read are the right ones. Every process compares its fd
 * table (numbers, targets, F_GETFL, F_GETFD, device and inode) with the one
 * it recorded before READY, checks its private offsets and ids, and writes 10
 * log lines before and 10 after; root finally checks that log.txt holds
 * exactly each process's 20 lines, in order, none lost or doubled.
 */
#include "wl.h"
#include <linux/kcmp.h>

#define FD_SHARED 10
#define FD_LOG 11
#define FD_PRIV 12
#define FD_SUB 13
#define FD_DUP 20
#define NFD 64
#define DATA_LEN 65536

struct fdsnap {
	int valid, fl, fdfl;
	char target[256];
	dev_t dev;
	ino_t ino;
};

static struct fdsnap before[NFD], after[NFD];
static char shared_data[DATA_LEN], priv_data[4096], sub_data[4096];
static pid_t kids[4];
static int nkids;

static void gen(char *buf, size_t len, uint64_t seed)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (char)wl_pat(seed, i);
}

static void snapshot(struct fdsnap *s)
{
	memset(s, 0, sizeof(*s) * NFD);
	for (int fd = 0; fd < NFD; fd++) {
		char path[64];
		struct stat st;
		ssize_t n;
		if (fcntl(fd, F_GETFD) < 0)
			continue;
		s[fd].valid = 1;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, s[fd].target, sizeof(s[fd].target) - 1);
		s[fd].target[n < 0 ? 0 : n] = 0;
		s[fd].fl = fcntl(fd, F_GETFL);
		s[fd].fdfl = fcntl(fd, F_GETFD);
		if (fstat(fd, &st) == 0) {
			s[fd].dev = st.st_dev;
			s[fd].ino = st.st_ino;
		}
	}
}

static void compare_snapshots(void)
{
	snapshot(after);
	for (int fd = 0; fd < NFD; fd++) {
		struct fdsnap *b = &before[fd], *a = &after[fd];
		if (!b->valid && !a->valid)
			continue;
		if (b->valid != a->valid) {
			wl_fail("%s[%d]: fd %d %s after restore (%s)", wl_role, wl_exp_pid, fd,
				b->valid ? "missing" : "unexpected", b->valid ? b->target : a->target);
			continue;
		}
		TCHECK(strcmp(a->target, b->target) == 0, "fd %d: target %s, want %s", fd, a->target, b->target);
		TCHECK(a->fl == b->fl, "fd %d (%s): F_GETFL %#o, want %#o", fd, b->target, a->fl, b->fl);
		TCHECK(a->fdfl == b->fdfl, "fd %d (%s): F_GETFD %#x, want %#x", fd, b->target, a->fdfl, b->fdfl);
		TCHECK(a->dev == b->dev && a->ino == b->ino, "fd %d (%s): dev/ino %lx/%lu, want %lx/%lu", fd, b->target,
		       (unsigned long)a->dev, (unsigned long)a->ino, (unsigned long)b->dev, (unsigned long)b->ino);
	}
}

static int xopen(const char *path, int flags, int at)
{
	int fd = open(path, flags | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("%s: open %s: %s", wl_role, path, strerror(errno));
	if (at >= 0 && fd != at) {
		if (dup2(fd, at) != at)
			wl_die("%s: dup2 %d: %s", wl_role, at, strerror(errno));
		close(fd);
		fd = at;
	}
	return fd;
}

static void make_file(const char *path, const char *data, size_t len)
{
	int fd = xopen(path, O_WRONLY | O_CREAT | O_TRUNC, -1);
	if (write(fd, data, len) != (ssize_t)len)
		wl_die("write %s", path);
	close(fd);
}

static void log_lines(const char *phase)
{
	char line[64];
	for (int i = 0; i < 10; i++) {
		int n = snprintf(line, sizeof(line), "%s %s %d\n", wl_role, phase, i);
		if (write(FD_LOG, line, (size_t)n) != n)
			wl_fail("%s[%d]: write log: %s", wl_role, wl_exp_pid, strerror(errno));
	}
}

static void check_pos(int fd, off_t want, const char *what)
{
	off_t pos = lseek(fd, 0, SEEK_CUR);
	TCHECK(pos == want, "fd %d (%s): offset %ld, want %ld", fd, what, (long)pos, (long)want);
}

/* Reads n bytes at the current offset of fd and compares with data+off. */
static void check_read(int fd, const char *data, off_t off, size_t n, const char *what)
{
	char buf[256];
	ssize_t r = read(fd, buf, n);
	TCHECK(r == (ssize_t)n && memcmp(buf, data + off, n) == 0,
	       "fd %d (%s): read of %zu bytes at %ld returned %zd bytes / wrong data", fd, what, n, (long)off, r);
}

static int fdflags(int fd) { return fcntl(fd, F_GETFD); }

static void kcmp_check(pid_t p1, int fd1, pid_t p2, int fd2, int same, const char *what)
{
	long r = syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2);
	if (r < 0)
		wl_fail("root: kcmp(%d fd %d, %d fd %d): %s", p1, fd1, p2, fd2, strerror(errno));
	else
		TCHECK((r == 0) == same, "%s: kcmp(pid %d fd %d, pid %d fd %d) = %ld: %s open file description", what,
		       p1, fd1, p2, fd2, r, same ? "not the same" : "the same");
}

static void child_a1(void)
{
	nkids = 0;
	xopen("private.txt", O_RDWR, FD_PRIV);
	lseek(FD_PRIV, 30, SEEK_SET);
	log_lines("before");
	snapshot(before);
	wl_tree_line();
	wl_mark("A1");
	wl_tree_wait_stop();
	if (wl_corrupt) {
		close(FD_SUB);
		xopen("sub.txt", O_RDWR, FD_SUB);
		lseek(FD_SUB, 500, SEEK_SET);
	}
	wl_tree_check_ids();
	compare_snapshots();
	check_pos(FD_SUB, 500, "sub.txt, shared with A");
	check_read(FD_SUB, sub_data, 500, 50, "sub.txt");
	check_pos(FD_SHARED, 1200, "shared.dat: root and A read 100 bytes each");
	check_read(FD_SHARED, shared_data, 1200, 100, "shared.dat");
	check_pos(FD_PRIV, 30, "private.txt, A1's own");
	check_read(FD_PRIV, priv_data, 30, 10, "private.txt");
	log_lines("after");
	wl_check_no_children();
	wl_child_exit();
}

static void child_a(void)
{
	pid_t a1;
	nkids = 0;
	if (fcntl(FD_SHARED, F_SETFD, 0) || fcntl(FD_SHARED, F_SETFL, fcntl(FD_SHARED, F_GETFL) | O_NONBLOCK))
		wl_die("A: fcntl: %s", strerror(errno));
	if (dup2(FD_SHARED, FD_DUP) != FD_DUP)
		wl_die("A: dup2: %s", strerror(errno));
	xopen("private.txt", O_RDWR, FD_PRIV);
	lseek(FD_PRIV, 10, SEEK_SET);
	xopen("sub.txt", O_RDWR, FD_SUB);
	lseek(FD_SUB, 500, SEEK_SET);
	/* A1 gets its own private.txt: close A's copy in it (CLOEXEC does not
	 * apply to fork) */
	if ((a1 = wl_fork("A1")) == 0) {
		close(FD_PRIV);
		child_a1();
	}
	wl_wait_mark("A1");
	log_lines("before");
	snapshot(before);
	wl_tree_line();
	wl_mark("A");
	wl_tree_wait_stop();
	if (wl_corrupt) {
		fcntl(FD_DUP, F_SETFD, FD_CLOEXEC);
		lseek(FD_PRIV, 1, SEEK_CUR);
	}
	wl_tree_check_ids();
	compare_snapshots();
	TCHECK(fdflags(FD_SHARED) == 0 && fdflags(FD_DUP) == 0, "F_GETFD of fds 10, 20: %#x, %#x, want 0, 0",
	       fdflags(FD_SHARED), fdflags(FD_DUP));
	TCHECK(fcntl(FD_SHARED, F_GETFL) & O_NONBLOCK, "fd 10: O_NONBLOCK lost");
	check_pos(FD_SHARED, 1100, "shared.dat: root read 100 bytes");
	check_pos(FD_DUP, 1100, "dup of fd 10: root read 100 bytes");
	check_read(FD_DUP, shared_data, 1100, 100, "shared.dat via fd 20");
	check_pos(FD_PRIV, 10, "private.txt, A's own");
	check_read(FD_PRIV, priv_data, 10, 10, "private.txt");
	check_pos(FD_SUB, 500, "sub.txt");
	/* now A1 */
	if (kill(a1, SIGTERM))
		wl_fail("A: kill(A1 %d): %s", a1, strerror(errno));
	wl_reap_ok(a1, "A1");
	check_pos(FD_SUB, 550, "sub.txt: A1 read 50 bytes");
	check_pos(FD_SHARED, 1300, "shared.dat: A1 read 100 bytes");
	log_lines("after");
	wl_check_no_children();
	wl_child_exit();
}

static void child_b(void)
{
	nkids = 0;
	close(FD_SHARED);
	xopen("shared.dat", O_RDONLY, FD_SHARED);
	lseek(FD_SHARED, 7777, SEEK_SET);
	xopen("private.txt", O_RDWR, FD_PRIV);
	lseek(FD_PRIV, 20, SEEK_SET);
	log_lines("before");
	snapshot(before);
	wl_tree_line();
	wl_mark("B");
	wl_tree_wait_stop();
	if (wl_corrupt) {
		char line[] = "B after 3\n";
		lseek(FD_SHARED, 0, SEEK_SET);
		if (write(FD_LOG, line, sizeof(line) - 1) < 0)
			wl_fail("B: write: %s", strerror(errno));
	}
	wl_tree_check_ids();
	compare_snapshots();
	check_pos(FD_SHARED, 7777, "shared.dat, B's own");
	check_read(FD_SHARED, shared_data, 7777, 100, "shared.dat, B's own");
	check_pos(FD_PRIV, 20, "private.txt, B's own");
	check_read(FD_PRIV, priv_data, 20, 10, "private.txt");
	errno = 0;
	TCHECK(write(FD_SHARED, "x", 1) == -1 && errno == EBADF, "B's O_RDONLY fd 10 accepts writes");
	log_lines("after");
	wl_check_no_children();
	wl_child_exit();
}

/* log.txt: every role's 10 "before" then 10 "after" lines, nothing else. */
static void check_log(const char **roles, int nroles)
{
	static char buf[1 << 16];
	int next[8] = {0};
	int lines = 0, bad = 0;
	ssize_t len = wl_read_file("log.txt", buf, sizeof(buf));
	char *save = NULL;
	if (len <= 0) {
		wl_fail("root: cannot read log.txt");
		return;
	}
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char role[16], phase[16];
		int i, r, got;
		lines++;
		if (sscanf(l, "%15s %15s %d", role, phase, &i) != 3) {
			wl_fail("root: log.txt: bad line \"%s\"", l);
			bad++;
			continue;
		}
		for (r = 0; r < nroles && strcmp(roles[r], role) != 0; r++)
			;
		got = (strcmp(phase, "after") == 0 ? 10 : 0) + i;
		if (r == nroles || (strcmp(phase, "before") && strcmp(phase, "after")) || got != next[r]) {
			if (bad++ < 5)
				wl_fail("root: log.txt line %d \"%s\": out of sequence (lost, doubled or reordered)", lines,
					l);
			continue;
		}
		next[r]++;
	}
	for (int r = 0; r < nroles; r++)
		TCHECK(next[r] == 20, "log.txt: %d of %s's 20 lines in sequence", next[r], roles[r]);
	TCHECK(lines == 20 * nroles, "log.txt: %d lines, want %d", lines, 20 * nroles);
}

int main(int argc, char **argv)
{
	pid_t a, b, a1;
	static const char *roles[] = {"root", "A", "A1", "B"};

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	if (wl_mode[0] || wl_nthreads != 1)
		wl_die("tree_files takes no mode and no threads");
	gen(shared_data, sizeof(shared_data), 5);
	gen(priv_data, sizeof(priv_data), 6);
	gen(sub_data, sizeof(sub_data), 7);
	make_file("shared.dat", shared_data, sizeof(shared_data));
	make_file("private.txt", priv_data, sizeof(priv_data));
	make_file("sub.txt", sub_data, sizeof(sub_data));
	xopen("shared.dat", O_RDWR, FD_SHARED);
	fcntl(FD_SHARED, F_SETFD, FD_CLOEXEC);
	lseek(FD_SHARED, 1000, SEEK_SET);
	xopen("log.txt", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, FD_LOG);
	fcntl(FD_LOG, F_SETFD, 0);

	if ((a = wl_fork("A")) == 0)
		child_a();
	kids[nkids++] = a;
	wl_wait_mark("A");
	if ((b = wl_fork("B")) == 0)
		child_b();
	kids[nkids++] = b;
	wl_wait_mark("B");
	a1 = wl_read_mark("A1");
	log_lines("before");
	snapshot(before);
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt) {
		close(FD_LOG);
		xopen("log.txt", O_WRONLY | O_APPEND, FD_LOG);
		fcntl(FD_LOG, F_SETFD, 0);
		lseek(FD_SHARED, 1, SEEK_CUR);
	}
	wl_check_ids(0);
	wl_tree_check_ids();
	compare_snapshots();
	/* sharing across processes, while all are alive */
	kcmp_check(wl_pid, FD_SHARED, a, FD_SHARED, 1, "shared.dat root/A");
	kcmp_check(wl_pid, FD_SHARED, a, FD_DUP, 1, "shared.dat root/A's dup");
	kcmp_check(wl_pid, FD_SHARED, a1, FD_SHARED, 1, "shared.dat root/A1");
	kcmp_check(wl_pid, FD_SHARED, b, FD_SHARED, 0, "shared.dat root/B (B reopened it)");
	kcmp_check(a, FD_SUB, a1, FD_SUB, 1, "sub.txt A/A1");
	kcmp_check(a, FD_PRIV, a1, FD_PRIV, 0, "private.txt A/A1 (opened by each)");
	kcmp_check(a, FD_PRIV, b, FD_PRIV, 0, "private.txt A/B (opened by each)");
	kcmp_check(a1, FD_PRIV, b, FD_PRIV, 0, "private.txt A1/B (opened by each)");
	{
		pid_t all[] = {a, a1, b};
		for (int i = 0; i < 3; i++) {
			kcmp_check(wl_pid, FD_LOG, all[i], FD_LOG, 1, "log.txt");
			kcmp_check(wl_pid, 1, all[i], 1, 1, "stdout");
			kcmp_check(all[i], 1, all[i], 2, 1, "stdout/stderr");
		}
	}
	TCHECK(fdflags(FD_SHARED) == FD_CLOEXEC, "fd 10: F_GETFD %#x, want FD_CLOEXEC (cleared only in A)",
	       fdflags(FD_SHARED));
	TCHECK(fcntl(FD_SHARED, F_GETFL) & O_NONBLOCK, "fd 10: O_NONBLOCK set by A is not visible in root");
	/* offsets move for all sharers */
	check_pos(FD_SHARED, 1000, "shared.dat");
	check_read(FD_SHARED, shared_data, 1000, 100, "shared.dat");
	if (kill(a, SIGTERM))
		wl_fail("root: kill(A %d): %s", a, strerror(errno));
	wl_reap_ok(a, "A");
	check_pos(FD_SHARED, 1300, "shared.dat: A and A1 read 100 bytes each");
	if (kill(b, SIGTERM))
		wl_fail("root: kill(B %d): %s", b, strerror(errno));
	wl_reap_ok(b, "B");
	check_pos(FD_SHARED, 1300, "shared.dat: B has its own description");
	log_lines("after");
	check_log(roles, 4);
	wl_check_no_children();
	return wl_finish();
}
