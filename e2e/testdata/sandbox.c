/*
 * sandbox: namespaces made the way browser sandboxes and bubblewrap make
 * them, below the tree's user namespace and by a process that is not the
 * tree's root. Started by the test as a normal user under
 * `unshare -c -i` (or -Urpf), see e2e/nested_test.go.
 *
 * usage: sandbox KIND...   KIND: ipc uts pid mnt
 *
 * For each KIND the root forks a helper, which clone()s a sandboxed child
 * with CLONE_NEWUSER and the kind's flag (as Firefox and Chromium do), then
 * writes the child's maps from its own namespace (its uid and gid mapped to
 * themselves, setgroups "deny"). The child, with every capability in its
 * new user namespace, sets up what only its namespace shows:
 *   ipc  a SysV shared memory segment (key 0x5bx0) with a pattern, and a
 *        semaphore set with values; the root checks it cannot see the key.
 *   uts  host and domain names; the root checks its own are other.
 *   pid  it is pid 1 of its pid namespace; it forks a child (pid 2) which
 *        checks getpid() == 2 and getppid() == 1; pid 1 checks /proc
 *        (mounted by it in a mount namespace of its own) lists both.
 *   mnt  makes / private, mounts a tmpfs on ./sbx-mnt (as bubblewrap does
 *        for its new root) holding a file, binds ./sbx-src on
 *        sbx-mnt/bind and remounts it read-only, and keeps the tmpfs file
 *        open; the root checks ./sbx-mnt is empty in its namespace.
 * Everything is recorded before READY and checked again after SIGTERM,
 * which the root passes down; every process checks itself and the root
 * prints PASS only if all did (exit status 0 of each child).
 */
#include "wl.h"

#include <sched.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <sys/wait.h>

#define MAXK 8
#define SHM_SIZE 65536
#define SBX_KEY 0x5b10

static pid_t helpers[MAXK];
static int nhelpers;
static pid_t child;    /* a helper's sandboxed child, a pid-1's child */
static const char *me; /* for messages */
static int go_w = -1;  /* the helper's end of the go pipe */

static void on_term(int sig)
{
	(void)sig;
	wl_stop = 1;
}

static void xwrite(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		wl_die("%s: %s: %s", me, path, strerror(errno));
	close(fd);
}

/* wait_stop sleeps until SIGTERM. */
static void wait_stop(void)
{
	while (!wl_stop)
		wl_msleep(20);
}

