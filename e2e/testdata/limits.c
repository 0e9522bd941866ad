/*
 * limits: a process at one of its resource limits, which cryo's injected
 * calls and scratch memory must live with.
 *
 * Mode "nofile": RLIMIT_NOFILE's soft limit is lowered to 64 and every
 * descriptor below it is taken (/dev/null), so the process cannot open
 * one more. Mode "as": RLIMIT_AS's soft limit is set to the address
 * space in use, so it cannot map one more page. After the
 * checkpoint the process checks that its limits are still the ones it set,
 * that it is still at them (one more open or a 1 MiB mapping fails), and
 * that a region filled with a pattern is intact.
 *
 * Mode "nproc": the process becomes uid/gid NPROC_UID (a user nothing
 * else runs as) and sets RLIMIT_NPROC to 1: it is that user's only
 * process, and it cannot fork (EAGAIN); the same after the checkpoint.
 *
 * Mode "memcg": the process first moves itself into the cgroup whose
 * cgroup.procs file $CRYO_E2E_CGROUP_PROCS names, then fills 16 MiB more,
 * so that its memory is charged there; the test then puts the cgroup's
 * limit just above its usage. Only the memory is checked.
 */
#include "wl.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <grp.h>

#define NOFILE 64
#define REGION (256 << 10)
#define NPROC_UID 47113
#define MEMCG_REGION (16 << 20)

/* Forks a child that exits at once; returns the fork's errno (0: it
 * forked). */
static int try_fork(void)
{
	pid_t pid = fork();
	if (pid < 0)
		return errno;
	if (pid == 0)
		_exit(0);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static long vm_size(void)
{
	char buf[4096];
	if (wl_read_file("/proc/self/status", buf, sizeof(buf)) <= 0)
		wl_die("read /proc/self/status");
	char *p = strstr(buf, "VmSize:");
	if (!p)
		wl_die("no VmSize");
	return atol(p + 7) * 1024;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	unsigned char *region = mmap(NULL, REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (region == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	wl_fill(region, REGION, 7);
	struct rlimit want = {0, 0};
	int res;
	unsigned char *big = NULL;
	if (strcmp(wl_mode, "nofile") == 0) {
		res = RLIMIT_NOFILE;
		if (getrlimit(res, &want))
			wl_die("getrlimit: %s", strerror(errno));
		want.rlim_cur = NOFILE;
		if (setrlimit(res, &want))
			wl_die("setrlimit: %s", strerror(errno));
		while (open("/dev/null", O_RDONLY) >= 0)
			;
		if (errno != EMFILE)
			wl_die("open: %s, want EMFILE", strerror(errno));
	} else if (strcmp(wl_mode, "as") == 0) {
		res = RLIMIT_AS;
		if (getrlimit(res, &want))
			wl_die("getrlimit: %s", strerror(errno));
		want.rlim_cur = vm_size();
		if (setrlimit(res, &want))
			wl_die("setrlimit: %s", strerror(errno));
	} else if (strcmp(wl_mode, "nproc") == 0) {
		res = RLIMIT_NPROC;
		if (setgroups(0, NULL) || setresgid(NPROC_UID, NPROC_UID, NPROC_UID) ||
		    setresuid(NPROC_UID, NPROC_UID, NPROC_UID))
			wl_die("become uid %d: %s", NPROC_UID, strerror(errno));
		prctl(PR_SET_DUMPABLE, 1);
		want.rlim_cur = want.rlim_max = 1;
		if (setrlimit(res, &want))
			wl_die("setrlimit: %s", strerror(errno));
		int e = try_fork();
		if (e != EAGAIN)
			wl_die("fork at RLIMIT_NPROC: %s, want EAGAIN", e ? strerror(e) : "it forked");
	} else if (strcmp(wl_mode, "memcg") == 0) {
		res = -1;
		const char *procs = getenv("CRYO_E2E_CGROUP_PROCS");
		char buf[32];
		int fd = procs ? open(procs, O_WRONLY) : -1;
		int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
		if (fd < 0 || write(fd, buf, (size_t)n) != n)
			wl_die("join the cgroup %s: %s", procs ? procs : "($CRYO_E2E_CGROUP_PROCS unset)", strerror(errno));
		close(fd);
		big = mmap(NULL, MEMCG_REGION, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (big == MAP_FAILED)
			wl_die("mmap: %s", strerror(errno));
		wl_fill(big, MEMCG_REGION, 11);
	} else {
		wl_die("mode nofile, as, nproc or memcg");
	}
	wl_ready();
	wl_wait_stop();

	struct rlimit got = want;
	if (res >= 0)
		CHECK(getrlimit(res, &got) == 0, "getrlimit: %s", strerror(errno));
	CHECK(got.rlim_cur == want.rlim_cur && got.rlim_max == want.rlim_max,
	      "limit %d is %llu:%llu, want %llu:%llu", res, (unsigned long long)got.rlim_cur,
	      (unsigned long long)got.rlim_max, (unsigned long long)want.rlim_cur, (unsigned long long)want.rlim_max);
	if (res == RLIMIT_NOFILE) {
		int fd = open("/dev/null", O_RDONLY);
		CHECK(fd < 0 && errno == EMFILE, "one more descriptor could be opened (%d)", fd);
		for (int i = 0; i < NOFILE; i++)
			CHECK(fcntl(i, F_GETFD) >= 0, "descriptor %d is closed", i);
	} else if (res == RLIMIT_AS) {
		void *m = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(m == MAP_FAILED && errno == ENOMEM, "a 1 MiB mapping fits under RLIMIT_AS");
	} else if (res == RLIMIT_NPROC) {
		int e = try_fork();
		CHECK(e == EAGAIN, "fork at RLIMIT_NPROC: %s, want EAGAIN", e ? strerror(e) : "it forked");
		CHECK(getuid() == NPROC_UID && geteuid() == NPROC_UID, "uid %d/%d, want %d", (int)getuid(), (int)geteuid(), NPROC_UID);
	} else if (big) {
		long b = wl_verify(big, MEMCG_REGION, 11);
		CHECK(b < 0, "the 16 MiB region differs at word %ld", b);
	}
	long bad = wl_verify(region, REGION, 7);
	CHECK(bad < 0, "region differs at byte %ld", bad);
	if (atomic_load(&wl_fails))
		return 1;
	printf("PASS\n");
	return 0;
}
