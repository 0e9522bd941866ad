/*
 * blocked: threads blocked in system calls at dump time resume correctly.
 *
 * Main thread: nanosleep(30 s) in a loop until SIGTERM; a sleep that returns
 * 0 must really have lasted 30 s, and EINTR is the only acceptable error.
 * With -t 2 and more, worker 1: nanosleep(1 s) in a loop counting
 * iterations; a sleep returning 0 must have lasted >= 1 s, CLOCK_MONOTONIC
 * never goes backwards, and after SIGTERM the loop must still make progress
 * (>= 2 iterations in 2.5 s) and never complete more sleeps than seconds
 * elapsed. With -t 3 and more, worker 2: blocked in FUTEX_WAIT on a word that
 * main sets and wakes after SIGTERM; it must wake up and see the new value.
 * With -t 4, worker 3: blocked in sigsuspend (SIGUSR1 blocked otherwise);
 * main sends SIGUSR1 with pthread_kill after SIGTERM; the handler must run in
 * that thread, sigsuspend must return EINTR and the thread's original blocked
 * mask must be back afterwards.
 * (-t 5 and more: the extra workers just sleep.)
 */
#include "wl.h"
#include <linux/futex.h>

#define SEC 1000000000ull

static atomic_long nano_iters;
static volatile int nano_quit;
static uint64_t nano_start;

static atomic_int futex_word;
static volatile int futex_done;
static atomic_int futex_wait_calls;

static volatile sig_atomic_t usr1_tid;
static volatile int susp_done;
static pthread_t susp_thread;

