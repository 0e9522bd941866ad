/*
 * fdkinds: eventfd, timerfd, signalfd and itimers survive checkpoint/restore.
 *
 * usage: fdkinds [-t NTHREADS] MODE
 *
 * In every mode each tracked fd keeps F_GETFL, F_GETFD, its /proc/self/fd
 * link (anon_inode:[eventfd] ...) and the state lines of
 * /proc/self/fdinfo/FD listed below (compared before READY and after
 * SIGTERM, before anything reads the fds). Checks of remaining times allow
 * for the time the checkpoint takes: a remaining time must be > 0, smaller
 * than before the dump, and not smaller than before the dump minus the time
 * that really passed (a restore may freeze a timer while the process is
 * dumped, never shorten it); intervals must be exactly equal.
 *
 * eventfd: fdinfo flags/eventfd-count/eventfd-semaphore.
 *   P  eventfd(0, EFD_CLOEXEC), 5 written: reads 5, then not readable;
 *   D  F_DUPFD of P at >= 40 (no FD_CLOEXEC): the same open file description
 *      (kcmp), a write on D is read on P;
 *   S  eventfd(3, EFD_SEMAPHORE|EFD_NONBLOCK), 2 written: five reads of 1,
 *      then EAGAIN;
 *   B  eventfd(0, EFD_NONBLOCK), 0x123456789abcdef0 written (64 bits): read
 *      back exactly, then EAGAIN; 0xfffffffffffffffe fits, one more EAGAIN;
 *   W  (threads > 1) eventfd(0, 0), worker 1 blocked in read(W) at the
 *      dump: after SIGTERM main writes 7 and the read returns 7 (restarted,
 *      no EINTR).
 *
 * timerfd: fdinfo flags/clockid/ticks/settime flags/it_interval.
 *   T1 CLOCK_MONOTONIC, TFD_NONBLOCK|TFD_CLOEXEC, 30 s then every
 *      1.234567891 s: remaining as above, no expiration, and it still fires
 *      when re-armed to 5 ms;
 *   T2 CLOCK_REALTIME, TFD_TIMER_ABSTIME at now-3500.5 s, every 1000 s,
 *      timerfd_gettime'd before READY: exactly 4 expirations not read
 *      (ticks), next in 499.5 s;
 *   T3 CLOCK_BOOTTIME one-shot 1 ms, expired: disarmed (all zero), 1 tick;
 *   T5 CLOCK_REALTIME, ABSTIME at now-5000.25 s, every 2000 s, never
 *      gettime'd or read: the kernel has not yet counted the missed
 *      intervals (fdinfo says ticks: 1, it_value: (0, 0)), yet read must give
 *      exactly 3 and the timer stay armed (next in <= 999.75 s); its fdinfo
 *      ticks line is not compared;
 *   T4 (threads > 1) CLOCK_MONOTONIC 60 s, worker 1 blocked in read(T4):
 *      main re-arms it to 1 ms after SIGTERM; the read returns 1 tick, not
 *      earlier than the re-arm.
 *
 * signalfd: fdinfo flags/sigmask (compared with the expected mask too).
 *   SIGUSR1, SIGUSR2 and SIGRTMIN+3 are blocked in every thread;
 *   S1 signalfd({SIGUSR1,SIGUSR2}, SFD_NONBLOCK|SFD_CLOEXEC),
 *   S2 signalfd({SIGRTMIN+3}, 0). Pending at the dump: SIGUSR1 from raise()
 *   (main, thread-directed, SI_TKILL), SIGUSR2 sigqueue'd to the process
 *   (SI_QUEUE, value 4242), and in each worker i a thread-directed SIGUSR1
 *   (pthread_sigqueue, value 100+i). After restore: main's sigpending is
 *   exactly {SIGUSR1,SIGUSR2}; S1 is readable, S2 not; S1 gives main SIGUSR1
 *   (ssi_code SI_TKILL) then SIGUSR2 (SI_QUEUE, 4242), both with our pid and
 *   uid, then EAGAIN; a new kill(SIGUSR2) is read from S1 (SI_USER); each
 *   worker reads its own SIGUSR1 (SI_QUEUE, 100+i) from S1. With 1 thread
 *   main sigqueues SIGRTMIN+3 (55) and reads it from S2; with more, worker 1
 *   is blocked in read(S2) at the dump and main pthread_sigqueues it
 *   SIGRTMIN+3 (77), which that read returns.
 *
 * itimers: ITIMER_REAL 100 s every 2.345678 s, ITIMER_VIRTUAL 200 s every
 *   3.456789 s, ITIMER_PROF 300 s every 4.567891 s: intervals exact; REAL
 *   remaining as above and > 90 s; VIRTUAL > 190 s and PROF > 290 s and at
 *   most 50 ms above their value before the dump (CPU-time itimers are read
 *   against a CPU clock sampled at tick granularity); none fired.
 * itimer-tick: ITIMER_REAL every 50 ms, a SIGALRM handler counts: after
 *   restore it keeps counting (5 more within 3 s, not faster than the
 *   interval allows), getitimer shows the interval exactly and 0 < remaining
 *   <= 50 ms.
 * itimer-pending: SIGALRM blocked in every thread, ITIMER_REAL 1 ms then
 *   every 20 s has expired before READY: SIGALRM is pending and the kernel
 *   re-arms the timer only when SIGALRM is dequeued, so until then
 *   getitimer says {interval 20 s, value 0} (what a dump sees whenever the
 *   timer expired while the process was frozen). After restore SIGALRM is
 *   still pending, getitimer's interval is still 20 s (value 0 or at most
 *   20 s); main unblocks SIGALRM: the handler runs exactly once and the
 *   timer is armed (0 < remaining <= 20 s, interval 20 s).
 *
 * shared (a tree, see wl.h; no threads): the root makes eventfds E (fd 10,
 *   5 written) and F (fd 11, EFD_SEMAPHORE, 2) and forks child C; each then
 *   opens its own eventfd at fd 12 (root 9, C 13). After restore: fds 10
 *   and 11 are one open file description in root and C (kcmp across pids),
 *   fd 12 is not; root reads 5 from E and writes 3, C reads 3 and writes 11,
 *   root reads 11 (handshakes by mark files); C and root each read 1 from F,
 *   then F is empty; each reads its own fd 12.
 */
#include "wl.h"
#include <linux/kcmp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/time.h>
#include <sys/timerfd.h>

#define NSEC 1000000000LL
#define MSEC 1000000LL

/* Prefix of FAIL lines: "" in single-process modes, "ROLE[PID]: " in a tree. */
static char who[64];
#define FCHECK(cond, fmt, ...) CHECK(cond, "%s" fmt, who, ##__VA_ARGS__)

static pthread_t th[WL_MAX_THREADS];

static int64_t now_ns(clockid_t clk) { return (int64_t)wl_now_ns(clk); }
static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * NSEC + t.tv_nsec; }
static struct timespec ns_ts(int64_t ns) { return (struct timespec){ns / NSEC, ns % NSEC}; }
static double secs(int64_t ns) { return (double)ns / NSEC; }

