/*
 * tree_pipe: pipes (and in mode "fifo" a FIFO) with data in flight, and
 * processes blocked on them, across a checkpoint of the tree.
 *
 *   root   creates P1, P2, P3 [and the FIFO "fifo" in its cwd], forks W and
 *   |      R, keeps only P3's write end; a self-pipe P4 (both ends in root)
 *   +-- W  writer: P1 (F_SETPIPE_SZ 256 KiB, write end O_NONBLOCK) gets
 *   |      10000 bytes; P2 (default 64 KiB) is filled completely, then W
 *   |      blocks in write(P2, 4096 bytes) having written nothing of it
 *   +-- R  reader: reads nothing yet; blocks in read(P3) (F_SETPIPE_SZ 4 KiB,
 *          empty); its P1 read end is O_NONBLOCK
 *   P4: 16 KiB capacity, both ends O_NONBLOCK, holds 3000 bytes.
 *
 * The FIFO only in mode "fifo": made by root with mkfifo, opened by R
 * (O_RDONLY|O_NONBLOCK) and then by W (O_WRONLY), which writes 5000 bytes
 * before READY and 5000 after (R reads the 10000 to EOF).
 *
 * Root prints READY only once /proc/W/syscall shows write(P2) and
 * /proc/R/syscall read(P3). Every byte is a function of its position in its
 * stream (wl_pat), so a lost, doubled or reordered byte is seen.
 *
 * After SIGTERM root checks P4 (FIONREAD 3000, capacity, O_NONBLOCK on both
 * ends, both ends one pipe, the 3000 bytes, then EAGAIN) and writes 1000
 * bytes to P3 and closes it. R's blocked read returns them (not EINTR: no
 * signal is sent to W or R), then R checks FIONREAD: P1 exactly 10000, P2
 * exactly 65536 [FIFO exactly 5000] (W is still blocked), capacities and
 * flags of its ends, and drains P2 to EOF: 65536 + 4096 bytes in order. So
 * W's blocked write completes: it must return 4096 (the syscall restarted,
 * not EINTR, not short). W checks its ends' capacities and flags, writes
 * 10000 more bytes to P1 [and 5000 more to the FIFO] and closes
 * everything; R reads P1 (20000 bytes) [and the FIFO (10000 bytes)] to EOF.
 * W and R check ids and memory and exit 0; root reaps them.
 */
#include "wl.h"
#include "stream.h"
#include <poll.h>
#include <sys/ioctl.h>

#define P1_SIZE (256 << 10)
#define P3_SIZE 4096
#define P4_SIZE (16 << 10)
#define P1_SEED 101
#define P2_SEED 102
#define P3_SEED 103
#define P4_SEED 104
#define FIFO_SEED 105

static int p1[2], p2[2], p3[2], p4[2], fifo_fd = -1, with_fifo;
static struct wl_region own;

/* Reads s->fd to EOF (bounded: 10 s), checking the bytes. */
static void drain(struct stream *s, size_t want)
{
	static unsigned char buf[1 << 16];
	uint64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 10000000000ull;
	for (;;) {
		ssize_t n = read(s->fd, buf, sizeof(buf));
		if (n > 0) {
			consume(s, buf, (size_t)n);
			continue;
		}
		if (n == 0)
			break;
		if (errno == EAGAIN) {
			struct pollfd pfd = {s->fd, POLLIN, 0};
			if (wl_now_ns(CLOCK_MONOTONIC) > deadline) {
				wl_fail("%s[%d]: %s: no EOF within 10 s (%zu bytes read)", wl_role, wl_exp_pid, s->what,
					s->got);
				return;
			}
			poll(&pfd, 1, 100);
			continue;
		}
		if (errno != EINTR) {
			wl_fail("%s[%d]: %s: read: %s", wl_role, wl_exp_pid, s->what, strerror(errno));
			return;
		}
	}
	TCHECK(s->got == want, "%s: %zu bytes until EOF, want %zu", s->what, s->got, want);
}

static int nread(int fd)
{
	int n = -1;
	if (ioctl(fd, FIONREAD, &n))
		return -1;
	return n;
}

static void check_end(int fd, const char *what, int want_fl, int want_size)
{
	int fl = fcntl(fd, F_GETFL), size = fcntl(fd, F_GETPIPE_SZ);
	TCHECK((fl & (O_ACCMODE | O_NONBLOCK)) == want_fl, "%s (fd %d): F_GETFL %#o, want %#o", what, fd,
	       fl & (O_ACCMODE | O_NONBLOCK), want_fl);
	TCHECK(size == want_size, "%s (fd %d): F_GETPIPE_SZ %d, want %d", what, fd, size, want_size);
}

