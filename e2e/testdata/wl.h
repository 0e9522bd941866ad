/*
 * wl.h - common protocol for the cryo end-to-end workloads.
 *
 * Protocol (see e2e/README.md):
 *   usage: WORKLOAD [-t NTHREADS] [MODE]
 *     NTHREADS is the total number of threads including main (default 1).
 *   1. The workload sets up its state and records the expected values.
 *   2. It prints "READY pid=<pid> tids=<tid>,<tid>,..." (main first) and
 *      flushes stdout.
 *   3. It loops (spinning, sleeping or blocked in a syscall, depending on the
 *      workload) until SIGTERM sets wl_stop (the handler only sets a
 *      volatile sig_atomic_t).
 *   4. It re-checks everything and prints one "FAIL: <what>" line per failed
 *      check, or "PASS" when all passed, then exits 0 (PASS) or 1 (FAIL).
 *   A workload that cannot run on this machine prints "SKIP: <reason>" and
 *   exits 77 instead of printing READY.
 *
 * Developer aid: with WL_CORRUPT=1 in the environment each workload
 * deliberately damages the state it checks after SIGTERM (as a broken
 * restore would), so that every check can be seen to fail.
 *
 * stdout must be a regular file (cryo does not support pipes yet).
 */
#ifndef CRYO_WL_H
#define CRYO_WL_H

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define WL_MAX_THREADS 64

static volatile sig_atomic_t wl_stop;
static int wl_nthreads = 1;
static const char *wl_mode = "";
static const char *wl_prog = "workload";
static pid_t wl_pid;
static pid_t wl_tids[WL_MAX_THREADS];
static atomic_int wl_fails;
static atomic_int wl_started;
static int wl_corrupt;
static char wl_stdout_buf[1 << 16];

static __attribute__((unused)) pid_t wl_gettid(void) { return (pid_t)syscall(SYS_gettid); }

static __attribute__((unused)) void wl_vprint(const char *prefix, const char *fmt, va_list ap)
{
	flockfile(stdout);
	fputs(prefix, stdout);
	vfprintf(stdout, fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	funlockfile(stdout);
}

static __attribute__((unused)) void wl_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wl_vprint("INFO: ", fmt, ap);
	va_end(ap);
}

static __attribute__((unused)) void wl_fail(const char *fmt, ...)
{
	va_list ap;
	atomic_fetch_add(&wl_fails, 1);
	va_start(ap, fmt);
	wl_vprint("FAIL: ", fmt, ap);
	va_end(ap);
}

/* A setup step failed: the workload cannot run at all. */
static __attribute__((unused)) void wl_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wl_vprint("FAIL: setup: ", fmt, ap);
	va_end(ap);
	exit(2);
}

static __attribute__((unused)) void wl_skip(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	wl_vprint("SKIP: ", fmt, ap);
	va_end(ap);
	exit(77);
}

#define CHECK(cond, ...)                      \
	do {                                  \
		if (!(cond))                  \
			wl_fail(__VA_ARGS__); \
	} while (0)

static __attribute__((unused)) void wl_term_handler(int sig)
{
	(void)sig;
	wl_stop = 1;
}