static int same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

/* Moves fd to number at (if at >= 0). */
static int place(int fd, int at, const char *what)
{
	if (fd < 0)
		wl_die("%s: %s", what, strerror(errno));
	if (at >= 0 && fd != at) {
		int fl = fcntl(fd, F_GETFD);
		if (dup3(fd, at, fl & FD_CLOEXEC ? O_CLOEXEC : 0) != at)
			wl_die("%s: dup3 to %d: %s", what, at, strerror(errno));
		close(fd);
		fd = at;
	}
	return fd;
}

/* ------------------------------------------------------------------------
 * Tracked fds: F_GETFL, F_GETFD, link and selected fdinfo lines. */

static const char *const efd_keys[] = {"flags:", "eventfd-count:", "eventfd-semaphore:", NULL};
static const char *const tfd_keys[] = {"flags:", "clockid:", "ticks:", "settime flags:", "it_interval:", NULL};
static const char *const tfd_keys_noticks[] = {"flags:", "clockid:", "settime flags:", "it_interval:", NULL};
static const char *const sfd_keys[] = {"flags:", "sigmask:", NULL};

struct fdrec {
	const char *what;
	int fd;
	const char *const *keys;
	int fl, fdfl;
	char link[128];
	char info[1024];
};

#define MAXREC 16
static struct fdrec recs[MAXREC];
static int nrecs;

/* Appends line to out with tabs and runs of blanks made one space. */
static void append_norm(char *out, size_t size, const char *line)
{
	size_t n = strlen(out);
	int blank = 0;
	if (n && n + 3 < size) {
		strcpy(out + n, " | ");
		n += 3;
	}
	for (; *line && n + 1 < size; line++) {
		if (*line == ' ' || *line == '\t') {
			if (blank)
				continue;
			blank = 1;
			out[n++] = ' ';
		} else {
			blank = 0;
			out[n++] = *line;
		}
	}
	out[n] = 0;
}

/* The fdinfo lines of fd starting with one of keys, normalized, in order. */
static void fdinfo_lines(int fd, const char *const *keys, char *out, size_t size)
{
	char path[64], buf[4096], *save = NULL;
	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	if (wl_read_file(path, buf, sizeof(buf)) < 0) {
		snprintf(out, size, "(%s: %s)", path, strerror(errno));
		return;
	}
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		for (const char *const *k = keys; *k; k++)
			if (strncmp(line, *k, strlen(*k)) == 0)
				append_norm(out, size, line);
}

static void fdrec_read(struct fdrec *r)
{
	char path[64];
	ssize_t n;
	r->fl = fcntl(r->fd, F_GETFL);
	r->fdfl = fcntl(r->fd, F_GETFD);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", r->fd);
	n = readlink(path, r->link, sizeof(r->link) - 1);
	r->link[n < 0 ? 0 : n] = 0;
	fdinfo_lines(r->fd, r->keys, r->info, sizeof(r->info));
}

static void track(const char *what, int fd, const char *const *keys, const char *link)
{
	struct fdrec *r;
	if (nrecs == MAXREC)
		wl_die("too many tracked fds");
	r = &recs[nrecs++];
	r->what = what;
	r->fd = fd;
	r->keys = keys;
	fdrec_read(r);
	if (r->fl < 0 || strcmp(r->link, link) != 0)
		wl_die("%s (fd %d): F_GETFL %d, link '%s', want '%s'", what, fd, r->fl, r->link, link);
	wl_info("%s%s fd %d: flags %#o fd flags %#x %s: %s", who, what, fd, r->fl, r->fdfl, r->link, r->info);
}

/* Compares every tracked fd with its record (call before reading them). */
static void check_tracked(void)
{
	for (int i = 0; i < nrecs; i++) {
		struct fdrec *b = &recs[i], a = *b;
		fdrec_read(&a);
		FCHECK(a.fl == b->fl, "%s (fd %d): F_GETFL %#o, want %#o", b->what, b->fd, a.fl, b->fl);
		FCHECK(a.fdfl == b->fdfl, "%s (fd %d): F_GETFD %#x, want %#x", b->what, b->fd, a.fdfl, b->fdfl);
		FCHECK(strcmp(a.link, b->link) == 0, "%s (fd %d): /proc/self/fd link '%s', want '%s'", b->what, b->fd,
		       a.link, b->link);
		FCHECK(strcmp(a.info, b->info) == 0, "%s (fd %d): fdinfo '%s', want '%s'", b->what, b->fd, a.info,
		       b->info);
	}
}

/* ------------------------------------------------------------------------
 * eventfd */

#define EFD_BIG 0x123456789abcdef0ull
#define EFD_MAX 0xfffffffffffffffeull

static int efd_plain, efd_dup, efd_sem, efd_big, efd_wait = -1;

static ssize_t efd_read(int fd, uint64_t *v)
{
	*v = 0;
	return read(fd, v, sizeof(*v));
}

static ssize_t efd_write(int fd, uint64_t v) { return write(fd, &v, sizeof(v)); }

static void xefd_write(int fd, uint64_t v)
{
	if (efd_write(fd, v) != 8)
		wl_die("write %llu to eventfd %d: %s", (unsigned long long)v, fd, strerror(errno));
}

static void eventfd_setup(void)
{
	efd_plain = place(eventfd(0, EFD_CLOEXEC), -1, "eventfd P");
	xefd_write(efd_plain, 5);
	efd_dup = fcntl(efd_plain, F_DUPFD, 40);
	if (efd_dup < 0)
		wl_die("F_DUPFD: %s", strerror(errno));
	efd_sem = place(eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK), -1, "eventfd S");
	xefd_write(efd_sem, 2);
	efd_big = place(eventfd(0, EFD_NONBLOCK), -1, "eventfd B");
	xefd_write(efd_big, EFD_BIG);
	if (wl_nthreads > 1)
		efd_wait = place(eventfd(0, 0), -1, "eventfd W");
	track("eventfd P", efd_plain, efd_keys, "anon_inode:[eventfd]");
	track("eventfd D (dup of P)", efd_dup, efd_keys, "anon_inode:[eventfd]");
	track("eventfd S (semaphore)", efd_sem, efd_keys, "anon_inode:[eventfd]");
	track("eventfd B", efd_big, efd_keys, "anon_inode:[eventfd]");
	if (efd_wait >= 0)
		track("eventfd W", efd_wait, efd_keys, "anon_inode:[eventfd]");
}

/* Worker 1: blocked in read(W) until main writes 7 after SIGTERM. */
static void eventfd_worker1(void)
{
	uint64_t v;
	ssize_t n = efd_read(efd_wait, &v);
	int err = errno;
	FCHECK(n == 8 && v == 7, "worker 1: blocked read of eventfd W returned %zd (%s), value %llu, want 7", n,
	       n < 0 ? strerror(err) : "ok", (unsigned long long)v);
}

