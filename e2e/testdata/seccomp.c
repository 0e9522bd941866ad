/*
 * seccomp: threads under seccomp filters or strict mode, which a restore
 * must put back as they were, and which cryo's injected calls must get
 * past while it dumps and restores them.
 *
 * Modes:
 *   errno     one filter: getppid fails with EPERM, everything else works
 *             (no_new_privs set first, as an unprivileged program must).
 *   forbid    a filter that kills the process at mmap, munmap, mprotect,
 *             brk, rt_sigaction, sigaltstack, prctl and other calls cryo
 *             injects; after the restore a child (raw clone, so no library
 *             code runs in it) calls munmap and must die of SIGSYS.
 *   stack     two filters: the older makes getppid fail with EPERM and
 *             getsid with ENOENT, the newer getppid with EACCES and getpgid
 *             with EEXIST. Among equal actions the newest filter's wins, so
 *             getppid gives EACCES only if the order was kept.
 *   tsync     -t N: threads exist, then main installs the getppid filter
 *             with SECCOMP_FILTER_FLAG_TSYNC; after the restore every
 *             thread sees it, and a second TSYNC install from main succeeds
 *             (it fails unless every thread shares main's chain).
 *   perthread -t 3: thread 1 has a filter giving EPERM for getppid, thread 2
 *             one giving EACCES, main none.
 *   strict    -t 2: thread 1 is in strict mode (only read, write, exit,
 *             sigreturn), echoing bytes between two pipes, blocked in read
 *             when dumped; main checks the echo before and after.
 *   log       one filter installed with SECCOMP_FILTER_FLAG_LOG: getppid
 *             gets SECCOMP_RET_LOG (allowed, logged), getsid EPERM. The
 *             test checks the flag in a second dump's image.
 */
#include "wl.h"
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <dirent.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#define REGION (64 << 10)

#define LD_ARCH BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch))
#define CHECK_ARCH BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS)
#define LD_NR BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr))
#define RULE(nr, ret) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), BPF_STMT(BPF_RET | BPF_K, (ret))
#define ALLOW BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)
#define ERR(e) (SECCOMP_RET_ERRNO | (e))
#define KILL SECCOMP_RET_KILL_PROCESS

static struct sock_filter f_errno[] = {LD_ARCH, CHECK_ARCH, LD_NR, RULE(SYS_getppid, ERR(EPERM)), ALLOW};
static struct sock_filter f_eacces[] = {LD_ARCH, CHECK_ARCH, LD_NR, RULE(SYS_getppid, ERR(EACCES)), ALLOW};
static struct sock_filter f_older[] = {LD_ARCH, CHECK_ARCH, LD_NR, RULE(SYS_getppid, ERR(EPERM)), RULE(SYS_getsid, ERR(ENOENT)), ALLOW};
static struct sock_filter f_newer[] = {LD_ARCH, CHECK_ARCH, LD_NR, RULE(SYS_getppid, ERR(EACCES)), RULE(SYS_getpgid, ERR(EEXIST)), ALLOW};
static struct sock_filter f_log[] = {LD_ARCH, CHECK_ARCH, LD_NR, RULE(SYS_getppid, SECCOMP_RET_LOG), RULE(SYS_getsid, ERR(EPERM)), ALLOW};
static struct sock_filter f_allow[] = {ALLOW};
static struct sock_filter f_forbid[] = {
	LD_ARCH, CHECK_ARCH, LD_NR,
	RULE(SYS_mmap, KILL), RULE(SYS_munmap, KILL), RULE(SYS_mprotect, KILL), RULE(SYS_mremap, KILL),
	RULE(SYS_madvise, KILL), RULE(SYS_brk, KILL), RULE(SYS_rt_sigaction, KILL), RULE(SYS_sigaltstack, KILL),
	RULE(SYS_prctl, KILL), RULE(SYS_set_robust_list, KILL), RULE(SYS_rseq, KILL), RULE(SYS_arch_prctl, KILL),
	RULE(SYS_set_tid_address, KILL), RULE(SYS_rt_tgsigqueueinfo, KILL), RULE(SYS_rt_sigtimedwait, KILL),
	RULE(SYS_setpriority, KILL), RULE(SYS_capset, KILL), RULE(SYS_setresuid, KILL),
	ALLOW,
};