static __attribute__((unused)) uint64_t wl_now_ns(clockid_t clk)
{
	struct timespec ts;
	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sleep ms milliseconds, resuming after EINTR. */
static __attribute__((unused)) void wl_msleep(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

/* Whether fd is readable (POLLIN) within timeout_ms, resuming after EINTR. */
static __attribute__((unused)) int wl_readable(int fd, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	int r;
	do
		r = poll(&p, 1, timeout_ms);
	while (r < 0 && errno == EINTR);
	return r > 0 && (p.revents & POLLIN);
}

/* splitmix64: deterministic patterns for memory contents. */
static __attribute__((unused)) uint64_t wl_pat(uint64_t seed, uint64_t i)
{
	uint64_t z = seed * 0x9E3779B97F4A7C15ull + i + 0x632BE59BD9B4E019ull;
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static __attribute__((unused)) void wl_fill(void *p, size_t len, uint64_t seed)
{
	uint64_t *q = p;
	for (size_t i = 0; i < len / 8; i++)
		q[i] = wl_pat(seed, i);
}

/* Returns the index of the first mismatching 8-byte word, or -1. */
static __attribute__((unused)) long wl_verify(const void *p, size_t len, uint64_t seed)
{
	const volatile uint64_t *q = p;
	for (size_t i = 0; i < len / 8; i++)
		if (q[i] != wl_pat(seed, i))
			return (long)i;
	return -1;
}

static __attribute__((unused)) long wl_verify_zero(const void *p, size_t len)
{
	const volatile uint64_t *q = p;
	for (size_t i = 0; i < len / 8; i++)
		if (q[i] != 0)
			return (long)i;
	return -1;
}

/* Reads a whole file into buf (NUL-terminated); returns length or -1. */
static __attribute__((unused)) ssize_t wl_read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0;
	if (fd < 0)
		return -1;
	while (n + 1 < size) {
		ssize_t r = read(fd, buf + n, size - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	return (ssize_t)n;
}

static __attribute__((unused)) void wl_usage(void)
{
	fprintf(stderr, "usage: %s [-t NTHREADS] [MODE]\n", wl_prog);
	exit(2);
}

/*
 * Parses the arguments, makes stdout line-buffered with a static buffer (so
 * no heap allocation happens later for it), installs the SIGTERM handler.
 */
static __attribute__((unused)) void wl_init(int argc, char **argv)
{
	struct sigaction sa;

	wl_prog = argv[0];
	setvbuf(stdout, wl_stdout_buf, _IOLBF, sizeof(wl_stdout_buf));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-t") == 0 && i + 1 < argc) {
			wl_nthreads = atoi(argv[++i]);
			if (wl_nthreads < 1 || wl_nthreads > WL_MAX_THREADS)
				wl_usage();
		} else if (argv[i][0] != '-' && wl_mode[0] == 0) {
			wl_mode = argv[i];
		} else {
			wl_usage();
		}
	}
	wl_corrupt = getenv("WL_CORRUPT") != NULL;
	wl_pid = getpid();
	wl_tids[0] = wl_gettid();
	if (wl_tids[0] != wl_pid)
		wl_die("main tid %d != pid %d", wl_tids[0], wl_pid);

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = wl_term_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocked syscalls return EINTR */
	if (sigaction(SIGTERM, &sa, NULL))
		wl_die("sigaction(SIGTERM): %s", strerror(errno));
}

/* Worker threads call this once their state is set up. */
static __attribute__((unused)) void wl_thread_started(int idx)
{
	wl_tids[idx] = wl_gettid();
	atomic_fetch_add(&wl_started, 1);
}

/* Main waits (bounded) until n workers called wl_thread_started. */
static __attribute__((unused)) void wl_wait_started(int n)
{
	for (int i = 0; i < 10000 && atomic_load(&wl_started) < n; i++)
		wl_msleep(1);
	if (atomic_load(&wl_started) < n)
		wl_die("only %d of %d threads started", atomic_load(&wl_started), n);
}

/* Blocks SIGTERM in the calling (worker) thread: SIGTERM goes to main. */
static __attribute__((unused)) void wl_block_sigterm(void)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
}

static __attribute__((unused)) void wl_ready(void)
{
	char buf[WL_MAX_THREADS * 12 + 64];
	int n = snprintf(buf, sizeof(buf), "READY pid=%d tids=", wl_pid);
	for (int i = 0; i < wl_nthreads; i++)
		n += snprintf(buf + n, sizeof(buf) - n, "%s%d", i ? "," : "", wl_tids[i]);
	flockfile(stdout);
	puts(buf);
	fflush(stdout);
	funlockfile(stdout);
}

/* Polls (10 ms sleeps) until SIGTERM arrived. */
static __attribute__((unused)) void wl_wait_stop(void)
{
	while (!wl_stop)
		wl_msleep(10);
}

/* Every thread calls this after the checkpoint: pid and own tid unchanged. */
static __attribute__((unused)) void wl_check_ids(int idx)
{
	pid_t pid = getpid(), tid = wl_gettid();
	CHECK(pid == wl_pid, "getpid() = %d, want %d", pid, wl_pid);
	CHECK(tid == wl_tids[idx], "thread %d: gettid() = %d, want %d", idx, tid, wl_tids[idx]);
}

/* Bounded pthread_join of all workers (index 1..n-1). */
static __attribute__((unused)) void wl_join(pthread_t *th, int n)
{
	for (int i = 1; i < n; i++) {
		struct timespec dl;
		int rc;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		rc = pthread_timedjoin_np(th[i], NULL, &dl);
		if (rc) {
			wl_fail("thread %d (tid %d) did not finish: %s", i, wl_tids[i], strerror(rc));
			fflush(stdout);
			_exit(1);
		}
	}
}

static __attribute__((unused)) int wl_finish(void)
{
	int fails = atomic_load(&wl_fails);
	if (fails == 0)
		puts("PASS");
	else
		printf("INFO: %d check(s) failed\n", fails);
	fflush(stdout);
	return fails ? 1 : 0;
}

/* ------------------------------------------------------------------------
 * Process trees (tree_*.c workloads).
 *
 * Every process of a tree prints its own line
 *   TREE pid=<pid> ppid=<ppid> pgid=<pgid> sid=<sid> role=<name>
 * once it is set up, before the root prints READY. Handshakes use files in
 * the (shared) cwd, not pipes: wl_mark(NAME) creates "wl-mark.NAME" holding
 * the caller's pid, wl_wait_mark(NAME) polls for it (bounded). After SIGTERM
 * each parent SIGTERMs its own children, checks itself, reaps its children
 * (bounded) and exits 1 if it or any child failed: failures travel up as
 * exit statuses; the FAIL lines themselves go straight to the shared
 * O_APPEND stdout, prefixed with the role and pid.
 */
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/wait.h>

static const char *wl_role = "root";
static pid_t wl_exp_pid, wl_exp_ppid, wl_exp_pgid, wl_exp_sid;

#define TCHECK(cond, fmt, ...) CHECK(cond, "%s[%d]: " fmt, wl_role, (int)wl_exp_pid, ##__VA_ARGS__)

/* Forks a tree member. In the child: role set, pid/tid bookkeeping reset,
 * no failures inherited. stdout is flushed first (no duplicated output). */
static __attribute__((unused)) pid_t wl_fork(const char *role)
{
	pid_t pid;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		wl_die("%s: fork for %s: %s", wl_role, role, strerror(errno));
	if (pid == 0) {
		wl_role = role;
		wl_pid = getpid();
		wl_tids[0] = wl_pid;
		wl_nthreads = 1;
		atomic_store(&wl_fails, 0);
		atomic_store(&wl_started, 0);
		wl_exp_pid = wl_pid;
	}
	return pid;
}

/* Records the caller's ids as expected values and prints its TREE line. */
static __attribute__((unused)) void wl_tree_line(void)
{
	wl_exp_pid = getpid();
	wl_exp_ppid = getppid();
	wl_exp_pgid = getpgrp();
	wl_exp_sid = getsid(0);
	flockfile(stdout);
	printf("TREE pid=%d ppid=%d pgid=%d sid=%d role=%s\n", wl_exp_pid, wl_exp_ppid, wl_exp_pgid, wl_exp_sid,
	       wl_role);
	/* The root's parent is whoever started or restored it (cryo restore):
	 * not checked (the harness checks it). */
	if (strcmp(wl_role, "root") == 0)
		wl_exp_ppid = -1;
	fflush(stdout);
	funlockfile(stdout);
}

/* getpid/getppid/getpgrp/getsid against the recorded values (not the
 * root's ppid). */
static __attribute__((unused)) void wl_tree_check_ids(void)
{
	pid_t pid = getpid(), ppid = getppid(), pgid = getpgrp(), sid = getsid(0);
	TCHECK(pid == wl_exp_pid, "getpid() = %d, want %d", pid, wl_exp_pid);
	TCHECK(ppid == wl_exp_ppid || wl_exp_ppid == -1, "getppid() = %d, want %d", ppid, wl_exp_ppid);
	TCHECK(pgid == wl_exp_pgid, "getpgrp() = %d, want %d", pgid, wl_exp_pgid);
	TCHECK(sid == wl_exp_sid, "getsid(0) = %d, want %d", sid, wl_exp_sid);
}

/* wl_wait_stop with a watchdog: a tree whose test process died (nobody
 * will send SIGTERM) does not live forever: after about 10 minutes of
 * waiting each process gives up (FAIL, exit 1). */
static __attribute__((unused)) void wl_tree_wait_stop(void)
{
	for (long i = 0; !wl_stop; i++) {
		if (i >= 60000) {
			wl_fail("%s[%d]: no SIGTERM within 10 minutes: giving up", wl_role, (int)wl_exp_pid);
			fflush(stdout);
			_exit(1);
		}
		wl_msleep(10);
	}
}

/* Creates wl-mark.NAME (atomically: write + rename) holding our pid. */
static __attribute__((unused)) void wl_mark(const char *name)
{
	char tmp[256], path[256], buf[32];
	int fd, n;
	snprintf(tmp, sizeof(tmp), ".wl-mark.%s.%d", name, (int)getpid());
	snprintf(path, sizeof(path), "wl-mark.%s", name);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("%s: create %s: %s", wl_role, tmp, strerror(errno));
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (write(fd, buf, (size_t)n) != n)
		wl_die("%s: write %s: %s", wl_role, tmp, strerror(errno));
	close(fd);
	if (rename(tmp, path))
		wl_die("%s: rename %s: %s", wl_role, path, strerror(errno));
}

/* The root calls this first: no stale marks (the cwd should be fresh). */
static __attribute__((unused)) void wl_clear_marks(void)
{
	DIR *d = opendir(".");
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, "wl-mark.", 8) == 0 || strncmp(e->d_name, ".wl-mark.", 9) == 0)
			unlink(e->d_name);
	closedir(d);
}

