/*
 * notify: inotify and POSIX timers survive checkpoint/restore.
 *
 * usage: notify [-t NTHREADS] MODE
 *
 * inotify: the cwd (the test's temp dir) holds directory "watched" (with
 *   file "old" in it) and file "file.txt". I = inotify_init1(IN_NONBLOCK)
 *   (no FD_CLOEXEC) watches "watched" with IN_CREATE|IN_DELETE and
 *   "file.txt" with IN_MODIFY; the queue is drained before READY.
 *   After SIGTERM, before anything else touches I: F_GETFL (O_NONBLOCK),
 *   F_GETFD, link anon_inode:inotify, the "inotify wd:..." lines of
 *   /proc/self/fdinfo/I identical (sorted) to those before the dump (wd,
 *   ino, sdev, mask, ignored_mask, file handle), and each one exactly the
 *   expected wd / inode (stat) / mask; the queue is empty (EAGAIN). Then:
 *   creating watched/new gives exactly IN_CREATE on the directory's wd named
 *   "new"; appending to file.txt gives exactly IN_MODIFY on the file's wd
 *   (no name); unlinking watched/old gives IN_DELETE named "old"; mkdir
 *   watched/sub gives IN_CREATE|IN_ISDIR named "sub"; then EAGAIN again.
 *   With threads > 1 worker 1 is blocked in poll(I, POLLIN, -1) at the dump
 *   and returns POLLIN only once main created watched/new (not earlier);
 *   main reads that event only after the poll returned (within 5 s): after
 *   a restore the restarted poll may start after the event was queued.
 *
 * timers (raw timer_* syscalls, kernel timer ids):
 *   A  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+1, sival_int 42, 100 s then
 *      every 50 s;
 *   X  a throwaway timer created after A and deleted before READY (a hole
 *      in the ids);
 *   N  CLOCK_REALTIME, SIGEV_NONE, 200 s one-shot;
 *   D  CLOCK_BOOTTIME, SIGEV_SIGNAL SIGUSR1, never armed;
 *   T  (threads > 1) CLOCK_MONOTONIC, SIGEV_THREAD_ID worker 1, SIGRTMIN+3,
 *      sival_int 77, 150 s then every 7 s;
 *   S  CLOCK_MONOTONIC, SIGEV_SIGNAL SIGRTMIN+2, sival_int 4343, every 20 ms,
 *      counted by a SA_SIGINFO handler (at least 3 ticks before READY).
 *   After SIGTERM: /proc/self/timers (records ID/signal/notify/ClockID,
 *   sorted by ID) identical to before the dump; timer_gettime of every timer:
 *   interval exact; A, N, T: 0 < remaining <= before and >= before minus the
 *   time that passed on the timer's clock (a restore may freeze a timer,
 *   never advance it); D all zero; S 0 < remaining <= 20 ms; no signal of
 *   A or T delivered. S keeps ticking: 5 more signals within 3 s, not faster
 *   than every 20 ms, each (all of them, before and after) with si_code
 *   SI_TIMER, si_value 4343, si_timerid S. With threads > 1 main re-arms T
 *   to 1 ms: its SIGRTMIN+3 arrives once, in worker 1, with si_value 77,
 *   si_timerid T, SI_TIMER.
 */
#include "wl.h"
#include <poll.h>
#include <sys/inotify.h>

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

#define NSEC 1000000000LL
#define MSEC 1000000LL

static pthread_t th[WL_MAX_THREADS];

static int64_t now_ns(clockid_t clk) { return (int64_t)wl_now_ns(clk); }
static int64_t ts_ns(struct timespec t) { return (int64_t)t.tv_sec * NSEC + t.tv_nsec; }
static double secs(int64_t ns) { return (double)ns / NSEC; }

/* ------------------------------------------------------------------------
 * inotify */

#define DIRNAME "watched"
#define FILENAME "file.txt"
#define DIR_MASK (IN_CREATE | IN_DELETE)
#define FILE_MASK IN_MODIFY

static int ifd = -1, wd_dir, wd_file;
static unsigned long ino_dir, ino_file;
static int in_fl, in_fdfl;
static char in_link[128], in_watches[2048];
static atomic_int created, polled;
static struct pollfd worker_pfd;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The "inotify " lines of I's fdinfo, sorted, joined by " | "; checks each
 * against the expected watches (reported with prefix when). */
