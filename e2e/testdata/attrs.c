/*
 * attrs: process attributes survive checkpoint/restore.
 *
 * Default mode: all 16 rlimits (several soft/hard values lowered), umask
 * (027), personality (ADDR_NO_RANDOMIZE added), cwd (a subdirectory of the
 * start directory), root, /proc/self/exe, /proc/self/cmdline,
 * /proc/self/environ and /proc/self/auxv (byte for byte), comm, session and
 * process group, dumpable flag.
 *
 * Mode "creds" (needs root) additionally switches, before creating the
 * workers, to uid 1000/1001/1002 (real/effective/saved, keeping capabilities
 * with PR_SET_KEEPCAPS), gid 1001/1002/1003, groups {1004, 1005}, keeps
 * CAP_NET_BIND_SERVICE permitted+effective+inheritable+ambient, drops
 * CAP_SYS_BOOT and CAP_MKNOD from the bounding set, sets securebits
 * SECBIT_KEEP_CAPS|SECBIT_NO_SETUID_FIXUP and no_new_privs. Every thread
 * compares getresuid, getresgid, fsuid, fsgid, getgroups, capget, the bounding
 * set, the ambient set, PR_GET_SECUREBITS and PR_GET_NO_NEW_PRIVS.
 */
#include "wl.h"
#include <linux/capability.h>
#include <linux/securebits.h>
#include <sys/fsuid.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <linux/prctl.h>
#include <sys/resource.h>

#define BUFSZ 65536

struct rl {
	int res;
	const char *name;
	rlim_t soft, hard; /* RLIM_SAVED_MAX: keep */
};

static struct rl lowered[] = {
    {RLIMIT_NOFILE, "NOFILE", 300, 5000},
    {RLIMIT_CORE, "CORE", 0, 1 << 20},
    {RLIMIT_STACK, "STACK", 4 << 20, RLIM_SAVED_MAX},
    {RLIMIT_CPU, "CPU", 100000, 200000},
    {RLIMIT_FSIZE, "FSIZE", 1ul << 30, 2ul << 30},
    {RLIMIT_MSGQUEUE, "MSGQUEUE", 400000, 800000},
    {RLIMIT_NICE, "NICE", 5, 10},
    {RLIMIT_RTPRIO, "RTPRIO", 1, 2},
    {RLIMIT_RTTIME, "RTTIME", 5000000, 6000000},
    {RLIMIT_LOCKS, "LOCKS", 1000, 2000},
    {RLIMIT_MEMLOCK, "MEMLOCK", 64 << 10, 128 << 10},
};

static struct rlimit rl_before[RLIM_NLIMITS];
static unsigned um_before;
static unsigned long pers_before;
static char cwd_before[4096], exe_before[4096], root_before[4096];
static char cmdline_before[BUFSZ], environ_before[BUFSZ], auxv_before[BUFSZ], comm_before[64];
static ssize_t cmdline_len, environ_len, auxv_len;
static pid_t sid_before, pgid_before;
static int dumpable_before;
static int creds_mode;
static char **saved_argv;

struct creds {
	uid_t r, e, s, fs;
	gid_t rg, eg, sg, fsg;
	int ngroups;
	gid_t groups[64];
	struct __user_cap_data_struct cap[2];
	uint64_t bset, ambient;
	int securebits, nnp, keepcaps;
};
static struct creds creds_before[WL_MAX_THREADS];
static int cap_last;

static unsigned read_umask(void)
{
	static char buf[8192];
	char *p;
	if (wl_read_file("/proc/self/status", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "Umask:")))
		return 0xffff;
	return (unsigned)strtoul(p + 6, NULL, 8);
}

static ssize_t readlink0(const char *path, char *buf, size_t size)
{
	ssize_t n = readlink(path, buf, size - 1);
	buf[n < 0 ? 0 : n] = 0;
	return n;
}

static int capget_self(struct __user_cap_data_struct *d)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	return (int)syscall(SYS_capget, &h, d);
}

static int capset_self(uint32_t eff, uint32_t perm, uint32_t inh)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2] = {{eff, perm, inh}, {0, 0, 0}};
	return (int)syscall(SYS_capset, &h, d);
}