static void eventfd_corrupt(void)
{
	uint64_t v;
	efd_write(efd_plain, 1);
	efd_read(efd_sem, &v);
	efd_write(efd_big, 1);
	fcntl(efd_dup, F_SETFD, FD_CLOEXEC);
	if (efd_wait >= 0)
		efd_write(efd_wait, 1);
}

static void eventfd_check(void)
{
	pid_t p = getpid();
	uint64_t v;
	ssize_t n;

	check_tracked();
	FCHECK(same_file(p, efd_plain, p, efd_dup), "eventfds P and D (its dup) are not one open file description");
	FCHECK(!same_file(p, efd_plain, p, efd_sem) && !same_file(p, efd_sem, p, efd_big) &&
		   !same_file(p, efd_plain, p, efd_big),
	       "eventfds P, S, B: two of them are one open file description");

	if (!wl_readable(efd_plain, 0)) {
		wl_fail("%seventfd P is not readable: counter 0, want 5", who);
	} else {
		n = efd_read(efd_plain, &v);
		FCHECK(n == 8 && v == 5, "eventfd P: read returned %zd, value %llu, want 5", n, (unsigned long long)v);
	}
	FCHECK(!wl_readable(efd_plain, 0) && !wl_readable(efd_dup, 0), "eventfd P/D still readable after reading 5");
	if (efd_write(efd_dup, 1) != 8) {
		wl_fail("%swrite to eventfd D: %s", who, strerror(errno));
	} else if (!wl_readable(efd_plain, 0)) {
		wl_fail("%seventfd P: 1 written on D (its dup) is not seen on P", who);
	} else {
		n = efd_read(efd_plain, &v);
		FCHECK(n == 8 && v == 1, "eventfd P: read %zd, value %llu after 1 was written on D, want 1", n,
		       (unsigned long long)v);
	}

	for (int i = 0; i < 5; i++) {
		n = efd_read(efd_sem, &v);
		FCHECK(n == 8 && v == 1, "eventfd S (semaphore, counter 5): read %d returned %zd (%s), value %llu, want 1",
		       i + 1, n, n < 0 ? strerror(errno) : "ok", (unsigned long long)v);
	}
	errno = 0;
	n = efd_read(efd_sem, &v);
	FCHECK(n == -1 && errno == EAGAIN, "eventfd S: read 6 returned %zd (%s) value %llu, want EAGAIN (counter 0)", n,
	       strerror(errno), (unsigned long long)v);

	n = efd_read(efd_big, &v);
	FCHECK(n == 8 && v == EFD_BIG, "eventfd B: read returned %zd (%s), value %#llx, want %#llx", n,
	       n < 0 ? strerror(errno) : "ok", (unsigned long long)v, EFD_BIG);
	errno = 0;
	n = efd_read(efd_big, &v);
	FCHECK(n == -1 && errno == EAGAIN, "eventfd B: second read returned %zd (%s), want EAGAIN", n, strerror(errno));
	FCHECK(efd_write(efd_big, EFD_MAX) == 8, "eventfd B: write of the maximum %#llx: %s", EFD_MAX,
	       strerror(errno));
	errno = 0;
	n = efd_write(efd_big, 1);
	FCHECK(n == -1 && errno == EAGAIN, "eventfd B: write of 1 to a full counter returned %zd (%s), want EAGAIN", n,
	       strerror(errno));

	if (efd_wait >= 0)
		FCHECK(efd_write(efd_wait, 7) == 8, "write 7 to eventfd W: %s", strerror(errno));
}

/* ------------------------------------------------------------------------
 * timerfd */

struct tsnap {
	struct itimerspec v;
	int64_t t0; /* the timer's clock just before timerfd_gettime */
	clockid_t clk;
};

static int tfd_mono, tfd_abs, tfd_once, tfd_stale, tfd_wait = -1;
static struct tsnap snap_mono, snap_abs, snap_stale, snap_wait;
static const struct timespec T1_INTERVAL = {1, 234567891};
static _Atomic int64_t t_rearm = INT64_MAX;

static void tsnap_take(int fd, clockid_t clk, struct tsnap *s, const char *what)
{
	s->clk = clk;
	s->t0 = now_ns(clk);
	if (timerfd_gettime(fd, &s->v))
		wl_die("timerfd_gettime %s: %s", what, strerror(errno));
}

static int xtimerfd(clockid_t clk, int flags, int abs, int64_t value, struct timespec interval, const char *what)
{
	int fd = place(timerfd_create(clk, flags), -1, what);
	struct itimerspec its = {interval, ns_ts(value)};
	if (timerfd_settime(fd, abs ? TFD_TIMER_ABSTIME : 0, &its, NULL))
		wl_die("timerfd_settime %s: %s", what, strerror(errno));
	return fd;
}

static int64_t fdinfo_ticks(int fd)
{
	char line[256];
	const char *const keys[] = {"ticks:", NULL};
	fdinfo_lines(fd, keys, line, sizeof(line));
	return strncmp(line, "ticks: ", 7) == 0 ? atoll(line + 7) : -1;
}

static void timerfd_setup(void)
{
	int64_t real = now_ns(CLOCK_REALTIME);

	tfd_mono = xtimerfd(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC, 0, 30 * NSEC, T1_INTERVAL, "T1");
	tsnap_take(tfd_mono, CLOCK_MONOTONIC, &snap_mono, "T1");

	tfd_abs = xtimerfd(CLOCK_REALTIME, 0, 1, real - 3500 * NSEC - NSEC / 2, (struct timespec){1000, 0}, "T2");
	if (!wl_readable(tfd_abs, 2000))
		wl_die("T2 (armed in the past) did not expire within 2 s");
	tsnap_take(tfd_abs, CLOCK_REALTIME, &snap_abs, "T2");
	if (fdinfo_ticks(tfd_abs) != 4)
		wl_die("T2: fdinfo ticks %lld after timerfd_gettime, want 4", (long long)fdinfo_ticks(tfd_abs));

	tfd_once = xtimerfd(CLOCK_BOOTTIME, TFD_NONBLOCK, 0, MSEC, (struct timespec){0, 0}, "T3");
	if (!wl_readable(tfd_once, 2000))
		wl_die("T3 (1 ms) did not expire within 2 s");

	/* T5: armed in the past and never gettime'd: remaining 999.75 s at
	 * 'real', 3 expirations the kernel counts only on gettime/read. */
	tfd_stale = xtimerfd(CLOCK_REALTIME, TFD_CLOEXEC, 1, real - 5000 * NSEC - NSEC / 4, (struct timespec){2000, 0},
			     "T5");
	if (!wl_readable(tfd_stale, 2000))
		wl_die("T5 (armed in the past) did not expire within 2 s");
	snap_stale.clk = CLOCK_REALTIME;
	snap_stale.t0 = real;
	snap_stale.v.it_interval = (struct timespec){2000, 0};
	snap_stale.v.it_value = ns_ts(999 * NSEC + 3 * NSEC / 4);
	if (fdinfo_ticks(tfd_stale) != 1)
		wl_info("T5: fdinfo ticks %lld before any gettime/read (expected the kernel to show 1)",
			(long long)fdinfo_ticks(tfd_stale));

	if (wl_nthreads > 1) {
		tfd_wait = xtimerfd(CLOCK_MONOTONIC, 0, 0, 60 * NSEC, (struct timespec){0, 0}, "T4");
		tsnap_take(tfd_wait, CLOCK_MONOTONIC, &snap_wait, "T4");
	}

	track("timerfd T1 (monotonic, 30 s, every 1.234567891 s)", tfd_mono, tfd_keys, "anon_inode:[timerfd]");
	track("timerfd T2 (realtime, absolute, 4 ticks)", tfd_abs, tfd_keys, "anon_inode:[timerfd]");
	track("timerfd T3 (boottime, expired one-shot)", tfd_once, tfd_keys, "anon_inode:[timerfd]");
	track("timerfd T5 (realtime, absolute, 3 ticks not yet counted)", tfd_stale, tfd_keys_noticks,
	      "anon_inode:[timerfd]");
	if (tfd_wait >= 0)
		track("timerfd T4 (monotonic, 60 s)", tfd_wait, tfd_keys, "anon_inode:[timerfd]");
}