#define N(f) ((unsigned short)(sizeof(f) / sizeof((f)[0])))

static long install(struct sock_filter *f, unsigned short n, unsigned int flags)
{
	struct sock_fprog prog = {.len = n, .filter = f};
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static void nnp(void)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_die("no_new_privs: %s", strerror(errno));
}

/* The Seccomp: value of a status file, -1 if unreadable. */
static int mode_in(const char *path)
{
	char buf[4096];
	if (wl_read_file(path, buf, sizeof(buf)) <= 0)
		return -1;
	char *p = strstr(buf, "\nSeccomp:");
	return p ? atoi(p + 9) : -1;
}

/* The calling thread's seccomp mode. /proc/thread-self works whatever pid
 * namespace the process was restored in. */
static int own_mode(void) { return mode_in("/proc/thread-self/status"); }

/* How many threads of the process are in seccomp mode m. */
static int threads_in_mode(int m)
{
	int n = 0;
	DIR *d = opendir("/proc/self/task");
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));) {
		char path[300];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", e->d_name);
		n += mode_in(path) == m;
	}
	closedir(d);
	return n;
}

/* Expects the raw call to fail with errno want. */
#define FAILS(call, want) \
	do { \
		errno = 0; \
		long r_ = (call); \
		CHECK(r_ == -1 && errno == (want), "%s = %ld (%s), want %s", #call, r_, strerror(errno), strerror(want)); \
	} while (0)

static int p_in[2], p_out[2];

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	if (strcmp(wl_mode, "perthread") == 0) {
		if (idx == 1 || idx == 2) {
			nnp();
			if (install(idx == 1 ? f_errno : f_eacces, idx == 1 ? N(f_errno) : N(f_eacces), 0))
				wl_die("thread %d: seccomp: %s", idx, strerror(errno));
		}
	}
	if (strcmp(wl_mode, "strict") == 0) {
		wl_thread_started(idx);
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT))
			wl_die("strict mode: %s", strerror(errno));
		/* From here only read, write and exit. */
		for (;;) {
			char c;
			if (syscall(SYS_read, p_in[0], &c, 1) != 1 || c == 'q')
				syscall(SYS_exit, 0);
			c++;
			syscall(SYS_write, p_out[1], &c, 1);
		}
	}
	wl_thread_started(idx);
	wl_wait_stop();
	wl_check_ids(idx);
	if (strcmp(wl_mode, "tsync") == 0) {
		FAILS(syscall(SYS_getppid), EPERM);
		CHECK(own_mode() == 2, "thread %d: seccomp mode %d, want 2", idx, own_mode());
	} else if (strcmp(wl_mode, "perthread") == 0) {
		FAILS(syscall(SYS_getppid), idx == 1 ? EPERM : EACCES);
		CHECK(own_mode() == 2, "thread %d: seccomp mode %d, want 2", idx, own_mode());
	}
	return NULL;
}