static void child_w(void)
{
	static unsigned char buf[4096];
	ssize_t w;
	int err;
	close(p1[0]);
	close(p2[0]);
	close(p3[0]);
	close(p3[1]);
	wl_region_new(&own, 128 << 10, 21, "W's region");
	fcntl(p1[1], F_SETFL, fcntl(p1[1], F_GETFL) | O_NONBLOCK);
	write_pat(p1[1], P1_SEED, 0, 10000, "P1");
	write_pat(p2[1], P2_SEED, 0, 65536, "P2");
	if (nread(p1[1]) != 10000 || nread(p2[1]) != 65536)
		wl_die("W: FIONREAD P1 %d, P2 %d, want 10000, 65536", nread(p1[1]), nread(p2[1]));
	if (with_fifo) {
		wl_wait_mark("R-fifo");
		fifo_fd = open("fifo", O_WRONLY | O_CLOEXEC);
		if (fifo_fd < 0)
			wl_die("W: open fifo: %s", strerror(errno));
		write_pat(fifo_fd, FIFO_SEED, 0, 5000, "FIFO");
	}
	wl_tree_line();
	wl_mark("W");

	/* blocks: P2 is full */
	fill_pat(buf, sizeof(buf), P2_SEED, 65536);
	w = write(p2[1], buf, sizeof(buf));
	err = errno;
	if (wl_corrupt)
		fcntl(p1[1], F_SETPIPE_SZ, P1_SIZE / 2);
	TCHECK(w == (ssize_t)sizeof(buf), "the write blocked on the full P2 returned %zd (%s), want %zu", w,
	       w < 0 ? strerror(err) : "short", sizeof(buf));
	if (w >= 0 && w < (ssize_t)sizeof(buf))
		write_pat(p2[1], P2_SEED, 65536 + (size_t)w, sizeof(buf) - (size_t)w, "P2 (rest)");
	check_end(p1[1], "P1 write end", O_WRONLY | O_NONBLOCK, P1_SIZE);
	check_end(p2[1], "P2 write end", O_WRONLY, 65536);
	if (with_fifo)
		check_end(fifo_fd, "FIFO write end", O_WRONLY, 65536);
	close(p2[1]);
	if (wl_corrupt && write(p1[1], "x", 1) != 1)
		wl_fail("W: corrupt write: %s", strerror(errno));
	write_pat(p1[1], P1_SEED, 10000, 10000, "P1");
	close(p1[1]);
	if (with_fifo) {
		write_pat(fifo_fd, FIFO_SEED, 5000, 5000, "FIFO");
		close(fifo_fd);
	}
	wl_tree_check_ids();
	wl_region_check(&own);
	wl_check_no_children();
	wl_child_exit();
}