/* Worker 1: blocked in read(T4) until main re-arms it after SIGTERM. */
static void timerfd_worker1(void)
{
	uint64_t v = 0;
	ssize_t n = read(tfd_wait, &v, sizeof(v));
	int err = errno;
	int64_t done = now_ns(CLOCK_MONOTONIC), rearm = atomic_load(&t_rearm);
	FCHECK(n == 8 && v == 1, "worker 1: blocked read of timerfd T4 returned %zd (%s), ticks %llu, want 1 tick", n,
	       n < 0 ? strerror(err) : "ok", (unsigned long long)v);
	FCHECK(done >= rearm, "worker 1: blocked read of timerfd T4 returned before main re-armed it (%s)",
	       rearm == INT64_MAX ? "not re-armed yet" : "earlier");
}

/* The remaining time of fd against its snapshot: interval exact, remaining
 * > 0, <= hi (strictly below the snapshot's unless equal_ok), and not below
 * the snapshot's minus the time passed since (slack 1 ms). */
static void check_remaining(const char *what, int fd, const struct tsnap *b, int equal_ok)
{
	struct itimerspec cur;
	int64_t rem, remb = ts_ns(b->v.it_value), el;
	if (timerfd_gettime(fd, &cur)) {
		wl_fail("%s%s: timerfd_gettime: %s", who, what, strerror(errno));
		return;
	}
	el = now_ns(b->clk) - b->t0;
	rem = ts_ns(cur.it_value);
	FCHECK(ts_ns(cur.it_interval) == ts_ns(b->v.it_interval), "%s: interval %ld.%09ld s, want %ld.%09ld s", what,
	       (long)cur.it_interval.tv_sec, cur.it_interval.tv_nsec, (long)b->v.it_interval.tv_sec,
	       b->v.it_interval.tv_nsec);
	FCHECK(rem > 0, "%s: disarmed after restore (it_value 0), want about %.3f s remaining", what,
	       secs(remb - el));
	FCHECK(equal_ok ? rem <= remb : rem < remb, "%s: %.9f s remaining, want less than the %.9f s before the dump",
	       what, secs(rem), secs(remb));
	FCHECK(rem >= remb - el - MSEC,
	       "%s: %.9f s remaining, but %.9f s remained %.3f s earlier: the timer would fire early", what, secs(rem),
	       secs(remb), secs(el));
}

/* Reads fd (must be readable now): ticks want, then nothing more. */
static void check_ticks(const char *what, int fd, uint64_t want)
{
	uint64_t v = 0;
	ssize_t n;
	if (!wl_readable(fd, 0)) {
		wl_fail("%s%s: not readable, want %llu expiration(s) not yet read", who, what, (unsigned long long)want);
		return;
	}
	n = read(fd, &v, sizeof(v));
	FCHECK(n == 8 && v == want, "%s: read returned %zd (%s), %llu expiration(s), want %llu", what, n,
	       n < 0 ? strerror(errno) : "ok", (unsigned long long)v, (unsigned long long)want);
	FCHECK(!wl_readable(fd, 0), "%s: still readable after reading the expirations", what);
}

static void timerfd_corrupt(void)
{
	uint64_t v;
	struct itimerspec its = {{1, 234567892}, {30, 0}};
	timerfd_settime(tfd_mono, 0, &its, NULL);
	if (read(tfd_abs, &v, sizeof(v)) < 0 || read(tfd_once, &v, sizeof(v)) < 0 || read(tfd_stale, &v, sizeof(v)) < 0)
		wl_info("corrupt: read: %s", strerror(errno));
	if (tfd_wait >= 0) {
		struct itimerspec soon = {{0, 0}, {0, MSEC}};
		timerfd_settime(tfd_wait, 0, &soon, NULL);
		wl_msleep(20);
	}
}

static void timerfd_check(void)
{
	struct itimerspec cur;
	int64_t el_mono = now_ns(CLOCK_MONOTONIC) - snap_mono.t0;

	check_tracked();

	check_remaining("timerfd T1", tfd_mono, &snap_mono, 0);
	if (el_mono < 25 * NSEC) {
		errno = 0;
		uint64_t v = 0;
		ssize_t n = read(tfd_mono, &v, sizeof(v));
		FCHECK(n == -1 && errno == EAGAIN, "timerfd T1: read returned %zd (%s), %llu ticks, want EAGAIN (no expiration)",
		       n, strerror(errno), (unsigned long long)v);
	} else {
		wl_info("timerfd T1: %.1f s since READY: not checking that it did not expire", secs(el_mono));
	}

	check_remaining("timerfd T2", tfd_abs, &snap_abs, 0);
	check_ticks("timerfd T2", tfd_abs, 4);

	if (timerfd_gettime(tfd_once, &cur) == 0)
		FCHECK(ts_ns(cur.it_value) == 0 && ts_ns(cur.it_interval) == 0,
		       "timerfd T3 (expired one-shot): it_value %ld.%09ld it_interval %ld.%09ld, want disarmed (0)",
		       (long)cur.it_value.tv_sec, cur.it_value.tv_nsec, (long)cur.it_interval.tv_sec,
		       cur.it_interval.tv_nsec);
	else
		wl_fail("timerfd_gettime T3: %s", strerror(errno));
	check_ticks("timerfd T3", tfd_once, 1);

	check_remaining("timerfd T5 (ticks never counted before the dump: dump them with timerfd_gettime)", tfd_stale,
			&snap_stale, 1);
	check_ticks("timerfd T5 (ticks never counted before the dump)", tfd_stale, 3);

	/* T1 still works as a timer. */
	{
		struct itimerspec soon = {{0, 0}, {0, 5 * MSEC}};
		if (timerfd_settime(tfd_mono, 0, &soon, NULL))
			wl_fail("timerfd_settime T1: %s", strerror(errno));
		else if (!wl_readable(tfd_mono, 2000))
			wl_fail("timerfd T1 re-armed to 5 ms did not fire within 2 s");
		else
			check_ticks("timerfd T1 re-armed to 5 ms", tfd_mono, 1);
	}

	if (tfd_wait >= 0) {
		struct itimerspec soon = {{0, 0}, {0, MSEC}};
		check_remaining("timerfd T4", tfd_wait, &snap_wait, 0);
		atomic_store(&t_rearm, now_ns(CLOCK_MONOTONIC));
		FCHECK(timerfd_settime(tfd_wait, 0, &soon, NULL) == 0, "timerfd_settime T4: %s", strerror(errno));
	}
}

