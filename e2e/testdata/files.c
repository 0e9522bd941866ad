/*
 * files: open file descriptors survive checkpoint/restore.
 *
 * Checks: /proc/self/fd listing (numbers and targets) identical; for every fd
 * F_GETFL (access mode O_RDONLY/O_WRONLY/O_RDWR, O_APPEND, O_NONBLOCK, ...),
 * F_GETFD (FD_CLOEXEC, which is per fd), file position, st_dev/st_ino/st_rdev
 * identical; a regular file at fd 100 (dup2) with the offset in the middle
 * reads the right data, and fd 101 (F_DUPFD of 100) still shares its open
 * file description (offset moves together; kcmp KCMP_FILE), as do stdout and
 * stderr; an O_APPEND log written before and after the checkpoint contains
 * both parts in order, nothing lost or doubled; a write-only file continues
 * at its offset; /dev/null and /dev/zero are the character devices and work;
 * a directory fd still works with openat; writes to the O_RDONLY fd fail.
 *
 * Mode "iouring" also holds an io_uring fd, which cryo cannot dump: used to
 * test that a failing dump leaves the process running untouched.
 */
#include "wl.h"
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/sysmacros.h>

#define NFD 256

struct fdsnap {
	int valid;
	char target[512];
	int fl, fdfl;
	off_t pos;
	dev_t dev, rdev;
	ino_t ino;
	mode_t mode;
};

static struct fdsnap snap_before[NFD], snap_after[NFD];
static int fd_log, fd_ro, fd_wo, fd_null, fd_zero, fd_dir, fd_ring = -1;
static char databuf[65536];

static void snapshot(struct fdsnap *s)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int self;
	memset(s, 0, sizeof(*s) * NFD);
	if (!d) {
		wl_fail("opendir /proc/self/fd: %s", strerror(errno));
		return;
	}
	self = dirfd(d);
	while ((e = readdir(d))) {
		char path[64];
		struct stat st;
		int fd;
		ssize_t n;
		if (e->d_name[0] == '.')
			continue;
		fd = atoi(e->d_name);
		if (fd == self || fd < 0 || fd >= NFD)
			continue;
		s[fd].valid = 1;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, s[fd].target, sizeof(s[fd].target) - 1);
		s[fd].target[n < 0 ? 0 : n] = 0;
		s[fd].fl = fcntl(fd, F_GETFL);
		s[fd].fdfl = fcntl(fd, F_GETFD);
		s[fd].pos = lseek(fd, 0, SEEK_CUR);
		if (fstat(fd, &st) == 0) {
			s[fd].dev = st.st_dev;
			s[fd].ino = st.st_ino;
			s[fd].rdev = st.st_rdev;
			s[fd].mode = st.st_mode;
		}
	}
	closedir(d);
}

static void compare_snapshots(void)
{
	for (int fd = 0; fd < NFD; fd++) {
		struct fdsnap *b = &snap_before[fd], *a = &snap_after[fd];
		if (!b->valid && !a->valid)
			continue;
		if (b->valid != a->valid) {
			wl_fail("fd %d: %s after restore (%s)", fd, b->valid ? "missing" : "unexpected",
				b->valid ? b->target : a->target);
			continue;
		}
		CHECK(strcmp(a->target, b->target) == 0, "fd %d: target %s, want %s", fd, a->target, b->target);
		CHECK(a->fl == b->fl, "fd %d (%s): F_GETFL = %#o, want %#o", fd, b->target, a->fl, b->fl);
		CHECK(a->fdfl == b->fdfl, "fd %d (%s): F_GETFD = %#x, want %#x", fd, b->target, a->fdfl, b->fdfl);
		if (fd != 1 && fd != 2) /* the output file grows with every line */
			CHECK(a->pos == b->pos, "fd %d (%s): position %ld, want %ld", fd, b->target, (long)a->pos,
			      (long)b->pos);
		CHECK(a->dev == b->dev && a->ino == b->ino && a->mode == b->mode && a->rdev == b->rdev,
		      "fd %d (%s): st_dev/st_ino/st_mode/st_rdev %lx/%lu/%o/%lx, want %lx/%lu/%o/%lx", fd,
		      b->target, (unsigned long)a->dev, (unsigned long)a->ino, a->mode, (unsigned long)a->rdev,
		      (unsigned long)b->dev, (unsigned long)b->ino, b->mode, (unsigned long)b->rdev);
	}
}