/* A round trip through the strict thread: 'a' comes back as 'b'. */
static void echo(const char *when)
{
	char c = 'a';
	CHECK(write(p_in[1], &c, 1) == 1, "%s: write to the strict thread: %s", when, strerror(errno));
	CHECK(wl_readable(p_out[0], 5000) > 0, "%s: the strict thread did not answer", when);
	CHECK(read(p_out[0], &c, 1) == 1 && c == 'b', "%s: the strict thread answered %d", when, c);
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];

	wl_init(argc, argv);
	unsigned char *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(region, REGION, 11);
	if (strcmp(wl_mode, "strict") == 0 && (pipe(p_in) || pipe(p_out)))
		wl_die("pipe: %s", strerror(errno));
	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);

	if (strcmp(wl_mode, "errno") == 0) {
		nnp();
		if (install(f_errno, N(f_errno), 0))
			wl_die("seccomp: %s", strerror(errno));
	} else if (strcmp(wl_mode, "forbid") == 0) {
		nnp();
		if (install(f_forbid, N(f_forbid), 0))
			wl_die("seccomp: %s", strerror(errno));
	} else if (strcmp(wl_mode, "stack") == 0) {
		nnp();
		if (install(f_older, N(f_older), 0) || install(f_newer, N(f_newer), 0))
			wl_die("seccomp: %s", strerror(errno));
	} else if (strcmp(wl_mode, "tsync") == 0) {
		nnp();
		long r = install(f_errno, N(f_errno), SECCOMP_FILTER_FLAG_TSYNC);
		if (r)
			wl_die("seccomp tsync: %ld %s", r, strerror(errno));
	} else if (strcmp(wl_mode, "log") == 0) {
		nnp();
		if (install(f_log, N(f_log), SECCOMP_FILTER_FLAG_LOG))
			wl_die("seccomp: %s", strerror(errno));
	} else if (strcmp(wl_mode, "strict") == 0) {
		echo("before");
		if (threads_in_mode(1) != 1)
			wl_die("%d threads in strict mode, want 1", threads_in_mode(1));
	} else if (strcmp(wl_mode, "perthread") != 0) {
		wl_die("unknown mode %s", wl_mode);
	}
	wl_ready();
	wl_wait_stop();

	wl_check_ids(0);
	long bad = wl_verify(region, REGION, 11);
	CHECK(bad < 0, "region differs at byte %ld", bad);
	CHECK(syscall(SYS_getpid) == wl_pid, "getpid");
	if (strcmp(wl_mode, "errno") == 0 || strcmp(wl_mode, "tsync") == 0) {
		FAILS(syscall(SYS_getppid), EPERM);
		CHECK(syscall(SYS_getsid, 0) > 0, "getsid: %s", strerror(errno));
		CHECK(own_mode() == 2, "seccomp mode %d, want 2", own_mode());
		CHECK(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "no_new_privs lost");
		if (strcmp(wl_mode, "tsync") == 0) {
			long r = install(f_allow, N(f_allow), SECCOMP_FILTER_FLAG_TSYNC);
			CHECK(r == 0, "a second TSYNC filter: %ld (%s): the threads do not share the chain", r, strerror(errno));
		}
	} else if (strcmp(wl_mode, "forbid") == 0) {
		CHECK(own_mode() == 2, "seccomp mode %d, want 2", own_mode());
		long child = syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0);
		if (child == 0) {
			syscall(SYS_munmap, region, 4096);
			syscall(SYS_exit_group, 0);
		}
		int st = 0;
		CHECK(child > 0, "clone: %s", strerror(errno));
		CHECK(child > 0 && waitpid((pid_t)child, &st, 0) == child, "waitpid: %s", strerror(errno));
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGSYS, "munmap in a child: status %#x, want death by SIGSYS", st);
	} else if (strcmp(wl_mode, "stack") == 0) {
		FAILS(syscall(SYS_getppid), EACCES);
		FAILS(syscall(SYS_getsid, 0), ENOENT);
		FAILS(syscall(SYS_getpgid, 0), EEXIST);
	} else if (strcmp(wl_mode, "log") == 0) {
		CHECK(syscall(SYS_getppid) > 0, "getppid (SECCOMP_RET_LOG): %s", strerror(errno));
		FAILS(syscall(SYS_getsid, 0), EPERM);
	} else if (strcmp(wl_mode, "perthread") == 0) {
		CHECK(syscall(SYS_getppid) >= 0, "getppid in main: %s", strerror(errno));
		CHECK(own_mode() == 0, "main's seccomp mode %d, want 0", own_mode());
	} else if (strcmp(wl_mode, "strict") == 0) {
		CHECK(threads_in_mode(1) == 1 && own_mode() == 0, "%d threads in strict mode (main in mode %d), want the one", threads_in_mode(1), own_mode());
		echo("after");
		char q = 'q';
		CHECK(write(p_in[1], &q, 1) == 1, "write: %s", strerror(errno));
	}
	wl_join(th, wl_nthreads);
	return wl_finish();
}