static void inotify_state(int *fl, int *fdfl, char *link, size_t lsize, char *out, size_t size, const char *when)
{
	char path[64], buf[4096], *save = NULL, *lines[16];
	int n = 0, seen_dir = 0, seen_file = 0;
	ssize_t r;

	*fl = fcntl(ifd, F_GETFL);
	*fdfl = fcntl(ifd, F_GETFD);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", ifd);
	r = readlink(path, link, lsize - 1);
	link[r < 0 ? 0 : r] = 0;
	out[0] = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", ifd);
	if (wl_read_file(path, buf, sizeof(buf)) < 0) {
		wl_fail("%s: %s: %s", when, path, strerror(errno));
		return;
	}
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (strncmp(line, "inotify ", 8) == 0 && n < 16)
			lines[n++] = line;
	qsort(lines, (size_t)n, sizeof(lines[0]), cmp_str);
	for (int i = 0; i < n; i++) {
		unsigned int wd, sdev, mask, ign;
		unsigned long ino;
		size_t l = strlen(out);
		snprintf(out + l, size - l, "%s%s", i ? " | " : "", lines[i]);
		if (sscanf(lines[i], "inotify wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x", &wd, &ino, &sdev, &mask,
			   &ign) != 5) {
			wl_fail("%s: fdinfo line '%s' not understood", when, lines[i]);
			continue;
		}
		if ((int)wd == wd_dir) {
			seen_dir++;
			CHECK(ino == ino_dir && mask == DIR_MASK && ign == 0,
			      "%s: watch %d (directory " DIRNAME "): ino %lu mask %#x ignored_mask %#x, want ino %lu mask %#x "
			      "ignored_mask 0",
			      when, wd, ino, mask, ign, ino_dir, DIR_MASK);
		} else if ((int)wd == wd_file) {
			seen_file++;
			CHECK(ino == ino_file && mask == FILE_MASK && ign == 0,
			      "%s: watch %d (file " FILENAME "): ino %lu mask %#x ignored_mask %#x, want ino %lu mask %#x "
			      "ignored_mask 0",
			      when, wd, ino, mask, ign, ino_file, FILE_MASK);
		} else {
			wl_fail("%s: unexpected inotify watch: '%s' (want wds %d and %d)", when, lines[i], wd_dir, wd_file);
		}
	}
	CHECK(seen_dir == 1 && seen_file == 1,
	      "%s: fdinfo lists the directory's watch (wd %d) %d time(s) and the file's (wd %d) %d time(s), want once each",
	      when, wd_dir, seen_dir, wd_file, seen_file);
}

struct iev {
	int wd;
	uint32_t mask;
	char name[64];
};

/* Reads all queued events (only when readable: never blocks). */
static int read_events(struct iev *ev, int max)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	int n = 0;
	while (n < max && wl_readable(ifd, 0)) {
		ssize_t r = read(ifd, buf, sizeof(buf));
		if (r <= 0) {
			if (r < 0 && errno != EAGAIN)
				wl_fail("read of the inotify fd: %s", strerror(errno));
			break;
		}
		for (char *p = buf; p < buf + r && n < max;) {
			struct inotify_event *e = (struct inotify_event *)p;
			ev[n].wd = e->wd;
			ev[n].mask = e->mask;
			snprintf(ev[n].name, sizeof(ev[n].name), "%s", e->len ? e->name : "");
			n++;
			p += sizeof(*e) + e->len;
		}
	}
	return n;
}

/* After an action: exactly one event, with wd, mask and name. */
static void expect_event(const char *action, int wd, uint32_t mask, const char *name)
{
	struct iev ev[8];
	int n = read_events(ev, 8);
	if (n == 0) {
		wl_fail("%s: no inotify event, want wd %d mask %#x name '%s'", action, wd, mask, name);
		return;
	}
	CHECK(ev[0].wd == wd && ev[0].mask == mask && strcmp(ev[0].name, name) == 0,
	      "%s: inotify event wd %d mask %#x name '%s', want wd %d mask %#x name '%s'", action, ev[0].wd,
	      ev[0].mask, ev[0].name, wd, mask, name);
	for (int i = 1; i < n; i++)
		wl_fail("%s: extra inotify event wd %d mask %#x name '%s'", action, ev[i].wd, ev[i].mask, ev[i].name);
}

static void xwrite_file(const char *path, const char *s, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		wl_die("write %s: %s", path, strerror(errno));
	close(fd);
}