static int same_file(int fd1, int fd2)
{
	pid_t p = getpid();
	return syscall(SYS_kcmp, p, p, KCMP_FILE, fd1, fd2) == 0;
}

static int xopen(const char *path, int flags, mode_t mode)
{
	int fd = open(path, flags, mode);
	if (fd < 0)
		wl_die("open %s: %s", path, strerror(errno));
	return fd;
}

static void write_all(int fd, const char *s)
{
	size_t len = strlen(s);
	if (write(fd, s, len) != (ssize_t)len)
		wl_fail("write fd %d: %s", fd, strerror(errno));
}

static void log_lines(const char *what)
{
	char line[64];
	for (int i = 0; i < 10; i++) {
		snprintf(line, sizeof(line), "%s %d\n", what, i);
		write_all(fd_log, line);
	}
}

/* Idle workers: the fd table is shared by all threads. */
static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	wl_wait_stop();
	wl_check_ids(idx);
	return NULL;
}

static void corrupt(void)
{
	int fl = fcntl(fd_null, F_GETFL);
	lseek(100, 1, SEEK_CUR);
	fcntl(fd_null, F_SETFL, fl & ~O_NONBLOCK);
	fcntl(101, F_SETFD, 0);
	dup2(fd_zero, 150);
	close(fd_dir);
	write_all(fd_log, "before 9\n");
	lseek(fd_ro, 0, SEEK_SET);
	{
		/* fd 2 gets its own open file description */
		char path[600];
		snprintf(path, sizeof(path), "/proc/self/fd/%d", 2);
		int fd = open(path, O_WRONLY | O_APPEND);
		if (fd >= 0) {
			dup2(fd, 2);
			close(fd);
		}
	}
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	int fd, holes[2];
	char buf[4096];

	wl_init(argc, argv);

	for (size_t i = 0; i < sizeof(databuf); i++)
		databuf[i] = (char)wl_pat(42, i);
	fd = xopen("data.bin", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (write(fd, databuf, sizeof(databuf)) != (ssize_t)sizeof(databuf))
		wl_die("write data.bin");
	if (dup2(fd, 100) != 100)
		wl_die("dup2: %s", strerror(errno));
	close(fd);
	lseek(100, 12345, SEEK_SET);
	if (fcntl(100, F_DUPFD, 101) != 101)
		wl_die("F_DUPFD 101: %s", strerror(errno));
	fcntl(101, F_SETFD, FD_CLOEXEC);

	/* leave holes in the fd table */
	holes[0] = xopen("/dev/null", O_RDONLY, 0);
	holes[1] = xopen("/dev/null", O_RDONLY, 0);

	fd_log = xopen("log.txt", O_WRONLY | O_APPEND | O_CREAT | O_TRUNC, 0644);
	log_lines("before");

	fd = xopen("ro.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	write_all(fd, "read-only file contents\n");
	close(fd);
	fd_ro = xopen("ro.txt", O_RDONLY, 0);
	lseek(fd_ro, 5, SEEK_SET);

	fd_wo = xopen("wo.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	memset(buf, 'a', 100);
	if (write(fd_wo, buf, 100) != 100)
		wl_die("write wo.txt");

	fd_null = xopen("/dev/null", O_RDWR, 0);
	fcntl(fd_null, F_SETFL, fcntl(fd_null, F_GETFL) | O_NONBLOCK);
	fd_zero = xopen("/dev/zero", O_RDONLY | O_CLOEXEC, 0);

	if (mkdir("dir", 0755) && errno != EEXIST)
		wl_die("mkdir: %s", strerror(errno));
	fd = xopen("dir/inside", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	close(fd);
	fd_dir = xopen("dir", O_RDONLY | O_DIRECTORY, 0);

	close(holes[0]);
	close(holes[1]);

	if (strcmp(wl_mode, "iouring") == 0) {
		unsigned char params[120];
		memset(params, 0, sizeof(params));
		fd_ring = (int)syscall(425 /* io_uring_setup */, 4, params);
		if (fd_ring < 0)
			wl_skip("io_uring_setup: %s", strerror(errno));
		printf("IOURING fd=%d\n", fd_ring);
	} else if (wl_mode[0]) {
		wl_die("unknown mode '%s' (iouring)", wl_mode);
	}

	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);

	snapshot(snap_before);
	if (!same_file(1, 2))
		wl_die("stdout and stderr must share one open file description");
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt)
		corrupt();
	wl_check_ids(0);
	snapshot(snap_after);
	compare_snapshots();

	CHECK(same_file(100, 101), "fds 100 and 101 no longer share one open file description (kcmp)");
	CHECK(same_file(1, 2), "stdout and stderr no longer share one open file description (kcmp)");
	CHECK(!same_file(100, fd_ro), "fds 100 and %d share an open file description (kcmp)", fd_ro);
	{
		off_t off = lseek(100, 0, SEEK_CUR);
		ssize_t n = read(100, buf, 100);
		CHECK(off == 12345 && n == 100 && memcmp(buf, databuf + 12345, 100) == 0,
		      "fd 100: read at offset %ld returned %zd bytes / wrong data (want offset 12345)", (long)off, n);
		off = lseek(101, 0, SEEK_CUR);
		CHECK(off == 12345 + 100, "fd 101: offset %ld after reading 100 bytes on fd 100, want %d (shared)",
		      (long)off, 12345 + 100);
	}
	{
		ssize_t n = read(fd_ro, buf, 10);
		CHECK(n == 10 && memcmp(buf, "only file ", 10) == 0, "O_RDONLY fd: wrong data after restore");
		errno = 0;
		CHECK(write(fd_ro, "x", 1) == -1 && errno == EBADF, "O_RDONLY fd accepts writes");
	}
	{
		struct stat st;
		write_all(fd_wo, "b");
		CHECK(fstat(fd_wo, &st) == 0 && st.st_size == 101,
		      "O_WRONLY fd: write did not continue at offset 100 (size %ld)", (long)st.st_size);
		errno = 0;
		CHECK(read(fd_wo, buf, 1) == -1 && errno == EBADF, "O_WRONLY fd allows reads");
	}
	{
		struct stat st;
		ssize_t n;
		CHECK(fstat(fd_zero, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 5),
		      "fd %d is not /dev/zero (1:5)", fd_zero);
		memset(buf, 1, 64);
		n = read(fd_zero, buf, 64);
		CHECK(n == 64 && wl_verify_zero(buf, 64) < 0, "/dev/zero does not read zeros");
		CHECK(fstat(fd_null, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3),
		      "fd %d is not /dev/null (1:3)", fd_null);
		CHECK(write(fd_null, "x", 1) == 1 && read(fd_null, buf, 1) == 0, "/dev/null does not work");
	}
	{
		int f = openat(fd_dir, "inside", O_RDONLY);
		CHECK(f >= 0, "directory fd: openat(inside): %s", strerror(errno));
		if (f >= 0)
			close(f);
	}

	log_lines("after");
	{
		char want[1024], got[2048];
		int n = 0;
		ssize_t len;
		for (int i = 0; i < 10; i++)
			n += snprintf(want + n, sizeof(want) - (size_t)n, "before %d\n", i);
		for (int i = 0; i < 10; i++)
			n += snprintf(want + n, sizeof(want) - (size_t)n, "after %d\n", i);
		len = wl_read_file("log.txt", got, sizeof(got));
		CHECK(len == n && memcmp(got, want, (size_t)n) == 0,
		      "O_APPEND log: %zd bytes, want %d: lines lost, doubled or out of order", len, n);
	}
	wl_join(th, wl_nthreads);
	return wl_finish();
}