static void child_r(void)
{
	static unsigned char buf[P3_SIZE];
	struct stream s3 = {"P3", p3[0], P3_SEED, 0, 0};
	struct stream s1 = {"P1", p1[0], P1_SEED, 0, 0};
	struct stream s2 = {"P2", p2[0], P2_SEED, 0, 0};
	struct stream sf = {"FIFO", -1, FIFO_SEED, 0, 0};
	ssize_t n;
	close(p1[1]);
	close(p2[1]);
	close(p3[1]);
	wl_region_new(&own, 128 << 10, 22, "R's region");
	fcntl(p1[0], F_SETFL, fcntl(p1[0], F_GETFL) | O_NONBLOCK);
	if (with_fifo) {
		fifo_fd = open("fifo", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
		if (fifo_fd < 0)
			wl_die("R: open fifo: %s", strerror(errno));
		sf.fd = fifo_fd;
		wl_mark("R-fifo");
	}
	wl_tree_line();
	wl_mark("R");

	/* blocks: P3 is empty until root writes after SIGTERM */
	n = read(p3[0], buf, sizeof(buf));
	TCHECK(n > 0, "the read blocked on the empty P3 returned %zd (%s), want data", n, n < 0 ? strerror(errno) : "EOF");
	if (n > 0)
		consume(&s3, buf, (size_t)n);
	drain(&s3, 1000);
	if (wl_corrupt) {
		char c;
		if (read(p1[0], &c, 1) != 1)
			wl_fail("R: corrupt read: %s", strerror(errno));
		if (with_fifo)
			fcntl(fifo_fd, F_SETFL, O_RDONLY);
		else
			fcntl(p3[0], F_SETFL, O_RDONLY | O_NONBLOCK);
	}
	/* W is still blocked on P2: what was in flight at the checkpoint is
	 * exactly what is queued now */
	TCHECK(nread(p1[0]) == 10000, "P1: FIONREAD %d, want 10000 (bytes queued at the checkpoint)", nread(p1[0]));
	TCHECK(nread(p2[0]) == 65536, "P2: FIONREAD %d, want 65536 (full at the checkpoint)", nread(p2[0]));
	if (with_fifo)
		TCHECK(nread(fifo_fd) == 5000, "FIFO: FIONREAD %d, want 5000 (bytes queued at the checkpoint)",
		       nread(fifo_fd));
	check_end(p1[0], "P1 read end", O_RDONLY | O_NONBLOCK, P1_SIZE);
	check_end(p2[0], "P2 read end", O_RDONLY, 65536);
	check_end(p3[0], "P3 read end", O_RDONLY, P3_SIZE);
	if (with_fifo)
		check_end(fifo_fd, "FIFO read end", O_RDONLY | O_NONBLOCK, 65536);
	drain(&s2, 65536 + 4096);
	drain(&s1, 20000);
	if (with_fifo)
		drain(&sf, 10000);
	wl_tree_check_ids();
	wl_region_check(&own);
	wl_check_no_children();
	wl_child_exit();
}

int main(int argc, char **argv)
{
	pid_t w, r;
	struct stream s4 = {"P4 (self-pipe)", -1, P4_SEED, 0, 0};

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	with_fifo = strcmp(wl_mode, "fifo") == 0;
	if ((wl_mode[0] && !with_fifo) || wl_nthreads != 1)
		wl_die("tree_pipe takes no threads and no mode but fifo");
	wl_region_new(&own, 256 << 10, 20, "root's region");
	if (pipe2(p1, O_CLOEXEC) || pipe2(p2, O_CLOEXEC) || pipe2(p3, O_CLOEXEC))
		wl_die("pipe: %s", strerror(errno));
	if (fcntl(p1[0], F_SETPIPE_SZ, P1_SIZE) != P1_SIZE || fcntl(p3[0], F_SETPIPE_SZ, P3_SIZE) != P3_SIZE)
		wl_die("F_SETPIPE_SZ: %s", strerror(errno));
	if (with_fifo && mkfifo("fifo", 0600))
		wl_die("mkfifo: %s", strerror(errno));

	if ((w = wl_fork("W")) == 0)
		child_w();
	if ((r = wl_fork("R")) == 0)
		child_r();
	close(p1[0]);
	close(p1[1]);
	close(p2[0]);
	close(p2[1]);
	close(p3[0]);

	if (pipe2(p4, O_NONBLOCK) || fcntl(p4[0], F_SETPIPE_SZ, P4_SIZE) != P4_SIZE)
		wl_die("self-pipe: %s", strerror(errno));
	write_pat(p4[1], P4_SEED, 0, 3000, "P4");
	s4.fd = p4[0];

	wl_wait_mark("W");
	wl_wait_mark("R");
	wl_wait_in_syscall(w, SYS_write, p2[1], "W");
	wl_wait_in_syscall(r, SYS_read, p3[0], "R");
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	if (wl_corrupt) {
		char c;
		if (read(p4[0], &c, 1) != 1)
			wl_fail("root: corrupt read: %s", strerror(errno));
	}
	wl_check_ids(0);
	wl_tree_check_ids();
	wl_region_check(&own);
	{
		struct stat a, b, c;
		unsigned char buf[4096];
		ssize_t n;
		TCHECK(nread(p4[0]) == 3000, "P4: FIONREAD %d, want 3000", nread(p4[0]));
		check_end(p4[0], "P4 read end", O_RDONLY | O_NONBLOCK, P4_SIZE);
		check_end(p4[1], "P4 write end", O_WRONLY | O_NONBLOCK, P4_SIZE);
		check_end(p3[1], "P3 write end", O_WRONLY, P3_SIZE);
		TCHECK(fstat(p4[0], &a) == 0 && fstat(p4[1], &b) == 0 && fstat(p3[1], &c) == 0 && a.st_ino == b.st_ino &&
			       a.st_ino != c.st_ino,
		       "P4's two ends are not one pipe (or P3 is that pipe): inodes %lu, %lu, P3 %lu",
		       (unsigned long)a.st_ino, (unsigned long)b.st_ino, (unsigned long)c.st_ino);
		n = read(p4[0], buf, sizeof(buf));
		TCHECK(n == 3000, "P4: read returned %zd, want 3000", n);
		if (n > 0)
			consume(&s4, buf, (size_t)n);
		errno = 0;
		n = read(p4[0], buf, sizeof(buf));
		TCHECK(n == -1 && errno == EAGAIN, "P4: read of the empty self-pipe returned %zd (%s), want EAGAIN", n,
		       strerror(errno));
		write_pat(p4[1], P4_SEED, 3000, 100, "P4");
		n = read(p4[0], buf, sizeof(buf));
		if (n > 0)
			consume(&s4, buf, (size_t)n);
		TCHECK(s4.got == 3100, "P4: round trip after restore: %zu bytes, want 3100", s4.got);
	}
	write_pat(p3[1], P3_SEED, 0, wl_corrupt ? 999 : 1000, "P3");
	close(p3[1]);
	wl_reap_ok(w, "W");
	wl_reap_ok(r, "R");
	wl_check_no_children();
	return wl_finish();
}