/* ------------------------------------------------------------------------
 * signalfd */

static int sfd1, sfd2;
static sigset_t mask1, mask2;
static int sig_rt3;

static uint64_t set_bits(const sigset_t *s)
{
	uint64_t m = 0;
	for (int sig = 1; sig <= 64; sig++)
		if (sigismember(s, sig) == 1)
			m |= 1ull << (sig - 1);
	return m;
}

static void check_sigmask_line(const char *what, int fd, const sigset_t *s)
{
	char want[64], got[256];
	snprintf(want, sizeof(want), "sigmask: %016llx", (unsigned long long)set_bits(s));
	const char *const keys[] = {"sigmask:", NULL};
	fdinfo_lines(fd, keys, got, sizeof(got));
	FCHECK(strcmp(got, want) == 0, "%s: fdinfo '%s', want '%s'", what, got, want);
}

static void signalfd_setup(void)
{
	sigset_t all;
	sig_rt3 = SIGRTMIN + 3;
	sigemptyset(&mask1);
	sigaddset(&mask1, SIGUSR1);
	sigaddset(&mask1, SIGUSR2);
	sigemptyset(&mask2);
	sigaddset(&mask2, sig_rt3);
	sigemptyset(&all);
	sigaddset(&all, SIGUSR1);
	sigaddset(&all, SIGUSR2);
	sigaddset(&all, sig_rt3);
	if (sigprocmask(SIG_BLOCK, &all, NULL))
		wl_die("sigprocmask: %s", strerror(errno));
	sfd1 = place(signalfd(-1, &mask1, SFD_NONBLOCK | SFD_CLOEXEC), -1, "signalfd S1");
	sfd2 = place(signalfd(-1, &mask2, 0), -1, "signalfd S2");
	if (raise(SIGUSR1))
		wl_die("raise: %s", strerror(errno));
	if (sigqueue(getpid(), SIGUSR2, (union sigval){.sival_int = 4242}))
		wl_die("sigqueue: %s", strerror(errno));
	check_sigmask_line("signalfd S1 (before READY)", sfd1, &mask1);
	check_sigmask_line("signalfd S2 (before READY)", sfd2, &mask2);
	if (atomic_load(&wl_fails))
		wl_die("the fdinfo sigmask lines are not as expected");
	track("signalfd S1 {SIGUSR1,SIGUSR2}", sfd1, sfd_keys, "anon_inode:[signalfd]");
	track("signalfd S2 {SIGRTMIN+3}", sfd2, sfd_keys, "anon_inode:[signalfd]");
}

/* Reads one siginfo from fd and compares it. */
static void check_siginfo(const char *what, int fd, int signo, int code, int value)
{
	struct signalfd_siginfo si;
	ssize_t n;
	memset(&si, 0, sizeof(si));
	n = read(fd, &si, sizeof(si));
	if (n != (ssize_t)sizeof(si)) {
		wl_fail("%s%s: read returned %zd (%s), want signal %d", who, what, n, n < 0 ? strerror(errno) : "short",
			signo);
		return;
	}
	FCHECK((int)si.ssi_signo == signo && si.ssi_code == code && (int)si.ssi_pid == wl_pid &&
		       si.ssi_uid == getuid() && (value < 0 || si.ssi_int == value),
	       "%s: ssi_signo %u ssi_code %d ssi_pid %u ssi_uid %u ssi_int %d, want %d %d %d %u %d", what, si.ssi_signo,
	       si.ssi_code, si.ssi_pid, si.ssi_uid, si.ssi_int, signo, code, (int)wl_pid, getuid(), value);
}

static void signalfd_worker_setup(int idx)
{
	if (pthread_sigqueue(pthread_self(), SIGUSR1, (union sigval){.sival_int = 100 + idx}))
		wl_die("pthread_sigqueue(self): %s", strerror(errno));
}

/* Worker 1: blocked in read(S2) until main sends it SIGRTMIN+3 after
 * SIGTERM. */
static void signalfd_worker1(void)
{
	check_siginfo("worker 1: blocked read of signalfd S2", sfd2, sig_rt3, SI_QUEUE, 77);
}

static void signalfd_worker_check(int idx)
{
	char what[64];
	snprintf(what, sizeof(what), "worker %d: signalfd S1 (its own SIGUSR1)", idx);
	check_siginfo(what, sfd1, SIGUSR1, SI_QUEUE, 100 + idx);
}

static void signalfd_corrupt(void)
{
	struct signalfd_siginfo si;
	sigset_t one;
	if (read(sfd1, &si, sizeof(si)) < 0)
		wl_info("corrupt: read: %s", strerror(errno));
	sigemptyset(&one);
	sigaddset(&one, SIGUSR1);
	signalfd(sfd1, &one, 0);
	fcntl(sfd2, F_SETFL, O_NONBLOCK);
}

static void signalfd_check(void)
{
	sigset_t pend;
	char what[128];

	check_tracked();
	check_sigmask_line("signalfd S1", sfd1, &mask1);
	check_sigmask_line("signalfd S2", sfd2, &mask2);

	if (sigpending(&pend) == 0) {
		sigset_t want = mask1;
		FCHECK(set_bits(&pend) == set_bits(&want), "main: pending signals %#llx, want %#llx (SIGUSR1, SIGUSR2)",
		       (unsigned long long)set_bits(&pend), (unsigned long long)set_bits(&want));
	} else {
		wl_fail("sigpending: %s", strerror(errno));
	}
	FCHECK(wl_readable(sfd1, 0), "signalfd S1 is not readable: its pending signals are lost");
	FCHECK(!wl_readable(sfd2, 0), "signalfd S2 is readable: nothing should be pending for it");

	check_siginfo("main: signalfd S1 (raise)", sfd1, SIGUSR1, SI_TKILL, -1);
	check_siginfo("main: signalfd S1 (sigqueue to the process)", sfd1, SIGUSR2, SI_QUEUE, 4242);
	{
		struct signalfd_siginfo si;
		errno = 0;
		ssize_t n = read(sfd1, &si, sizeof(si));
		FCHECK(n == -1 && errno == EAGAIN, "main: signalfd S1: third read returned %zd (%s), signal %u, want EAGAIN",
		       n, strerror(errno), n > 0 ? si.ssi_signo : 0);
	}
	FCHECK(sigpending(&pend) == 0 && !sigismember(&pend, SIGUSR1) && !sigismember(&pend, SIGUSR2),
	       "main: SIGUSR1/SIGUSR2 still pending after reading them from signalfd S1");

	if (kill(getpid(), SIGUSR2))
		wl_fail("kill SIGUSR2: %s", strerror(errno));
	else if (!wl_readable(sfd1, 2000))
		wl_fail("signalfd S1: a new SIGUSR2 is not readable within 2 s");
	else
		check_siginfo("main: signalfd S1 (new kill)", sfd1, SIGUSR2, SI_USER, -1);

	if (wl_nthreads == 1) {
		if (sigqueue(getpid(), sig_rt3, (union sigval){.sival_int = 55}))
			wl_fail("sigqueue SIGRTMIN+3: %s", strerror(errno));
		else if (!wl_readable(sfd2, 2000))
			wl_fail("signalfd S2: SIGRTMIN+3 not readable within 2 s");
		else
			check_siginfo("main: signalfd S2 (new sigqueue)", sfd2, sig_rt3, SI_QUEUE, 55);
	} else {
		int rc = pthread_sigqueue(th[1], sig_rt3, (union sigval){.sival_int = wl_corrupt ? 78 : 77});
		snprintf(what, sizeof(what), "pthread_sigqueue(worker 1, SIGRTMIN+3): %s", strerror(rc));
		FCHECK(rc == 0, "%s", what);
	}
}