static void inotify_setup(void)
{
	struct stat st;
	struct iev ev[16];
	int n;

	if (mkdir(DIRNAME, 0755))
		wl_die("mkdir %s: %s", DIRNAME, strerror(errno));
	xwrite_file(DIRNAME "/old", "old\n", O_TRUNC);
	xwrite_file(FILENAME, "before the dump\n", O_TRUNC);
	if (stat(DIRNAME, &st))
		wl_die("stat %s: %s", DIRNAME, strerror(errno));
	ino_dir = (unsigned long)st.st_ino;
	if (stat(FILENAME, &st))
		wl_die("stat %s: %s", FILENAME, strerror(errno));
	ino_file = (unsigned long)st.st_ino;

	ifd = inotify_init1(IN_NONBLOCK);
	if (ifd < 0)
		wl_die("inotify_init1: %s", strerror(errno));
	wd_dir = inotify_add_watch(ifd, DIRNAME, DIR_MASK);
	if (wd_dir < 0)
		wl_die("inotify_add_watch %s: %s", DIRNAME, strerror(errno));
	wd_file = inotify_add_watch(ifd, FILENAME, FILE_MASK);
	if (wd_file < 0)
		wl_die("inotify_add_watch %s: %s", FILENAME, strerror(errno));
	/* It works before the dump (and leaves nothing queued). */
	xwrite_file(FILENAME, "more\n", O_APPEND);
	n = read_events(ev, 16);
	if (n != 1 || ev[0].wd != wd_file || ev[0].mask != IN_MODIFY)
		wl_die("before the dump: %d event(s) after a write to %s (first wd %d mask %#x), want one IN_MODIFY on wd %d",
		       n, FILENAME, n ? ev[0].wd : -1, n ? ev[0].mask : 0, wd_file);

	inotify_state(&in_fl, &in_fdfl, in_link, sizeof(in_link), in_watches, sizeof(in_watches), "before the dump");
	if (atomic_load(&wl_fails))
		wl_die("inotify fdinfo not as expected before the dump");
	if (!(in_fl & O_NONBLOCK) || (in_fdfl & FD_CLOEXEC) || strcmp(in_link, "anon_inode:inotify") != 0)
		wl_die("inotify fd %d: F_GETFL %#o F_GETFD %#x link '%s'", ifd, in_fl, in_fdfl, in_link);
	wl_info("inotify fd %d: flags %#o fd flags %#x %s: %s", ifd, in_fl, in_fdfl, in_link, in_watches);
}

/* Worker 1: blocked in poll(I) until main creates watched/new. */
static void inotify_worker1(void)
{
	long r;
	int err;
	worker_pfd = (struct pollfd){ifd, POLLIN, 0};
	r = syscall(SYS_poll, &worker_pfd, 1, -1);
	err = errno;
	CHECK(r == 1 && (worker_pfd.revents & POLLIN), "worker 1: poll of the inotify fd returned %ld (%s), revents %#x",
	      r, r < 0 ? strerror(err) : "ok", worker_pfd.revents);
	atomic_store(&polled, 1);
	CHECK(atomic_load(&created), "worker 1: poll of the inotify fd returned before main created %s/new (revents %#x)",
	      DIRNAME, worker_pfd.revents);
}

static void inotify_corrupt(void)
{
	inotify_rm_watch(ifd, wd_file); /* queues IN_IGNORED */
	fcntl(ifd, F_SETFD, FD_CLOEXEC);
}