/* Returns the pid in wl-mark.NAME, or 0 if there is none yet. */
static __attribute__((unused)) pid_t wl_read_mark(const char *name)
{
	char path[256], buf[32];
	snprintf(path, sizeof(path), "wl-mark.%s", name);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0)
		return 0;
	return (pid_t)atoi(buf);
}

/* Waits (at most 8 s: less than the harness's READY timeout) for a mark. */
static __attribute__((unused)) pid_t wl_wait_mark(const char *name)
{
	for (int i = 0; i < 8000; i++) {
		pid_t pid = wl_read_mark(name);
		if (pid > 0)
			return pid;
		wl_msleep(1);
	}
	wl_die("%s: %s did not get ready within 8 s", wl_role, name);
	return 0;
}

/* Like wl_wait_mark, but a timeout is a FAIL (returns 0), not the end. */
static __attribute__((unused)) pid_t wl_await_mark(const char *name, int ms)
{
	for (int i = 0; i < ms; i++) {
		pid_t pid = wl_read_mark(name);
		if (pid > 0)
			return pid;
		wl_msleep(1);
	}
	wl_fail("%s[%d]: no mark %s within %d ms", wl_role, (int)wl_exp_pid, name, ms);
	return 0;
}

/* Bounded waitpid: returns 0 and the status, or -1 (and a FAIL line) if
 * the child did not exit within timeout_ms (it is then SIGKILLed) or is
 * not our child. */