/* ------------------------------------------------------------------------
 * itimers */

static atomic_int n_alrm, n_vtalrm, n_prof;
static struct itimerval it_before[3];
static int64_t it_t0;
static const struct itimerval it_set[3] = {
	{{2, 345678}, {100, 0}}, /* ITIMER_REAL */
	{{3, 456789}, {200, 0}}, /* ITIMER_VIRTUAL */
	{{4, 567891}, {300, 0}}, /* ITIMER_PROF */
};
static const char *const it_name[3] = {"ITIMER_REAL", "ITIMER_VIRTUAL", "ITIMER_PROF"};
#define TICK_INTERVAL_US 50000
static int tick_ready;

static void on_timer_signal(int sig)
{
	if (sig == SIGALRM)
		atomic_fetch_add(&n_alrm, 1);
	else if (sig == SIGVTALRM)
		atomic_fetch_add(&n_vtalrm, 1);
	else
		atomic_fetch_add(&n_prof, 1);
}

static int64_t tv_ns(struct timeval tv) { return (int64_t)tv.tv_sec * NSEC + (int64_t)tv.tv_usec * 1000; }

static void itimer_handlers(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_timer_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) || sigaction(SIGVTALRM, &sa, NULL) || sigaction(SIGPROF, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));
}

static void itimers_setup(void)
{
	itimer_handlers();
	for (int w = 0; w < 3; w++)
		if (setitimer(w, &it_set[w], NULL))
			wl_die("setitimer %s: %s", it_name[w], strerror(errno));
	it_t0 = now_ns(CLOCK_MONOTONIC);
	for (int w = 0; w < 3; w++) {
		if (getitimer(w, &it_before[w]))
			wl_die("getitimer %s: %s", it_name[w], strerror(errno));
		wl_info("%s: interval %ld.%06ld value %ld.%06ld", it_name[w], (long)it_before[w].it_interval.tv_sec,
			(long)it_before[w].it_interval.tv_usec, (long)it_before[w].it_value.tv_sec,
			(long)it_before[w].it_value.tv_usec);
	}
}

static void itimers_corrupt(void)
{
	struct itimerval real = {{2, 345679}, {100, 0}}, off = {{0, 0}, {0, 0}}, prof = {{4, 567891}, {300, 500000}};
	setitimer(ITIMER_REAL, &real, NULL);
	setitimer(ITIMER_VIRTUAL, &off, NULL);
	setitimer(ITIMER_PROF, &prof, NULL);
}

static void itimers_check(void)
{
	struct itimerval cur[3];
	int64_t el;
	for (int w = 0; w < 3; w++)
		if (getitimer(w, &cur[w]))
			wl_fail("getitimer %s: %s", it_name[w], strerror(errno));
	el = now_ns(CLOCK_MONOTONIC) - it_t0;
	for (int w = 0; w < 3; w++) {
		int64_t rem = tv_ns(cur[w].it_value), remb = tv_ns(it_before[w].it_value);
		int64_t lo = tv_ns(it_set[w].it_value) - 10 * NSEC;
		FCHECK(tv_ns(cur[w].it_interval) == tv_ns(it_before[w].it_interval),
		       "%s: interval %ld.%06ld s, want %ld.%06ld s", it_name[w], (long)cur[w].it_interval.tv_sec,
		       (long)cur[w].it_interval.tv_usec, (long)it_before[w].it_interval.tv_sec,
		       (long)it_before[w].it_interval.tv_usec);
		FCHECK(rem > lo, "%s: %.6f s remaining, want more than %.0f s (%.6f s before the dump)", it_name[w],
		       secs(rem), secs(lo), secs(remb));
		if (w == ITIMER_REAL) {
			FCHECK(rem < remb, "%s: %.6f s remaining, want less than the %.6f s before the dump", it_name[w],
			       secs(rem), secs(remb));
			FCHECK(rem >= remb - el - MSEC,
			       "%s: %.6f s remaining, but %.6f s remained %.3f s earlier: it would fire early", it_name[w],
			       secs(rem), secs(remb), secs(el));
		} else {
			FCHECK(rem <= remb + 50 * MSEC,
			       "%s: %.6f s remaining, more than the %.6f s before the dump (+50 ms for the tick-sampled CPU clock)",
			       it_name[w], secs(rem), secs(remb));
		}
	}
	FCHECK(atomic_load(&n_alrm) == 0 && atomic_load(&n_vtalrm) == 0 && atomic_load(&n_prof) == 0,
	       "itimer signals delivered: SIGALRM %d SIGVTALRM %d SIGPROF %d, want none (the timers are far off)",
	       atomic_load(&n_alrm), atomic_load(&n_vtalrm), atomic_load(&n_prof));
}

static void itimer_tick_setup(void)
{
	struct itimerval it = {{0, TICK_INTERVAL_US}, {0, TICK_INTERVAL_US}};
	itimer_handlers();
	if (setitimer(ITIMER_REAL, &it, NULL))
		wl_die("setitimer: %s", strerror(errno));
	for (int i = 0; i < 200 && atomic_load(&n_alrm) < 3; i++)
		wl_msleep(10);
	tick_ready = atomic_load(&n_alrm);
	if (tick_ready < 3)
		wl_die("only %d SIGALRMs within 2 s of a 50 ms ITIMER_REAL", tick_ready);
}

static void itimer_tick_corrupt(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
}