static void inotify_check(void)
{
	char link[128], watches[2048];
	int fl, fdfl, n;
	struct iev ev[16];

	inotify_state(&fl, &fdfl, link, sizeof(link), watches, sizeof(watches), "after restore");
	CHECK(fl == in_fl, "inotify fd %d: F_GETFL %#o, want %#o", ifd, fl, in_fl);
	CHECK(fdfl == in_fdfl, "inotify fd %d: F_GETFD %#x, want %#x", ifd, fdfl, in_fdfl);
	CHECK(strcmp(link, in_link) == 0, "inotify fd %d: /proc/self/fd link '%s', want '%s'", ifd, link, in_link);
	CHECK(strcmp(watches, in_watches) == 0, "inotify fd %d: fdinfo watches '%s', want '%s'", ifd, watches,
	      in_watches);

	n = read_events(ev, 16);
	for (int i = 0; i < n; i++)
		wl_fail("inotify event queued after restore (nothing happened): wd %d mask %#x name '%s'", ev[i].wd,
			ev[i].mask, ev[i].name);

	atomic_store(&created, 1);
	xwrite_file(DIRNAME "/new", "new\n", O_EXCL);
	if (wl_nthreads > 1) {
		/* The event stays queued until worker 1's (restarted) poll saw it. */
		for (int i = 0; i < 5000 && !atomic_load(&polled); i++)
			wl_msleep(1);
		CHECK(atomic_load(&polled), "worker 1: poll of the inotify fd did not return within 5 s of an event");
	}
	expect_event("create " DIRNAME "/new", wd_dir, IN_CREATE, "new");
	xwrite_file(FILENAME, "after restore\n", O_APPEND);
	expect_event("append to " FILENAME, wd_file, IN_MODIFY, "");
	if (unlink(DIRNAME "/old"))
		wl_fail("unlink %s/old: %s", DIRNAME, strerror(errno));
	expect_event("unlink " DIRNAME "/old", wd_dir, IN_DELETE, "old");
	if (mkdir(DIRNAME "/sub", 0755))
		wl_fail("mkdir %s/sub: %s", DIRNAME, strerror(errno));
	expect_event("mkdir " DIRNAME "/sub", wd_dir, IN_CREATE | IN_ISDIR, "sub");
	n = read_events(ev, 16);
	for (int i = 0; i < n; i++)
		wl_fail("unexpected inotify event at the end: wd %d mask %#x name '%s'", ev[i].wd, ev[i].mask,
			ev[i].name);
	errno = 0;
	CHECK(read(ifd, ev, sizeof(ev)) == -1 && errno == EAGAIN, "read of the empty inotify fd: %s, want EAGAIN",
	      errno ? strerror(errno) : "data");
}

/* ------------------------------------------------------------------------
 * POSIX timers */

enum { PT_A, PT_N, PT_D, PT_T, PT_S, NPT };

struct ptimer {
	const char *what;
	int used;
	int id;
	clockid_t clk;
	struct itimerspec before;
	int64_t t0; /* the timer's clock when before was read */
};

static struct ptimer pt[NPT] = {
	[PT_A] = {"A (MONOTONIC, SIGRTMIN+1)", 0, -1, CLOCK_MONOTONIC, {{0, 0}, {0, 0}}, 0},
	[PT_N] = {"N (REALTIME, SIGEV_NONE)", 0, -1, CLOCK_REALTIME, {{0, 0}, {0, 0}}, 0},
	[PT_D] = {"D (BOOTTIME, disarmed)", 0, -1, CLOCK_BOOTTIME, {{0, 0}, {0, 0}}, 0},
	[PT_T] = {"T (MONOTONIC, SIGEV_THREAD_ID worker 1)", 0, -1, CLOCK_MONOTONIC, {{0, 0}, {0, 0}}, 0},
	[PT_S] = {"S (MONOTONIC, SIGRTMIN+2, 20 ms)", 0, -1, CLOCK_MONOTONIC, {{0, 0}, {0, 0}}, 0},
};

#define S_VALUE 4343
#define S_INTERVAL_NS (20 * MSEC)
#define T_VALUE 77

static volatile int s_id = -1, t_id = -1;
static atomic_int n_a, n_s, n_s_bad, n_t, n_usr1;
static atomic_int s_bad_code, s_bad_value, s_bad_id;
static atomic_int t_tid, t_code, t_value, t_id_got;
static char timers_before[4096];
static int s_ready;
static atomic_int t_release;

static void on_a(int sig) { (void)sig, atomic_fetch_add(&n_a, 1); }
static void on_usr1(int sig) { (void)sig, atomic_fetch_add(&n_usr1, 1); }

static void on_s(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	if (si->si_code != SI_TIMER || si->si_value.sival_int != S_VALUE || si->si_timerid != s_id) {
		atomic_store(&s_bad_code, si->si_code);
		atomic_store(&s_bad_value, si->si_value.sival_int);
		atomic_store(&s_bad_id, si->si_timerid);
		atomic_fetch_add(&n_s_bad, 1);
	}
	atomic_fetch_add(&n_s, 1);
}

static void on_t(int sig, siginfo_t *si, void *uc)
{
	(void)sig, (void)uc;
	atomic_store(&t_tid, (int)wl_gettid());
	atomic_store(&t_code, si->si_code);
	atomic_store(&t_value, si->si_value.sival_int);
	atomic_store(&t_id_got, si->si_timerid);
	atomic_fetch_add(&n_t, 1);
}