static __attribute__((unused)) int wl_reap(pid_t pid, const char *what, int *status, int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR) {
			wl_fail("%s[%d]: waitpid(%s %d): %s", wl_role, (int)wl_exp_pid, what, (int)pid, strerror(errno));
			return -1;
		}
		wl_msleep(1);
	}
	wl_fail("%s[%d]: %s (pid %d) did not exit within %d ms", wl_role, (int)wl_exp_pid, what, (int)pid, timeout_ms);
	kill(pid, SIGKILL);
	waitpid(pid, status, 0);
	return -1;
}

/* Reaps a child that must exit 0 (its own FAIL lines explain a 1). */
static __attribute__((unused)) void wl_reap_ok(pid_t pid, const char *what)
{
	int st = 0;
	if (wl_reap(pid, what, &st, 10000))
		return;
	TCHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s (pid %d) ended with wait status %#x, want exit 0", what,
	       (int)pid, st);
}

/* No child is left to reap (no helper or placeholder process, no extra
 * child): waitpid(-1, WNOHANG) fails with ECHILD. */
static __attribute__((unused)) void wl_check_no_children(void)
{
	int st;
	pid_t r = waitpid(-1, &st, WNOHANG | __WALL);
	TCHECK(r == -1 && errno == ECHILD, "unexpected child: waitpid(-1, WNOHANG) = %d (%s), want ECHILD", (int)r,
	       r < 0 ? strerror(errno) : "a child exists");
}

/* A tree member other than the root ends: exit status 0 (PASS) or 1. */
static __attribute__((unused)) void wl_child_exit(void)
{
	fflush(stdout);
	_exit(atomic_load(&wl_fails) ? 1 : 0);
}

/* Waits (at most 5 s) until process PID sits in syscall NR with first
 * argument ARG0 (/proc/PID/syscall), i.e. is blocked there. */
static __attribute__((unused)) void wl_wait_in_syscall(pid_t pid, long nr, long arg0, const char *what)
{
	char path[64], buf[512];
	for (int i = 0; i < 5000; i++) {
		long n, a;
		snprintf(path, sizeof(path), "/proc/%d/syscall", (int)pid);
		if (wl_read_file(path, buf, sizeof(buf)) > 0 && sscanf(buf, "%ld 0x%lx", &n, &a) == 2 && n == nr &&
		    a == arg0)
			return;
		wl_msleep(1);
	}
	wl_die("%s: %s (pid %d) is not blocked in syscall %ld(%ld, ...) after 5 s: /proc/%d/syscall is \"%s\"", wl_role,
	       what, (int)pid, nr, arg0, (int)pid, buf);
}