/* reap passes SIGTERM to pid and returns 0 if it exited 0. */
static int reap(pid_t pid)
{
	int status;
	kill(pid, SIGTERM);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* ---- ipc ---- */
static int ipc_shm, ipc_sem;
static void ipc_setup(void)
{
	unsigned short vals[3] = {7, 11, 13};
	void *p;
	ipc_shm = shmget(SBX_KEY, SHM_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	if (ipc_shm < 0)
		wl_die("%s: shmget: %s", me, strerror(errno));
	p = shmat(ipc_shm, NULL, 0);
	if (p == (void *)-1)
		wl_die("%s: shmat: %s", me, strerror(errno));
	wl_fill(p, SHM_SIZE, 51);
	shmdt(p);
	ipc_sem = semget(SBX_KEY + 1, 3, IPC_CREAT | IPC_EXCL | 0600);
	if (ipc_sem < 0 || semctl(ipc_sem, 0, SETALL, vals))
		wl_die("%s: semget: %s", me, strerror(errno));
}
static void ipc_check(void)
{
	unsigned short vals[3] = {0};
	void *p;
	int id = shmget(SBX_KEY, 0, 0);
	CHECK(id == ipc_shm, "%s: shm key %#x is id %d, want %d (%s)", me, SBX_KEY, id, ipc_shm, strerror(errno));
	p = shmat(ipc_shm, NULL, SHM_RDONLY);
	if (p == (void *)-1) {
		wl_fail("%s: shmat: %s", me, strerror(errno));
	} else {
		CHECK(wl_verify(p, SHM_SIZE, 51) < 0, "%s: shm contents differ", me);
		shmdt(p);
	}
	CHECK(semctl(ipc_sem, 0, GETALL, vals) == 0 && vals[0] == 7 && vals[1] == 11 && vals[2] == 13,
	      "%s: semaphores %u %u %u, want 7 11 13", me, vals[0], vals[1], vals[2]);
}

/* ---- uts ---- */
static void uts_check(void)
{
	struct utsname u;
	uname(&u);
	CHECK(!strcmp(u.nodename, "sbx-uts") && !strcmp(u.domainname, "sbx.example"), "%s: names %s %s, want sbx-uts sbx.example",
	      me, u.nodename, u.domainname);
}

/* ---- mnt ---- */
static int mnt_fd = -1;
static struct stat mnt_st;
static void mnt_setup(void)
{
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		wl_die("%s: make / private: %s", me, strerror(errno));
	if (mount("tmpfs", "sbx-mnt", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755"))
		wl_die("%s: mount tmpfs: %s", me, strerror(errno));
	mnt_fd = open("sbx-mnt/file", O_RDWR | O_CREAT | O_CLOEXEC, 0640);
	if (mnt_fd < 0 || write(mnt_fd, "sandboxed\n", 10) != 10)
		wl_die("%s: sbx-mnt/file: %s", me, strerror(errno));
	if (mkdir("sbx-mnt/bind", 0755) || mount("sbx-src", "sbx-mnt/bind", NULL, MS_BIND, NULL) ||
	    mount(NULL, "sbx-mnt/bind", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL))
		wl_die("%s: bind sbx-src: %s", me, strerror(errno));
}
static void mnt_check(void)
{
	char buf[64];
	struct stat sb;
	struct statfs sf;
	CHECK(statfs("sbx-mnt", &sf) == 0 && sf.f_type == 0x01021994, "%s: sbx-mnt is not a tmpfs", me);
	CHECK(wl_read_file("sbx-mnt/file", buf, sizeof(buf)) == 10 && !strcmp(buf, "sandboxed\n"), "%s: sbx-mnt/file: %s", me, buf);
	/* the tmpfs is a new one after a restore: compare with it as it is now */
	CHECK(stat("sbx-mnt/file", &mnt_st) == 0 && fstat(mnt_fd, &sb) == 0 && sb.st_ino == mnt_st.st_ino &&
	      sb.st_dev == mnt_st.st_dev, "%s: the open file is not sbx-mnt/file", me);
	CHECK(pread(mnt_fd, buf, 10, 0) == 10 && !memcmp(buf, "sandboxed\n", 10), "%s: the open file's bytes", me);
	CHECK(wl_read_file("sbx-mnt/bind/data", buf, sizeof(buf)) > 0 && !strcmp(buf, "source\n"), "%s: bind/data", me);
	CHECK(open("sbx-mnt/bind/new", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0 && errno == EROFS,
	      "%s: the bind mount is writable", me);
}

/* ---- pid ---- */
static void pid_child(void)
{
	me = "pid-ns child";
	if (getpid() != 2 || getppid() != 1)
		wl_die("%s: pid %d ppid %d, want 2 1", me, getpid(), getppid());
	signal(SIGTERM, on_term);
	write(1, "", 0);
	wait_stop();
	CHECK(getpid() == 2 && getppid() == 1, "%s: pid %d ppid %d, want 2 1", me, getpid(), getppid());
	exit(wl_fails ? 1 : 0);
}
static void pid_check(void)
{
	char buf[64];
	CHECK(getpid() == 1, "%s: pid %d, want 1", me, getpid());
	CHECK(kill(2, 0) == 0, "%s: no pid 2: %s", me, strerror(errno));
	CHECK(wl_read_file("/proc/2/stat", buf, sizeof(buf)) > 0 && !strncmp(buf, "2 (", 3), "%s: /proc/2 is not the child", me);
	CHECK(wl_read_file("/proc/self/stat", buf, sizeof(buf)) > 0 && !strncmp(buf, "1 (", 3), "%s: /proc/self is not pid 1", me);
}

/* sandboxed: the child of a helper, in its new namespaces. */
static int sandboxed(void *arg)
{
	const char *kind = arg;
	char c;
	static char name[32];
	snprintf(name, sizeof(name), "sandboxed %s", kind);
	me = name;
	/* wait for the helper to write the maps (it closes the pipe) */
	close(go_w);
	while (read(3, &c, 1) < 0 && errno == EINTR)
		;
	close(3);
	signal(SIGTERM, on_term);
	if (!strcmp(kind, "ipc")) {
		ipc_setup();
	} else if (!strcmp(kind, "uts")) {
		if (sethostname("sbx-uts", 7) || setdomainname("sbx.example", 11))
			wl_die("%s: sethostname: %s", me, strerror(errno));
	} else if (!strcmp(kind, "mnt")) {
		mnt_setup();
	} else if (!strcmp(kind, "pid")) {
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
			wl_die("%s: mount proc: %s", me, strerror(errno));
		child = fork();
		if (child < 0)
			wl_die("%s: fork: %s", me, strerror(errno));
		if (child == 0)
			pid_child();
		if (child != 2)
			wl_die("%s: child is pid %d, want 2", me, child);
	}
	/* tell the root we are set up: one byte on fd 4 */
	if (write(4, kind, 1) != 1)
		wl_die("%s: ready pipe: %s", me, strerror(errno));
	close(4);
	wait_stop();
	if (!strcmp(kind, "ipc"))
		ipc_check();
	else if (!strcmp(kind, "uts"))
		uts_check();
	else if (!strcmp(kind, "mnt"))
		mnt_check();
	else if (!strcmp(kind, "pid")) {
		pid_check();
		if (reap(child))
			wl_fail("%s: its child failed", me);
	}
	CHECK(getuid() == (uid_t)atoi(getenv("SBX_UID")), "%s: uid %d", me, getuid());
	return wl_fails ? 1 : 0;
}

static int flags_of(const char *kind)
{
	if (!strcmp(kind, "ipc"))
		return CLONE_NEWIPC;
	if (!strcmp(kind, "uts"))
		return CLONE_NEWUTS;
	if (!strcmp(kind, "pid"))
		return CLONE_NEWPID | CLONE_NEWNS;
	if (!strcmp(kind, "mnt"))
		return CLONE_NEWNS;
	wl_die("unknown kind %s", kind);
	return 0;
}

static char stack[MAXK][256 * 1024];

/* helper: clones the sandboxed child and writes its maps. */
static void helper(int k, const char *kind, int ready_fd)
{
	int go[2];
	char path[64], map[64];
	me = "helper";
	signal(SIGTERM, on_term);
	/* the child finds the go pipe on fd 3, the ready pipe on fd 4 */
	if (pipe(go))
		wl_die("pipe: %s", strerror(errno));
	if (dup2(go[0], 10) < 0 || dup2(ready_fd, 11) < 0 || dup2(10, 3) < 0 || dup2(11, 4) < 0)
		wl_die("dup2: %s", strerror(errno));
	close(10);
	close(11);
	if (go[0] != 3 && go[0] != 4)
		close(go[0]);
	if (ready_fd != 3 && ready_fd != 4)
		close(ready_fd);
	if (go[1] == 3 || go[1] == 4)
		wl_die("go pipe on fd %d", go[1]);
	go_w = go[1];
	child = clone(sandboxed, stack[k] + sizeof(stack[k]), CLONE_NEWUSER | flags_of(kind) | SIGCHLD, (void *)kind);
	if (child < 0)
		wl_die("helper: clone %s: %s", kind, strerror(errno));
	close(3);
	close(4);
	snprintf(map, sizeof(map), "%d %d 1\n", getuid(), getuid());
	snprintf(path, sizeof(path), "/proc/%d/uid_map", child);
	xwrite(path, map);
	snprintf(path, sizeof(path), "/proc/%d/setgroups", child);
	xwrite(path, "deny");
	snprintf(map, sizeof(map), "%d %d 1\n", getgid(), getgid());
	snprintf(path, sizeof(path), "/proc/%d/gid_map", child);
	xwrite(path, map);
	close(go[1]);
	wait_stop();
	exit(reap(child) ? 1 : 0);
}

int main(int argc, char **argv)
{
	int ready[2];
	char uid[16], buf[64];
	struct utsname u;
	wl_prog = "sandbox";
	setvbuf(stdout, wl_stdout_buf, _IOLBF, sizeof(wl_stdout_buf));
	if (argc < 2 || argc - 1 > MAXK)
		wl_die("usage: sandbox KIND...");
	me = "root";
	signal(SIGTERM, on_term);
	snprintf(uid, sizeof(uid), "%d", getuid());
	setenv("SBX_UID", uid, 1);
	/* the mnt sandbox's mount point and bind source */
	if ((mkdir("sbx-mnt", 0755) && errno != EEXIST) || (mkdir("sbx-src", 0755) && errno != EEXIST))
		wl_die("mkdir: %s", strerror(errno));
	{
		int fd = open("sbx-src/data", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || write(fd, "source\n", 7) != 7)
			wl_die("sbx-src/data: %s", strerror(errno));
		close(fd);
	}
	if (pipe(ready))
		wl_die("pipe: %s", strerror(errno));
	for (int i = 1; i < argc; i++) {
		pid_t h;
		fflush(stdout);
		h = fork();
		if (h < 0)
			wl_die("fork: %s", strerror(errno));
		if (h == 0) {
			close(ready[0]);
			helper(i - 1, argv[i], ready[1]);
		}
		helpers[nhelpers++] = h;
	}
	close(ready[1]);
	for (int i = 1; i < argc; i++)
		if (read(ready[0], buf, 1) != 1)
			wl_die("a sandboxed child failed to start");
	close(ready[0]);
	printf("READY pid=%d tids=%d\n", getpid(), getpid());
	fflush(stdout);
	wait_stop();
	/* what the sandboxes made must not show here */
	CHECK(shmget(SBX_KEY, 0, 0) < 0 && errno == ENOENT, "root: sees the sandbox's shm key");
	uname(&u);
	CHECK(strcmp(u.nodename, "sbx-uts") != 0, "root: host name is the sandbox's");
	CHECK(wl_read_file("sbx-mnt/file", buf, sizeof(buf)) < 0, "root: sees the sandbox's tmpfs");
	for (int i = 0; i < nhelpers; i++)
		if (reap(helpers[i]))
			wl_fail("root: sandbox %s failed", argv[i + 1]);
	if (wl_fails)
		return 1;
	printf("PASS\n");
	return 0;
}