static void handler(int sig, void (*h)(int), void (*sa)(int, siginfo_t *, void *))
{
	struct sigaction act;
	memset(&act, 0, sizeof(act));
	if (sa) {
		act.sa_sigaction = sa;
		act.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		act.sa_handler = h;
		act.sa_flags = SA_RESTART;
	}
	sigemptyset(&act.sa_mask);
	if (sigaction(sig, &act, NULL))
		wl_die("sigaction %d: %s", sig, strerror(errno));
}

static int pt_create(clockid_t clk, int notify, int signo, int value, pid_t tid, const char *what)
{
	struct sigevent sev;
	int id = -1;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = notify;
	sev.sigev_signo = signo;
	sev.sigev_value.sival_int = value;
	if (notify == SIGEV_THREAD_ID)
		sev._sigev_un._tid = tid;
	if (syscall(SYS_timer_create, clk, &sev, &id))
		wl_die("timer_create %s: %s", what, strerror(errno));
	return id;
}

static int pt_settime(int id, int64_t value_ns, int64_t interval_ns)
{
	struct itimerspec its = {{interval_ns / NSEC, interval_ns % NSEC}, {value_ns / NSEC, value_ns % NSEC}};
	return (int)syscall(SYS_timer_settime, id, 0, &its, NULL);
}

static int pt_gettime(int id, struct itimerspec *its) { return (int)syscall(SYS_timer_gettime, id, its); }

/* /proc/self/timers as records "ID: n; signal: ...; notify: ...; ClockID: n",
 * sorted by ID, joined by " | ". */
struct trec {
	int id;
	char text[256];
};

static int cmp_trec(const void *a, const void *b)
{
	const struct trec *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

static int proc_timers(char *out, size_t size)
{
	char buf[8192], *save = NULL;
	struct trec r[32];
	int n = -1;
	out[0] = 0;
	if (wl_read_file("/proc/self/timers", buf, sizeof(buf)) < 0) {
		snprintf(out, size, "(/proc/self/timers: %s)", strerror(errno));
		return 0;
	}
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "ID: ", 4) == 0) {
			if (n + 1 >= 32)
				break;
			n++;
			r[n].id = atoi(line + 4);
			snprintf(r[n].text, sizeof(r[n].text), "%s", line);
		} else if (n >= 0) {
			size_t l = strlen(r[n].text);
			snprintf(r[n].text + l, sizeof(r[n].text) - l, "; %s", line);
		}
	}
	n++;
	qsort(r, (size_t)n, sizeof(r[0]), cmp_trec);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(out);
		snprintf(out + l, size - l, "%s%s", i ? " | " : "", r[i].text);
	}
	return n;
}