/*
 * The /proc/self/mountinfo line of the mount at path (absolute), from its
 * 4th field on (root, point, options, propagation, type, source, superblock
 * options); the last one wins (it is the visible mount). 0 if none.
 */
static __attribute__((unused)) int wl_mountinfo_of(const char *path, char *out, size_t size)
{
	static char buf[1 << 16];
	int found = 0;
	if (wl_read_file("/proc/self/mountinfo", buf, sizeof(buf)) <= 0)
		return 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n")) {
		char *f = line, *point;
		for (int i = 0; i < 3 && f; i++) /* id, parent id, major:minor */
			f = strchr(f, ' '), f = f ? f + 1 : NULL;
		if (!f || !(point = strchr(f, ' ')))
			continue;
		point++;
		if (strncmp(point, path, strlen(path)) == 0 && point[strlen(path)] == ' ') {
			snprintf(out, size, "%s", f);
			found = 1;
		}
	}
	return found;
}

/*
 * The clock offsets of the time namespace (/proc/self/timens_offsets),
 * recorded before READY and checked after restore: the same text,
 * CLOCK_MONOTONIC at least its offset and not gone back, CLOCK_BOOTTIME -
 * CLOCK_MONOTONIC at least the difference of the offsets (lost offsets make
 * both false on a machine up for less than the offsets).
 */
struct wl_timens {
	int have; /* offsets other than 0 */
	char offsets[256];
	long long mono_offset, boot_offset;
	struct timespec mono;
};

static __attribute__((unused)) int wl_offset_of(const char *text, const char *clock, long long *sec)
{
	const char *p = strstr(text, clock);
	return p && sscanf(p + strlen(clock), "%lld", sec) == 1;
}

static __attribute__((unused)) void wl_timens_record(struct wl_timens *t)
{
	if (wl_read_file("/proc/self/timens_offsets", t->offsets, sizeof(t->offsets)) <= 0)
		return;
	if (!wl_offset_of(t->offsets, "monotonic", &t->mono_offset) || !wl_offset_of(t->offsets, "boottime", &t->boot_offset))
		wl_die("/proc/self/timens_offsets: \"%s\"", t->offsets);
	t->have = t->mono_offset != 0 || t->boot_offset != 0;
	clock_gettime(CLOCK_MONOTONIC, &t->mono);
	if (t->have)
		wl_info("time namespace offsets: monotonic %lld s, boottime %lld s", t->mono_offset, t->boot_offset);
}

static __attribute__((unused)) void wl_timens_check(const struct wl_timens *t)
{
	char now[256];
	struct timespec mono, boot;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	CHECK(wl_read_file("/proc/self/timens_offsets", now, sizeof(now)) > 0 && strcmp(now, t->offsets) == 0,
	      "/proc/self/timens_offsets \"%s\", want \"%s\"", now, t->offsets);
	CHECK(mono.tv_sec >= t->mono_offset, "CLOCK_MONOTONIC %lld s, below its offset %lld s", (long long)mono.tv_sec,
	      t->mono_offset);
	CHECK(mono.tv_sec > t->mono.tv_sec || (mono.tv_sec == t->mono.tv_sec && mono.tv_nsec >= t->mono.tv_nsec),
	      "CLOCK_MONOTONIC went back from %lld to %lld s", (long long)t->mono.tv_sec, (long long)mono.tv_sec);
	CHECK(boot.tv_sec - mono.tv_sec >= t->boot_offset - t->mono_offset - 1,
	      "CLOCK_BOOTTIME - CLOCK_MONOTONIC = %lld s, want at least %lld s", (long long)(boot.tv_sec - mono.tv_sec),
	      t->boot_offset - t->mono_offset);
}

/* A private anonymous region with a pattern, checked after restore. */
struct wl_region {
	uint64_t *p;
	size_t len;
	uint64_t seed;
	const char *what;
};

static __attribute__((unused)) void wl_region_new(struct wl_region *r, size_t len, uint64_t seed, const char *what)
{
	r->p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->p == MAP_FAILED)
		wl_die("%s: mmap %zu: %s", wl_role, len, strerror(errno));
	r->len = len;
	r->seed = seed;
	r->what = what;
	wl_fill(r->p, len, seed);
}

static __attribute__((unused)) void wl_region_check(const struct wl_region *r)
{
	long bad = wl_verify(r->p, r->len, r->seed);
	TCHECK(bad < 0, "memory %s (%zu bytes, seed %llu): word %ld differs", r->what, r->len,
	       (unsigned long long)r->seed, bad);
}

#endif
