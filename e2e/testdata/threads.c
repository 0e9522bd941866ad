/*
 * threads: per-thread kernel state survives checkpoint/restore.
 *
 * For main and each of the N-1 workers: thread id, TLS values, thread name
 * (PR_SET_NAME), blocked signal mask (pthread_sigmask, different per thread),
 * sigaltstack (address, size, flags; SS_AUTODISARM on odd threads) and that a
 * SA_ONSTACK handler really runs on it, clear_child_tid (PR_GET_TID_ADDRESS),
 * robust futex list (get_robust_list), rseq still registered (re-registering
 * the same area/len/signature returns EBUSY), and pthread_join still works
 * (needs clear_child_tid).
 */
#include "wl.h"
#include <linux/futex.h>
#include <stddef.h>
#include <sys/prctl.h>

#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

#ifndef RSEQ_SIG
#define RSEQ_SIG 0x53053053
#endif

/* glibc >= 2.35 exports these; weak so that older libcs still link */
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));

#define ALTSTACK_SIZE (64 * 1024)

struct tstate {
	char name[16];
	uint64_t sigmask;
	stack_t altstack;
	void *tid_addr;
	void *robust_head;
	size_t robust_len;
	void *rseq_area;
	int rseq_len; /* 0: not registered */
	volatile void *onstack_addr;
};

static struct tstate st[WL_MAX_THREADS];
static __thread uint64_t tls_val;
static __thread char tls_name[32];
static __thread int tls_idx = -1;

static uint64_t raw_sigmask(void)
{
	uint64_t m = 0;
	syscall(SYS_rt_sigprocmask, SIG_BLOCK, NULL, &m, 8);
	return m;
}

static void *rseq_area(void)
{
	if (&__rseq_offset == NULL || &__rseq_size == NULL || __rseq_size == 0)
		return NULL;
	return (char *)__builtin_thread_pointer() + __rseq_offset;
}

/* Finds the registration length by the EBUSY answer (glibc 2.36 registers
 * 32 bytes while __rseq_size says 20). */
static int rseq_registered_len(void *area)
{
	int lens[] = {32, (int)(&__rseq_size ? __rseq_size : 0), 20};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		if (lens[i] <= 0)
			continue;
		errno = 0;
		if (syscall(SYS_rseq, area, lens[i], 0, RSEQ_SIG) == -1 && errno == EBUSY)
			return lens[i];
	}
	return 0;
}

static void usr2_onstack(int sig)
{
	volatile int local;
	(void)sig;
	if (tls_idx >= 0)
		st[tls_idx].onstack_addr = &local;
}

static void setup(int idx)
{
	struct tstate *s = &st[idx];
	sigset_t set;
	long head_len = 0;

	tls_idx = idx;
	tls_val = wl_pat(77, (uint64_t)idx);
	snprintf(tls_name, sizeof(tls_name), "thread-%d-tls", idx);

	snprintf(s->name, sizeof(s->name), idx ? "cryo-worker-%d" : "cryo-main", idx);
	if (prctl(PR_SET_NAME, s->name))
		wl_die("PR_SET_NAME: %s", strerror(errno));

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGRTMIN + 1 + idx % 20);
	if (idx % 2)
		sigaddset(&set, SIGHUP);
	if (idx)
		sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	s->sigmask = raw_sigmask();

	s->altstack.ss_sp = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (s->altstack.ss_sp == MAP_FAILED)
		wl_die("mmap altstack");
	s->altstack.ss_size = ALTSTACK_SIZE - 4096 * (size_t)(idx % 3);
	s->altstack.ss_flags = (idx % 2) ? SS_AUTODISARM : 0;
	if (sigaltstack(&s->altstack, NULL))
		wl_die("sigaltstack: %s", strerror(errno));
	{
		stack_t cur;
		sigaltstack(NULL, &cur);
		s->altstack.ss_flags = cur.ss_flags;
	}

	if (prctl(PR_GET_TID_ADDRESS, &s->tid_addr))
		wl_die("PR_GET_TID_ADDRESS: %s", strerror(errno));
	if (syscall(SYS_get_robust_list, 0, &s->robust_head, &head_len))
		wl_die("get_robust_list: %s", strerror(errno));
	s->robust_len = (size_t)head_len;
	if (s->robust_head == NULL)
		wl_die("no robust list registered by libc");

	s->rseq_area = rseq_area();
	s->rseq_len = s->rseq_area ? rseq_registered_len(s->rseq_area) : 0;
	if (!s->rseq_len)
		wl_info("thread %d: rseq not registered by libc, not checked", idx);
}