static void timers_setup(void)
{
	int x, nproc;
	char want[64];

	handler(SIGRTMIN + 1, on_a, NULL);
	handler(SIGRTMIN + 2, NULL, on_s);
	handler(SIGRTMIN + 3, NULL, on_t);
	handler(SIGUSR1, on_usr1, NULL);

	pt[PT_A].id = pt_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 1, 42, 0, "A");
	x = pt_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGUSR1, 1, 0, "X");
	pt[PT_N].id = pt_create(CLOCK_REALTIME, SIGEV_NONE, 0, 0, 0, "N");
	pt[PT_D].id = pt_create(CLOCK_BOOTTIME, SIGEV_SIGNAL, SIGUSR1, 9, 0, "D");
	if (wl_nthreads > 1)
		t_id = pt[PT_T].id =
			pt_create(CLOCK_MONOTONIC, SIGEV_THREAD_ID, SIGRTMIN + 3, T_VALUE, wl_tids[1], "T");
	s_id = pt[PT_S].id = pt_create(CLOCK_MONOTONIC, SIGEV_SIGNAL, SIGRTMIN + 2, S_VALUE, 0, "S");
	if (syscall(SYS_timer_delete, x))
		wl_die("timer_delete X: %s", strerror(errno));
	for (int i = 0; i < NPT; i++)
		pt[i].used = pt[i].id >= 0;

	if (pt_settime(pt[PT_A].id, 100 * NSEC, 50 * NSEC) || pt_settime(pt[PT_N].id, 200 * NSEC, 0) ||
	    (pt[PT_T].used && pt_settime(pt[PT_T].id, 150 * NSEC, 7 * NSEC)) ||
	    pt_settime(pt[PT_S].id, S_INTERVAL_NS, S_INTERVAL_NS))
		wl_die("timer_settime: %s", strerror(errno));
	for (int i = 0; i < 200 && atomic_load(&n_s) < 3; i++)
		wl_msleep(10);
	s_ready = atomic_load(&n_s);
	if (s_ready < 3)
		wl_die("only %d signals within 2 s of a 20 ms POSIX timer", s_ready);

	nproc = proc_timers(timers_before, sizeof(timers_before));
	for (int i = 0; i < NPT; i++) {
		if (!pt[i].used)
			continue;
		pt[i].t0 = now_ns(pt[i].clk);
		if (pt_gettime(pt[i].id, &pt[i].before))
			wl_die("timer_gettime %s: %s", pt[i].what, strerror(errno));
	}
	if (nproc != (wl_nthreads > 1 ? 5 : 4))
		wl_die("/proc/self/timers lists %d timers: %s", nproc, timers_before);
	snprintf(want, sizeof(want), "notify: signal/tid.%d", (int)wl_tids[1]);
	if (pt[PT_T].used && !strstr(timers_before, want))
		wl_die("/proc/self/timers has no '%s': %s", want, timers_before);
	wl_info("timers: A %d, X %d (deleted), N %d, D %d, T %d, S %d; /proc/self/timers: %s", pt[PT_A].id, x,
		pt[PT_N].id, pt[PT_D].id, pt[PT_T].id, pt[PT_S].id, timers_before);
}

static void timers_corrupt(void)
{
	pt_settime(pt[PT_A].id, 100 * NSEC, 51 * NSEC);
	pt_settime(pt[PT_D].id, 10 * NSEC, 0);
	syscall(SYS_timer_delete, pt[PT_S].id);
	if (pt[PT_T].used)
		syscall(SYS_timer_delete, pt[PT_T].id);
}