static void get_creds(struct creds *c)
{
	memset(c, 0, sizeof(*c));
	/* raw syscalls: per-thread values */
	syscall(SYS_getresuid, &c->r, &c->e, &c->s);
	syscall(SYS_getresgid, &c->rg, &c->eg, &c->sg);
	c->fs = (uid_t)syscall(SYS_setfsuid, -1);
	c->fsg = (gid_t)syscall(SYS_setfsgid, -1);
	c->ngroups = (int)syscall(SYS_getgroups, 64, c->groups);
	capget_self(c->cap);
	for (int i = 0; i <= cap_last && i < 64; i++) {
		if (prctl(PR_CAPBSET_READ, i, 0, 0, 0) == 1)
			c->bset |= 1ull << i;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, i, 0, 0) == 1)
			c->ambient |= 1ull << i;
	}
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->nnp = prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0);
	c->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
}

static void compare_creds(int idx)
{
	struct creds now, *b = &creds_before[idx];
	get_creds(&now);
	CHECK(now.r == b->r && now.e == b->e && now.s == b->s, "thread %d: getresuid = %u/%u/%u, want %u/%u/%u",
	      idx, now.r, now.e, now.s, b->r, b->e, b->s);
	CHECK(now.rg == b->rg && now.eg == b->eg && now.sg == b->sg,
	      "thread %d: getresgid = %u/%u/%u, want %u/%u/%u", idx, now.rg, now.eg, now.sg, b->rg, b->eg, b->sg);
	CHECK(now.fs == b->fs && now.fsg == b->fsg, "thread %d: fsuid/fsgid = %u/%u, want %u/%u", idx, now.fs,
	      now.fsg, b->fs, b->fsg);
	CHECK(now.ngroups == b->ngroups && memcmp(now.groups, b->groups, sizeof(gid_t) * (size_t)(now.ngroups > 0 ? now.ngroups : 0)) == 0,
	      "thread %d: getgroups = %d groups (first %u), want %d (first %u)", idx, now.ngroups,
	      now.ngroups > 0 ? now.groups[0] : 0, b->ngroups, b->ngroups > 0 ? b->groups[0] : 0);
	CHECK(memcmp(now.cap, b->cap, sizeof(now.cap)) == 0,
	      "thread %d: capget eff/perm/inh = %#x/%#x/%#x %#x/%#x/%#x, want %#x/%#x/%#x %#x/%#x/%#x", idx,
	      now.cap[0].effective, now.cap[0].permitted, now.cap[0].inheritable, now.cap[1].effective,
	      now.cap[1].permitted, now.cap[1].inheritable, b->cap[0].effective, b->cap[0].permitted,
	      b->cap[0].inheritable, b->cap[1].effective, b->cap[1].permitted, b->cap[1].inheritable);
	CHECK(now.bset == b->bset, "thread %d: bounding set = %#lx, want %#lx", idx, (unsigned long)now.bset,
	      (unsigned long)b->bset);
	CHECK(now.ambient == b->ambient, "thread %d: ambient set = %#lx, want %#lx", idx,
	      (unsigned long)now.ambient, (unsigned long)b->ambient);
	CHECK(now.securebits == b->securebits, "thread %d: securebits = %#x, want %#x", idx, now.securebits,
	      b->securebits);
	CHECK(now.nnp == b->nnp, "thread %d: no_new_privs = %d, want %d", idx, now.nnp, b->nnp);
	CHECK(now.keepcaps == b->keepcaps, "thread %d: keepcaps = %d, want %d", idx, now.keepcaps, b->keepcaps);
}