static uint64_t raw_sigmask(void)
{
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static void *nano_thread(void *arg)
{
	int idx = (int)(long)arg;
	uint64_t prev = 0;
	wl_block_sigterm();
	nano_start = wl_now_ns(CLOCK_MONOTONIC);
	wl_thread_started(idx);
	while (!nano_quit) {
		struct timespec ts = {1, 0};
		uint64_t t0 = wl_now_ns(CLOCK_MONOTONIC), t1;
		int r = nanosleep(&ts, NULL);
		int err = errno;
		t1 = wl_now_ns(CLOCK_MONOTONIC);
		CHECK(t0 >= prev && t1 >= t0, "nanosleep thread: CLOCK_MONOTONIC went backwards");
		prev = t1;
		if (r == 0)
			CHECK(t1 - t0 >= SEC, "nanosleep thread: nanosleep(1 s) returned 0 after %lu ns",
			      (unsigned long)(t1 - t0));
		else
			CHECK(err == EINTR, "nanosleep thread: nanosleep failed: %s", strerror(err));
		atomic_fetch_add(&nano_iters, 1);
	}
	wl_check_ids(idx);
	return NULL;
}

static void *futex_thread(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	while (atomic_load(&futex_word) == 0) {
		long r;
		atomic_fetch_add(&futex_wait_calls, 1);
		r = syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		if (r == -1 && errno != EINTR && errno != EAGAIN)
			wl_fail("futex thread: FUTEX_WAIT: %s", strerror(errno));
	}
	CHECK(atomic_load(&futex_word) == 0x1234, "futex thread: woke up with word %#x, want 0x1234",
	      atomic_load(&futex_word));
	wl_check_ids(idx);
	futex_done = 1;
	return NULL;
}

static void usr1_handler(int sig)
{
	(void)sig;
	usr1_tid = (sig_atomic_t)wl_gettid();
}

static void *susp_thread_fn(void *arg)
{
	int idx = (int)(long)arg;
	sigset_t block, wait_mask;
	uint64_t mask_before, mask_after;
	int r, err;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	mask_before = raw_sigmask();
	pthread_sigmask(SIG_BLOCK, NULL, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	wl_thread_started(idx);
	do {
		r = sigsuspend(&wait_mask);
		err = errno;
	} while (usr1_tid == 0);
	mask_after = raw_sigmask();
	CHECK(r == -1 && err == EINTR, "sigsuspend thread: sigsuspend returned %d (%s), want EINTR", r,
	      strerror(err));
	CHECK(usr1_tid == wl_gettid(), "sigsuspend thread: SIGUSR1 handled by tid %d, want %d", (int)usr1_tid,
	      wl_gettid());
	CHECK(mask_after == mask_before,
	      "sigsuspend thread: blocked mask after sigsuspend = %#lx, want %#lx (saved mask not restored)",
	      (unsigned long)mask_after, (unsigned long)mask_before);
	wl_check_ids(idx);
	susp_done = 1;
	return NULL;
}

static void *idle_thread(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	wl_wait_stop();
	wl_check_ids(idx);
	return NULL;
}

/* State letter of a thread of ours (field 3 of /proc/self/task/TID/stat). */
static char thread_state(pid_t tid)
{
	char path[64], buf[512], *p;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return '?';
	return p[2];
}

static int wait_flag(volatile int *flag, int ms)
{
	for (int i = 0; i < ms && !*flag; i++)
		wl_msleep(1);
	return *flag;
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	struct sigaction sa;

	wl_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr1_handler;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));

	for (int i = 1; i < wl_nthreads; i++) {
		void *(*fn)(void *) = i == 1 ? nano_thread : i == 2 ? futex_thread : i == 3 ? susp_thread_fn : idle_thread;
		if (pthread_create(&th[i], NULL, fn, (void *)(long)i))
			wl_die("pthread_create");
		if (i == 3)
			susp_thread = th[i];
	}
	wl_wait_started(wl_nthreads - 1);
	/* let the workers enter their blocking calls */
	for (int i = 1; i < wl_nthreads; i++) {
		int n = 0;
		while (thread_state(wl_tids[i]) != 'S' && n++ < 5000)
			wl_msleep(1);
		if (thread_state(wl_tids[i]) != 'S')
			wl_die("thread %d (tid %d) is not sleeping in its syscall", i, wl_tids[i]);
	}
	wl_msleep(50);
	if (wl_nthreads > 2 && atomic_load(&futex_wait_calls) != 1)
		wl_die("futex thread called FUTEX_WAIT %d times before READY", atomic_load(&futex_wait_calls));
	wl_ready();

	while (!wl_stop) {
		struct timespec ts = {30, 0};
		uint64_t t0 = wl_now_ns(CLOCK_MONOTONIC), t1;
		int r = nanosleep(&ts, NULL);
		int err = errno;
		t1 = wl_now_ns(CLOCK_MONOTONIC);
		if (r == 0)
			CHECK(t1 - t0 >= 30 * SEC, "main: nanosleep(30 s) returned 0 after %lu ns",
			      (unsigned long)(t1 - t0));
		else
			CHECK(err == EINTR, "main: nanosleep failed: %s", strerror(err));
	}
	if (wl_corrupt) {
		/* a sleep cut short, as a restore returning 0 too early would */
		struct timespec ts = {0, 10000000};
		uint64_t t0 = wl_now_ns(CLOCK_MONOTONIC);
		if (nanosleep(&ts, NULL) == 0)
			CHECK(wl_now_ns(CLOCK_MONOTONIC) - t0 >= 30 * SEC, "main: nanosleep(30 s) returned 0 after %lu ns",
			      (unsigned long)(wl_now_ns(CLOCK_MONOTONIC) - t0));
		atomic_store(&futex_word, 0x4321);
		nano_quit = 1;
	}
	wl_check_ids(0);

	if (wl_nthreads > 1) {
		long it0 = atomic_load(&nano_iters), it1;
		uint64_t elapsed;
		wl_msleep(2500);
		it1 = atomic_load(&nano_iters);
		elapsed = wl_now_ns(CLOCK_MONOTONIC) - nano_start;
		CHECK(it1 - it0 >= 2, "nanosleep thread: %ld iterations in 2.5 s after SIGTERM, want >= 2 (stuck?)",
		      it1 - it0);
		CHECK((uint64_t)it1 <= elapsed / SEC + 2, "nanosleep thread: %ld sleeps of 1 s in %lu ms", it1,
		      (unsigned long)(elapsed / 1000000));
		nano_quit = 1;
	}
	if (wl_nthreads > 2) {
		if (!wl_corrupt)
			atomic_store(&futex_word, 0x1234);
		for (int i = 0; i < 50 && !futex_done; i++) {
			syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
			wait_flag(&futex_done, 100);
		}
		CHECK(futex_done, "futex thread: not woken by FUTEX_WAKE");
	}
	if (wl_nthreads > 3) {
		if (!wl_corrupt)
			pthread_kill(susp_thread, SIGUSR1);
		CHECK(wait_flag(&susp_done, 5000), "sigsuspend thread: not woken by SIGUSR1");
	}
	if (wl_corrupt)
		return wl_finish();
	wl_join(th, wl_nthreads);
	return wl_finish();
}