static void timers_check(void)
{
	char now[4096];
	struct itimerspec cur[NPT];
	int64_t t1[NPT];
	int ok[NPT];

	for (int i = 0; i < NPT; i++) {
		if (!pt[i].used)
			continue;
		ok[i] = pt_gettime(pt[i].id, &cur[i]) == 0;
		t1[i] = now_ns(pt[i].clk);
		if (!ok[i])
			wl_fail("timer_gettime %s (id %d): %s", pt[i].what, pt[i].id, strerror(errno));
	}
	proc_timers(now, sizeof(now));
	CHECK(strcmp(now, timers_before) == 0, "/proc/self/timers '%s', want '%s'", now, timers_before);

	for (int i = 0; i < NPT; i++) {
		int64_t rem, remb, el;
		if (!pt[i].used || !ok[i])
			continue;
		rem = ts_ns(cur[i].it_value);
		remb = ts_ns(pt[i].before.it_value);
		el = t1[i] - pt[i].t0;
		CHECK(ts_ns(cur[i].it_interval) == ts_ns(pt[i].before.it_interval),
		      "%s: interval %ld.%09ld s, want %ld.%09ld s", pt[i].what, (long)cur[i].it_interval.tv_sec,
		      cur[i].it_interval.tv_nsec, (long)pt[i].before.it_interval.tv_sec,
		      pt[i].before.it_interval.tv_nsec);
		if (i == PT_D) {
			CHECK(rem == 0, "%s: %.9f s remaining, want disarmed", pt[i].what, secs(rem));
		} else if (i == PT_S) {
			CHECK(rem > 0 && rem <= S_INTERVAL_NS, "%s: %.9f s remaining, want (0, 0.02]", pt[i].what,
			      secs(rem));
		} else {
			CHECK(rem > 0 && rem <= remb, "%s: %.9f s remaining, want (0, %.9f] (the value before the dump)",
			      pt[i].what, secs(rem), secs(remb));
			CHECK(rem >= remb - el, "%s: %.9f s remaining, but %.9f s remained %.3f s earlier: it would fire early",
			      pt[i].what, secs(rem), secs(remb), secs(el));
		}
	}
	CHECK(atomic_load(&n_a) == 0 && atomic_load(&n_t) == 0 && atomic_load(&n_usr1) == 0,
	      "timer signals delivered: A (SIGRTMIN+1) %d, T (SIGRTMIN+3) %d, SIGUSR1 %d; want none (far off or "
	      "disarmed)",
	      atomic_load(&n_a), atomic_load(&n_t), atomic_load(&n_usr1));

	/* S keeps ticking. */
	{
		int c0 = atomic_load(&n_s), d;
		int64_t t0 = now_ns(CLOCK_MONOTONIC), el;
		CHECK(c0 >= s_ready, "S: %d signals after restore, %d at READY", c0, s_ready);
		while (atomic_load(&n_s) < c0 + 5 && now_ns(CLOCK_MONOTONIC) - t0 < 3 * NSEC)
			wl_msleep(5);
		el = now_ns(CLOCK_MONOTONIC) - t0;
		d = atomic_load(&n_s) - c0;
		CHECK(d >= 5, "S (every 20 ms) stopped: %d signals in %.3f s after restore", d, secs(el));
		CHECK(d <= el / S_INTERVAL_NS + 2, "S: %d signals in %.3f s: faster than every 20 ms", d, secs(el));
		CHECK(atomic_load(&n_s_bad) == 0,
		      "S: %d of %d signals with wrong siginfo (last: si_code %d si_value %d si_timerid %d, want %d %d %d)",
		      atomic_load(&n_s_bad), atomic_load(&n_s), atomic_load(&s_bad_code), atomic_load(&s_bad_value),
		      atomic_load(&s_bad_id), SI_TIMER, S_VALUE, pt[PT_S].id);
	}

	/* T delivers to worker 1. */
	if (pt[PT_T].used) {
		if (pt_settime(pt[PT_T].id, MSEC, 0)) {
			wl_fail("timer_settime T (id %d): %s", pt[PT_T].id, strerror(errno));
		} else {
			for (int i = 0; i < 2000 && atomic_load(&n_t) == 0; i++)
				wl_msleep(1);
			wl_msleep(20);
			CHECK(atomic_load(&n_t) == 1, "T re-armed to 1 ms: %d signal(s) within 2 s, want 1",
			      atomic_load(&n_t));
			if (atomic_load(&n_t) >= 1)
				CHECK(atomic_load(&t_tid) == wl_tids[1] && atomic_load(&t_code) == SI_TIMER &&
					      atomic_load(&t_value) == T_VALUE && atomic_load(&t_id_got) == pt[PT_T].id,
				      "T: signal in tid %d with si_code %d si_value %d si_timerid %d, want tid %d (worker "
				      "1) %d %d %d",
				      atomic_load(&t_tid), atomic_load(&t_code), atomic_load(&t_value),
				      atomic_load(&t_id_got), wl_tids[1], SI_TIMER, T_VALUE, pt[PT_T].id);
		}
	}
}

/* ------------------------------------------------------------------------ */

enum { M_INOTIFY, M_TIMERS };
static int mode;

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	if (idx == 1 && mode == M_INOTIFY) {
		/* main sets ifd up before starting threads */
		inotify_worker1();
	}
	wl_wait_stop();
	if (idx == 1 && mode == M_TIMERS) /* T's signal must find it alive */
		for (int i = 0; i < 10000 && !atomic_load(&t_release); i++)
			wl_msleep(1);
	wl_check_ids(idx);
	return NULL;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (strcmp(wl_mode, "inotify") == 0)
		mode = M_INOTIFY;
	else if (strcmp(wl_mode, "timers") == 0)
		mode = M_TIMERS;
	else
		wl_die("unknown mode '%s' (inotify, timers)", wl_mode);

	if (mode == M_INOTIFY)
		inotify_setup();
	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	if (mode == M_TIMERS)
		timers_setup(); /* T targets worker 1: after the threads */
	if (wl_nthreads > 1 && mode == M_INOTIFY)
		wl_wait_in_syscall(wl_tids[1], SYS_poll, (long)&worker_pfd, "worker 1 (poll of the inotify fd)");
	if (atomic_load(&wl_fails))
		wl_die("checks failed before READY");

	wl_ready();
	wl_wait_stop();

	if (wl_corrupt) {
		if (mode == M_INOTIFY)
			inotify_corrupt();
		else
			timers_corrupt();
	}
	wl_check_ids(0);
	if (mode == M_INOTIFY)
		inotify_check();
	else
		timers_check();
	atomic_store(&t_release, 1);
	wl_join(th, wl_nthreads);
	return wl_finish();
}