static void itimer_tick_check(void)
{
	int c0 = atomic_load(&n_alrm), d;
	int64_t t0 = now_ns(CLOCK_MONOTONIC), el;
	struct itimerval cur;

	FCHECK(c0 >= tick_ready, "SIGALRM count %d after restore, %d at READY", c0, tick_ready);
	while (atomic_load(&n_alrm) < c0 + 5 && now_ns(CLOCK_MONOTONIC) - t0 < 3 * NSEC)
		wl_msleep(5);
	el = now_ns(CLOCK_MONOTONIC) - t0;
	d = atomic_load(&n_alrm) - c0;
	FCHECK(d >= 5, "ITIMER_REAL (every 50 ms) stopped: %d SIGALRMs in %.3f s after restore", d, secs(el));
	FCHECK(d <= el / (TICK_INTERVAL_US * 1000LL) + 2, "%d SIGALRMs in %.3f s: faster than every 50 ms", d,
	       secs(el));
	if (getitimer(ITIMER_REAL, &cur) == 0) {
		int64_t rem = tv_ns(cur.it_value);
		FCHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_usec == TICK_INTERVAL_US,
		       "ITIMER_REAL: interval %ld.%06ld s, want 0.050000 s", (long)cur.it_interval.tv_sec,
		       (long)cur.it_interval.tv_usec);
		FCHECK(rem > 0 && rem <= TICK_INTERVAL_US * 1000LL, "ITIMER_REAL: %.6f s remaining, want (0, 0.05]",
		       secs(rem));
	} else {
		wl_fail("getitimer: %s", strerror(errno));
	}
}

#define PENDING_INTERVAL_S 20

static void itimer_pending_setup(void)
{
	struct itimerval it = {{PENDING_INTERVAL_S, 0}, {0, 1000}}, cur;
	sigset_t alrm, pend;
	itimer_handlers();
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	if (sigprocmask(SIG_BLOCK, &alrm, NULL))
		wl_die("sigprocmask: %s", strerror(errno));
	if (setitimer(ITIMER_REAL, &it, NULL))
		wl_die("setitimer: %s", strerror(errno));
	for (int i = 0; i < 2000; i++) {
		if (sigpending(&pend) == 0 && sigismember(&pend, SIGALRM) == 1)
			break;
		wl_msleep(1);
	}
	if (sigpending(&pend) || sigismember(&pend, SIGALRM) != 1)
		wl_die("SIGALRM not pending 2 s after a 1 ms ITIMER_REAL");
	if (getitimer(ITIMER_REAL, &cur))
		wl_die("getitimer: %s", strerror(errno));
	if (cur.it_interval.tv_sec != PENDING_INTERVAL_S || cur.it_interval.tv_usec || cur.it_value.tv_sec ||
	    cur.it_value.tv_usec)
		wl_die("expired ITIMER_REAL with SIGALRM pending: getitimer {%ld.%06ld, %ld.%06ld}, want {%d.000000, 0}",
		       (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec, (long)cur.it_value.tv_sec,
		       (long)cur.it_value.tv_usec, PENDING_INTERVAL_S);
}

static void itimer_pending_corrupt(void)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	struct timespec zero = {0, 0};
	sigset_t alrm;
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	setitimer(ITIMER_REAL, &off, NULL);
	sigtimedwait(&alrm, NULL, &zero);
}

static void itimer_pending_check(void)
{
	struct itimerval cur;
	sigset_t alrm, pend;
	const int64_t ival = PENDING_INTERVAL_S * NSEC;

	FCHECK(sigpending(&pend) == 0 && sigismember(&pend, SIGALRM) == 1,
	       "SIGALRM of the expired ITIMER_REAL is no longer pending");
	if (getitimer(ITIMER_REAL, &cur) == 0) {
		FCHECK(tv_ns(cur.it_interval) == ival,
		       "expired ITIMER_REAL (SIGALRM pending, getitimer value 0 at the dump): interval %ld.%06ld s, "
		       "want %d s: the timer was dropped (the kernel re-arms it only when SIGALRM is dequeued)",
		       (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec, PENDING_INTERVAL_S);
		FCHECK(tv_ns(cur.it_value) <= ival, "ITIMER_REAL: %.6f s remaining, want at most %d s",
		       secs(tv_ns(cur.it_value)), PENDING_INTERVAL_S);
	} else {
		wl_fail("getitimer: %s", strerror(errno));
	}
	FCHECK(atomic_load(&n_alrm) == 0, "SIGALRM handler ran %d time(s) while SIGALRM was blocked",
	       atomic_load(&n_alrm));

	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	pthread_sigmask(SIG_UNBLOCK, &alrm, NULL); /* the pending SIGALRM is delivered here */
	FCHECK(atomic_load(&n_alrm) == 1, "SIGALRM handler ran %d time(s) after unblocking SIGALRM, want 1",
	       atomic_load(&n_alrm));
	if (getitimer(ITIMER_REAL, &cur) == 0) {
		int64_t rem = tv_ns(cur.it_value);
		FCHECK(tv_ns(cur.it_interval) == ival, "ITIMER_REAL after SIGALRM: interval %ld.%06ld s, want %d s",
		       (long)cur.it_interval.tv_sec, (long)cur.it_interval.tv_usec, PENDING_INTERVAL_S);
		FCHECK(rem > 0 && rem <= ival,
		       "ITIMER_REAL after SIGALRM: %.6f s remaining, want (0, %d] s: not re-armed", secs(rem),
		       PENDING_INTERVAL_S);
	} else {
		wl_fail("getitimer: %s", strerror(errno));
	}
}

/* ------------------------------------------------------------------------
 * shared: a child shares eventfds with the root (tree protocol). */

#define FD_E 10
#define FD_F 11
#define FD_OWN 12

/* Waits (bounded) for a mark; a FAIL line instead of exiting. */
static int wait_mark_ms(const char *name, int ms)
{
	for (int i = 0; i < ms; i++) {
		if (wl_read_mark(name) > 0)
			return 0;
		wl_msleep(1);
	}
	wl_fail("%swaited %d ms for mark %s in vain", who, ms, name);
	return -1;
}

static void read_expect(const char *what, int fd, uint64_t want)
{
	uint64_t v;
	ssize_t n;
	if (!wl_readable(fd, 0)) {
		wl_fail("%s%s: not readable, want %llu", who, what, (unsigned long long)want);
		return;
	}
	n = efd_read(fd, &v);
	FCHECK(n == 8 && v == want, "%s: read returned %zd (%s), value %llu, want %llu", what, n,
	       n < 0 ? strerror(errno) : "ok", (unsigned long long)v, (unsigned long long)want);
}

static void set_who(void) { snprintf(who, sizeof(who), "%s[%d]: ", wl_role, (int)getpid()); }

static void shared_child(void)
{
	set_who();
	wl_tree_line();
	place(eventfd(13, EFD_NONBLOCK), FD_OWN, "child's eventfd");
	track("C's own eventfd", FD_OWN, efd_keys, "anon_inode:[eventfd]");
	track("eventfd E (shared)", FD_E, efd_keys, "anon_inode:[eventfd]");
	track("eventfd F (shared, semaphore)", FD_F, efd_keys, "anon_inode:[eventfd]");
	wl_mark("C");
	wl_tree_wait_stop();

	if (wl_corrupt)
		place(eventfd(0, EFD_NONBLOCK), FD_OWN, "corrupt");
	wl_tree_check_ids();
	check_tracked();
	wl_mark("c0"); /* the root reads the shared fds only now */
	read_expect("C's own eventfd (fd 12)", FD_OWN, 13);
	if (wait_mark_ms("root1", 8000) == 0) {
		read_expect("eventfd E in C (after root wrote 3)", FD_E, 3);
		FCHECK(efd_write(FD_E, 11) == 8, "write 11 to eventfd E: %s", strerror(errno));
		read_expect("eventfd F (semaphore) in C", FD_F, 1);
	}
	wl_mark("child1");
	wl_child_exit();
}

static int shared_main(void)
{
	pid_t child;
	uint64_t v;
	ssize_t n;

	if (wl_nthreads != 1)
		wl_die("mode shared is single-threaded");
	wl_clear_marks();
	set_who();
	wl_tree_line();
	place(eventfd(0, EFD_NONBLOCK), FD_E, "eventfd E");
	xefd_write(FD_E, 5);
	place(eventfd(2, EFD_NONBLOCK | EFD_SEMAPHORE | EFD_CLOEXEC), FD_F, "eventfd F");
	child = wl_fork("C");
	if (child == 0) {
		shared_child();
		return 1; /* not reached */
	}
	place(eventfd(9, EFD_NONBLOCK), FD_OWN, "root's eventfd");
	track("root's own eventfd", FD_OWN, efd_keys, "anon_inode:[eventfd]");
	track("eventfd E (shared)", FD_E, efd_keys, "anon_inode:[eventfd]");
	track("eventfd F (shared, semaphore)", FD_F, efd_keys, "anon_inode:[eventfd]");
	wl_wait_mark("C");
	wl_ready();
	wl_tree_wait_stop();

	kill(child, SIGTERM);
	if (wl_corrupt)
		efd_write(FD_E, 1);
	wl_tree_check_ids();
	check_tracked();
	FCHECK(same_file(wl_pid, FD_E, child, FD_E), "eventfd E (fd 10): root and C (pid %d) do not share it (kcmp)",
	       (int)child);
	FCHECK(same_file(wl_pid, FD_F, child, FD_F), "eventfd F (fd 11): root and C (pid %d) do not share it (kcmp)",
	       (int)child);
	FCHECK(!same_file(wl_pid, FD_OWN, child, FD_OWN),
	       "fd 12: root's and C's own eventfds are one open file description (kcmp)");
	FCHECK(!same_file(wl_pid, FD_E, wl_pid, FD_F), "eventfds E and F are one open file description (kcmp)");
	read_expect("root's own eventfd (fd 12)", FD_OWN, 9);
	wait_mark_ms("c0", 8000); /* C compared its fdinfo of E and F */
	read_expect("eventfd E in root", FD_E, 5);
	FCHECK(efd_write(FD_E, 3) == 8, "write 3 to eventfd E: %s", strerror(errno));
	wl_mark("root1");
	if (wait_mark_ms("child1", 8000) == 0) {
		read_expect("eventfd E in root (after C wrote 11)", FD_E, 11);
		read_expect("eventfd F (semaphore) in root", FD_F, 1);
		errno = 0;
		n = efd_read(FD_F, &v);
		FCHECK(n == -1 && errno == EAGAIN,
		       "eventfd F (semaphore, 2 at the dump): third read (root, C, root) returned %zd (%s), want EAGAIN", n,
		       strerror(errno));
	}
	wl_reap_ok(child, "C");
	wl_check_no_children();
	return wl_finish();
}

/* ------------------------------------------------------------------------ */

enum { M_EVENTFD, M_TIMERFD, M_SIGNALFD, M_ITIMERS, M_ITIMER_TICK, M_ITIMER_PENDING, M_SHARED };
static int mode;

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	if (mode == M_SIGNALFD)
		signalfd_worker_setup(idx);
	wl_thread_started(idx);
	if (idx == 1 && mode == M_EVENTFD)
		eventfd_worker1();
	else if (idx == 1 && mode == M_TIMERFD)
		timerfd_worker1();
	else if (idx == 1 && mode == M_SIGNALFD)
		signalfd_worker1();
	else
		wl_wait_stop();
	wl_check_ids(idx);
	if (mode == M_SIGNALFD)
		signalfd_worker_check(idx);
	return NULL;
}