static void switch_creds(void)
{
	gid_t groups[2] = {1004, 1005};
	uint32_t nbs = 1u << CAP_NET_BIND_SERVICE, setpcap = 1u << CAP_SETPCAP;

	if (geteuid() != 0)
		wl_die("creds mode needs root");
	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) || prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0))
		wl_die("PR_CAPBSET_DROP: %s", strerror(errno));
	if (syscall(SYS_setgroups, 2, groups))
		wl_die("setgroups: %s", strerror(errno));
	if (syscall(SYS_setresgid, 1001, 1002, 1003))
		wl_die("setresgid: %s", strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0))
		wl_die("PR_SET_KEEPCAPS: %s", strerror(errno));
	if (syscall(SYS_setresuid, 1000, 1001, 1002))
		wl_die("setresuid: %s", strerror(errno));
	if (capset_self(nbs | setpcap, nbs | setpcap, nbs))
		wl_die("capset 1: %s", strerror(errno));
	if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP, 0, 0, 0))
		wl_die("PR_SET_SECUREBITS: %s", strerror(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
		wl_die("PR_CAP_AMBIENT_RAISE: %s", strerror(errno));
	if (capset_self(nbs, nbs, nbs))
		wl_die("capset 2: %s", strerror(errno));
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		wl_die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	/* the uid change cleared it; without it /proc/self/{environ,auxv,...}
	 * belong to root and are unreadable for us */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		wl_die("PR_SET_DUMPABLE: %s", strerror(errno));
}

static void *worker(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	get_creds(&creds_before[idx]);
	wl_thread_started(idx);
	wl_wait_stop();
	wl_check_ids(idx);
	if (wl_corrupt && creds_mode)
		prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	compare_creds(idx);
	return NULL;
}

/*
 * Rewrites the saved auxv with PR_SET_MM_MAP (which, unlike the single
 * PR_SET_MM_* ops, does not need CAP_SYS_RESOURCE).
 */
static void corrupt_auxv(void)
{
	static uint64_t aux[512];
	static char stat[4096];
	unsigned long f[64] = {0};
	struct prctl_mm_map m;
	ssize_t n = wl_read_file("/proc/self/auxv", (char *)aux, sizeof(aux));
	char *p;
	int i = 0;

	if (n <= 16 || wl_read_file("/proc/self/stat", stat, sizeof(stat)) <= 0 || !(p = strrchr(stat, ')')))
		return;
	/* field 3 (state) follows ')' */
	for (p = strtok(p + 2, " "), i = 3; p && i < 64; p = strtok(NULL, " "), i++)
		f[i] = strtoul(p, NULL, 10);
	memset(&m, 0, sizeof(m));
	m.start_code = f[26];
	m.end_code = f[27];
	m.start_stack = f[28];
	m.start_data = f[45];
	m.end_data = f[46];
	m.start_brk = f[47];
	m.brk = (unsigned long)sbrk(0);
	m.arg_start = f[48];
	m.arg_end = f[49];
	m.env_start = f[50];
	m.env_end = f[51];
	aux[1] ^= 1; /* value of the first entry */
	m.auxv = (__u64 *)aux;
	m.auxv_size = (unsigned)n;
	m.exe_fd = -1;
	if (prctl(PR_SET_MM, PR_SET_MM_MAP, &m, sizeof(m), 0))
		wl_info("corrupt: PR_SET_MM_MAP: %s", strerror(errno));
}

static void corrupt(void)
{
	struct rlimit r;
	umask(022);
	personality(pers_before & ~(unsigned long)ADDR_NO_RANDOMIZE);
	if (chdir("..")) {
	}
	prctl(PR_SET_NAME, "corrupted");
	getrlimit(RLIMIT_NOFILE, &r);
	r.rlim_cur--;
	setrlimit(RLIMIT_NOFILE, &r);
	saved_argv[0][0] ^= 1;       /* /proc/self/cmdline */
	if (environ && environ[0])
		environ[0][0] ^= 1;  /* /proc/self/environ */
	if (creds_mode) {
		struct __user_cap_data_struct d[2];
		capget_self(d);
		capset_self(0, d[0].permitted, d[0].inheritable);
		prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
	} else {
		corrupt_auxv();
		prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	}
}

int main(int argc, char **argv)
{
	pthread_t th[WL_MAX_THREADS];
	char buf[BUFSZ];
	ssize_t n;

	wl_init(argc, argv);
	saved_argv = argv;
	if (wl_read_file("/proc/sys/kernel/cap_last_cap", buf, sizeof(buf)) > 0)
		cap_last = atoi(buf);
	if (strcmp(wl_mode, "creds") == 0)
		creds_mode = 1;
	else if (wl_mode[0])
		wl_die("unknown mode '%s' (creds)", wl_mode);

	for (size_t i = 0; i < sizeof(lowered) / sizeof(lowered[0]); i++) {
		struct rlimit r;
		getrlimit(lowered[i].res, &r);
		/* only lower: root may lack CAP_SYS_RESOURCE */
		if (lowered[i].hard != RLIM_SAVED_MAX && lowered[i].hard < r.rlim_max)
			r.rlim_max = lowered[i].hard;
		if (lowered[i].soft < r.rlim_cur)
			r.rlim_cur = lowered[i].soft;
		if (r.rlim_cur > r.rlim_max)
			r.rlim_cur = r.rlim_max;
		if (setrlimit(lowered[i].res, &r))
			wl_die("setrlimit(%s): %s", lowered[i].name, strerror(errno));
	}
	{
		struct rlimit r;
		getrlimit(RLIMIT_SIGPENDING, &r);
		if (r.rlim_cur > 1 && r.rlim_cur != RLIM_INFINITY) {
			r.rlim_cur--;
			setrlimit(RLIMIT_SIGPENDING, &r);
		}
	}
	umask(027);
	personality(personality(0xffffffff) | ADDR_NO_RANDOMIZE);
	if (mkdir("subdir", 0755) && errno != EEXIST)
		wl_die("mkdir: %s", strerror(errno));
	if (chdir("subdir"))
		wl_die("chdir: %s", strerror(errno));
	if (prctl(PR_SET_NAME, "cryo-attrs"))
		wl_die("PR_SET_NAME: %s", strerror(errno));
	if (creds_mode)
		switch_creds();

	for (int i = 0; i < RLIM_NLIMITS; i++)
		getrlimit(i, &rl_before[i]);
	um_before = read_umask();
	if (um_before != 027)
		wl_die("umask is %o, want 027", um_before);
	pers_before = (unsigned long)personality(0xffffffff);
	if (!getcwd(cwd_before, sizeof(cwd_before)))
		wl_die("getcwd: %s", strerror(errno));
	readlink0("/proc/self/exe", exe_before, sizeof(exe_before));
	readlink0("/proc/self/root", root_before, sizeof(root_before));
	cmdline_len = wl_read_file("/proc/self/cmdline", cmdline_before, sizeof(cmdline_before));
	environ_len = wl_read_file("/proc/self/environ", environ_before, sizeof(environ_before));
	auxv_len = wl_read_file("/proc/self/auxv", auxv_before, sizeof(auxv_before));
	wl_read_file("/proc/self/comm", comm_before, sizeof(comm_before));
	comm_before[strcspn(comm_before, "\n")] = 0;
	if (cmdline_len <= 0 || environ_len <= 0 || auxv_len <= 0 || !exe_before[0])
		wl_die("cannot read /proc/self files");
	sid_before = getsid(0);
	pgid_before = getpgid(0);
	dumpable_before = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	get_creds(&creds_before[0]);

	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt)
		corrupt();
	wl_check_ids(0);
	for (int i = 0; i < RLIM_NLIMITS; i++) {
		struct rlimit r;
		getrlimit(i, &r);
		CHECK(r.rlim_cur == rl_before[i].rlim_cur && r.rlim_max == rl_before[i].rlim_max,
		      "rlimit %d: %lu/%lu, want %lu/%lu", i, (unsigned long)r.rlim_cur,
		      (unsigned long)r.rlim_max, (unsigned long)rl_before[i].rlim_cur,
		      (unsigned long)rl_before[i].rlim_max);
	}
	{
		unsigned um = read_umask();
		CHECK(um == um_before, "umask = %03o, want %03o", um, um_before);
	}
	{
		unsigned long p = (unsigned long)personality(0xffffffff);
		CHECK(p == pers_before, "personality = %#lx, want %#lx", p, pers_before);
	}
	if (!getcwd(buf, sizeof(buf)))
		snprintf(buf, sizeof(buf), "(getcwd: %s)", strerror(errno));
	CHECK(strcmp(buf, cwd_before) == 0, "cwd = %s, want %s", buf, cwd_before);
	readlink0("/proc/self/exe", buf, sizeof(buf));
	CHECK(strcmp(buf, exe_before) == 0, "/proc/self/exe = %s, want %s", buf, exe_before);
	readlink0("/proc/self/root", buf, sizeof(buf));
	CHECK(strcmp(buf, root_before) == 0, "/proc/self/root = %s, want %s", buf, root_before);
	n = wl_read_file("/proc/self/cmdline", buf, sizeof(buf));
	CHECK(n == cmdline_len && memcmp(buf, cmdline_before, (size_t)n) == 0,
	      "/proc/self/cmdline differs (%zd bytes, want %zd)", n, cmdline_len);
	n = wl_read_file("/proc/self/environ", buf, sizeof(buf));
	CHECK(n == environ_len && memcmp(buf, environ_before, (size_t)n) == 0,
	      "/proc/self/environ differs (%zd bytes, want %zd)", n, environ_len);
	n = wl_read_file("/proc/self/auxv", buf, sizeof(buf));
	CHECK(n == auxv_len && memcmp(buf, auxv_before, (size_t)n) == 0,
	      "/proc/self/auxv differs (%zd bytes, want %zd)", n, auxv_len);
	wl_read_file("/proc/self/comm", buf, sizeof(buf));
	buf[strcspn(buf, "\n")] = 0;
	CHECK(strcmp(buf, comm_before) == 0, "comm = %s, want %s", buf, comm_before);
	CHECK(getsid(0) == sid_before, "session id = %d, want %d", getsid(0), sid_before);
	CHECK(getpgid(0) == pgid_before, "process group = %d, want %d", getpgid(0), pgid_before);
	{
		int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		CHECK(d == dumpable_before, "dumpable = %d, want %d", d, dumpable_before);
	}
	compare_creds(0);

	wl_join(th, wl_nthreads);
	return wl_finish();
}