static void corrupt(int idx)
{
	struct tstate *s = &st[idx];
	sigset_t set;
	stack_t ss = {.ss_sp = s->altstack.ss_sp, .ss_size = 8192, .ss_flags = 0};
	tls_val ^= 1;
	prctl(PR_SET_NAME, "corrupted");
	sigemptyset(&set);
	sigaddset(&set, SIGWINCH);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	sigaltstack(&ss, NULL);
	syscall(SYS_set_robust_list, (char *)s->robust_head + 8, s->robust_len);
	if (idx == 0) { /* main is never joined: safe to redirect */
		static int dummy;
		syscall(SYS_set_tid_address, &dummy);
	}
	/* unregister rseq (the restore "forgot" it) */
	if (s->rseq_len)
		syscall(SYS_rseq, s->rseq_area, s->rseq_len, 1 /* RSEQ_FLAG_UNREGISTER */, RSEQ_SIG);
}

static void verify(int idx)
{
	struct tstate *s = &st[idx];
	char name[17] = {0}, want_tls[32];
	stack_t cur;
	void *tid_addr = NULL, *head = NULL;
	long len = 0;
	uint64_t mask;

	if (wl_corrupt)
		corrupt(idx);
	wl_check_ids(idx);

	snprintf(want_tls, sizeof(want_tls), "thread-%d-tls", idx);
	CHECK(tls_val == wl_pat(77, (uint64_t)idx) && strcmp(tls_name, want_tls) == 0 && tls_idx == idx,
	      "thread %d: TLS values changed", idx);

	prctl(PR_GET_NAME, name);
	CHECK(strcmp(name, s->name) == 0, "thread %d: name = '%s', want '%s'", idx, name, s->name);

	mask = raw_sigmask();
	CHECK(mask == s->sigmask, "thread %d: blocked mask = %#lx, want %#lx", idx, (unsigned long)mask,
	      (unsigned long)s->sigmask);

	sigaltstack(NULL, &cur);
	CHECK(cur.ss_sp == s->altstack.ss_sp && cur.ss_size == s->altstack.ss_size &&
		  cur.ss_flags == s->altstack.ss_flags,
	      "thread %d: sigaltstack = {%p, %zu, %#x}, want {%p, %zu, %#x}", idx, cur.ss_sp, cur.ss_size,
	      cur.ss_flags, s->altstack.ss_sp, s->altstack.ss_size, s->altstack.ss_flags);

	prctl(PR_GET_TID_ADDRESS, &tid_addr);
	CHECK(tid_addr == s->tid_addr, "thread %d: clear_child_tid = %p, want %p", idx, tid_addr, s->tid_addr);

	syscall(SYS_get_robust_list, 0, &head, &len);
	CHECK(head == s->robust_head && (size_t)len == s->robust_len,
	      "thread %d: robust list = {%p, %ld}, want {%p, %zu}", idx, head, len, s->robust_head,
	      s->robust_len);

	if (s->rseq_len) {
		long rc;
		errno = 0;
		rc = syscall(SYS_rseq, s->rseq_area, s->rseq_len, 0, RSEQ_SIG);
		CHECK(rc == -1 && errno == EBUSY,
		      "thread %d: rseq(area %p, len %d, RSEQ_SIG) = %ld (%s), want EBUSY: rseq not registered as before",
		      idx, s->rseq_area, s->rseq_len, rc, rc ? strerror(errno) : "registered anew");
	}

	/* the alternate signal stack really works */
	s->onstack_addr = NULL;
	syscall(SYS_tgkill, getpid(), wl_gettid(), SIGUSR2);
	{
		uintptr_t a = (uintptr_t)s->onstack_addr, lo = (uintptr_t)s->altstack.ss_sp;
		CHECK(a != 0, "thread %d: SIGUSR2 handler did not run", idx);
		CHECK(a == 0 || (a >= lo && a < lo + s->altstack.ss_size),
		      "thread %d: SA_ONSTACK handler ran at %p, outside the sigaltstack %p+%zu", idx, (void *)a,
		      s->altstack.ss_sp, s->altstack.ss_size);
	}
}


static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	setup(idx);
	wl_thread_started(idx);
	wl_wait_stop();
	verify(idx);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	struct sigaction sa;

	wl_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = usr2_onstack;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR2, &sa, NULL))
		wl_die("sigaction: %s", strerror(errno));

	setup(0);
	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	wl_ready();
	wl_wait_stop();
	verify(0);
	wl_join(th, wl_nthreads);
	return wl_finish();
}