int main(int argc, char **argv)
{
	static const char *const names[] = {"eventfd", "timerfd", "signalfd", "itimers",
					    "itimer-tick", "itimer-pending", "shared"};
	int found = 0;

	wl_init(argc, argv);
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++)
		if (strcmp(wl_mode, names[i]) == 0) {
			mode = i;
			found = 1;
		}
	if (!found)
		wl_die("unknown mode '%s' (eventfd, timerfd, signalfd, itimers, itimer-tick, itimer-pending, shared)",
		       wl_mode);
	if (mode == M_SHARED)
		return shared_main();

	switch (mode) {
	case M_EVENTFD:
		eventfd_setup();
		break;
	case M_TIMERFD:
		timerfd_setup();
		break;
	case M_SIGNALFD:
		signalfd_setup();
		break;
	case M_ITIMERS:
		itimers_setup();
		break;
	case M_ITIMER_TICK:
		itimer_tick_setup();
		break;
	case M_ITIMER_PENDING:
		itimer_pending_setup();
		break;
	}

	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	if (wl_nthreads > 1) {
		if (mode == M_EVENTFD)
			wl_wait_in_syscall(wl_tids[1], SYS_read, efd_wait, "worker 1 (read of eventfd W)");
		else if (mode == M_TIMERFD)
			wl_wait_in_syscall(wl_tids[1], SYS_read, tfd_wait, "worker 1 (read of timerfd T4)");
		else if (mode == M_SIGNALFD)
			wl_wait_in_syscall(wl_tids[1], SYS_read, sfd2, "worker 1 (read of signalfd S2)");
	}
	if (mode == M_ITIMERS)
		FCHECK(atomic_load(&n_alrm) + atomic_load(&n_vtalrm) + atomic_load(&n_prof) == 0,
		       "an itimer signal arrived before READY");
	if (atomic_load(&wl_fails))
		wl_die("checks failed before READY");

	wl_ready();
	wl_wait_stop();

	if (wl_corrupt) {
		switch (mode) {
		case M_EVENTFD:
			eventfd_corrupt();
			break;
		case M_TIMERFD:
			timerfd_corrupt();
			break;
		case M_SIGNALFD:
			signalfd_corrupt();
			break;
		case M_ITIMERS:
			itimers_corrupt();
			break;
		case M_ITIMER_TICK:
			itimer_tick_corrupt();
			break;
		case M_ITIMER_PENDING:
			itimer_pending_corrupt();
			break;
		}
	}
	wl_check_ids(0);
	switch (mode) {
	case M_EVENTFD:
		eventfd_check();
		break;
	case M_TIMERFD:
		timerfd_check();
		break;
	case M_SIGNALFD:
		signalfd_check();
		break;
	case M_ITIMERS:
		itimers_check();
		break;
	case M_ITIMER_TICK:
		itimer_tick_check();
		break;
	case M_ITIMER_PENDING:
		itimer_pending_check();
		break;
	}
	wl_join(th, wl_nthreads);
	return wl_finish();
}
