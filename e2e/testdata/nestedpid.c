/*
 * nestedpid: a pid namespace made below the tree's root, with threads and
 * grandchildren inside, as a sandbox's zygote makes one. Started by the
 * test as a normal user under `unshare -c -i`, see e2e/pidns_test.go.
 *
 * usage: nestedpid
 *
 * The root forks a helper, which clone()s S with CLONE_NEWUSER|CLONE_NEWPID
 * and writes its maps (its uid and gid mapped to themselves, setgroups
 * "deny"). In its pid namespace S is pid 1 and starts a thread (tid 2),
 * then forks C (pid 3), which starts a thread (tid 4) and forks D (pid 5).
 * Every process and thread records its ids before READY and checks them
 * again after SIGTERM, which the root passes down: getpid, gettid and
 * getppid as its own pid namespace sees them. The root prints PASS only if
 * every process exited 0.
 */
#include "wl.h"

#include <sched.h>
#include <sys/wait.h>

static const char *me = "root";
static pid_t child;
static int ready_w = -1; /* a byte per process of the namespace: set up */

static void on_term(int sig)
{
	(void)sig;
	wl_stop = 1;
}

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

/* A thread: it blocks on its pipe until the process is told to stop, then
 * checks its id is still want. */
struct thr {
	pthread_t th;
	pid_t want;
	int pipe[2];
	int ok;
};

static void *thread_main(void *arg)
{
	struct thr *t = arg;
	char c;
	t->ok = wl_gettid() == t->want;
	while (read(t->pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	t->ok = t->ok && wl_gettid() == t->want;
	return NULL;
}

static void start_thread(struct thr *t, pid_t want)
{
	t->want = want;
	if (pipe(t->pipe) || pthread_create(&t->th, NULL, thread_main, t))
		wl_die("%s: thread: %s", me, strerror(errno));
}

static void stop_thread(struct thr *t)
{
	if (write(t->pipe[1], "x", 1) != 1)
		wl_fail("%s: thread pipe: %s", me, strerror(errno));
	pthread_join(t->th, NULL);
	CHECK(t->ok, "%s: its thread is not tid %d", me, t->want);
}

/* member runs a process of the nested namespace, at pid with parent ppid
 * and a thread at tid; run, if set, is what the child it forks runs. */
static void member(const char *name, pid_t pid, pid_t ppid, pid_t tid, void (*run)(void))
{
	struct thr t;
	char c = 'r';
	me = name;
	signal(SIGTERM, on_term);
	CHECK(getpid() == pid && getppid() == ppid, "%s: pid %d ppid %d, want %d %d", me, getpid(), getppid(), pid, ppid);
	start_thread(&t, tid);
	child = 0;
	if (run) {
		child = fork();
		if (child < 0)
			wl_die("%s: fork: %s", me, strerror(errno));
		if (child == 0)
			run();
	}
	if (write(ready_w, &c, 1) != 1)
		wl_die("%s: ready pipe: %s", me, strerror(errno));
	wait_stop();
	CHECK(getpid() == pid && getppid() == ppid, "%s: pid %d ppid %d, want %d %d", me, getpid(), getppid(), pid, ppid);
	stop_thread(&t);
	if (child > 0 && reap(child))
		wl_fail("%s: its child failed", me);
	exit(wl_fails ? 1 : 0);
}

/* D: pid 5, C's child, single-threaded. */
static void run_d(void)
{
	char c = 'r';
	me = "D";
	signal(SIGTERM, on_term);
	CHECK(getpid() == 5 && getppid() == 3, "%s: pid %d ppid %d, want 5 3", me, getpid(), getppid());
	if (write(ready_w, &c, 1) != 1)
		wl_die("%s: ready pipe: %s", me, strerror(errno));
	wait_stop();
	CHECK(getpid() == 5 && getppid() == 3, "%s: pid %d ppid %d, want 5 3", me, getpid(), getppid());
	exit(wl_fails ? 1 : 0);
}

/* C: pid 3, S's child, with a thread (tid 4) and a child (D). */
static void run_c(void)
{
	member("C", 3, 1, 4, run_d);
}

static int go_r = -1, go_w = -1;
static char stack[256 * 1024];

static int sandboxed(void *arg)
{
	char c;
	(void)arg;
	/* wait for the helper to write the maps (it closes the pipe) */
	close(go_w);
	while (read(go_r, &c, 1) < 0 && errno == EINTR)
		;
	close(go_r);
	member("S", 1, 0, 2, run_c);
	return 0;
}

static void xwrite(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, s, strlen(s)) != (ssize_t)strlen(s))
		wl_die("%s: %s: %s", me, path, strerror(errno));
	close(fd);
}

static void helper(void)
{
	int go[2];
	char path[64], map[64];
	me = "helper";
	signal(SIGTERM, on_term);
	if (pipe(go))
		wl_die("pipe: %s", strerror(errno));
	go_r = go[0];
	go_w = go[1];
	child = clone(sandboxed, stack + sizeof(stack), CLONE_NEWUSER | CLONE_NEWPID | SIGCHLD, NULL);
	if (child < 0)
		wl_die("helper: clone: %s", strerror(errno));
	close(go[0]);
	snprintf(map, sizeof(map), "%d %d 1\n", getuid(), getuid());
	snprintf(path, sizeof(path), "/proc/%d/uid_map", child);
	xwrite(path, map);
	snprintf(path, sizeof(path), "/proc/%d/setgroups", child);
	xwrite(path, "deny");
	snprintf(map, sizeof(map), "%d %d 1\n", getgid(), getgid());
	snprintf(path, sizeof(path), "/proc/%d/gid_map", child);
	xwrite(path, map);
	close(go[1]);
	close(ready_w);
	wait_stop();
	exit(reap(child) ? 1 : 0);
}

int main(void)
{
	int ready[2];
	char buf[8];
	pid_t h;
	wl_prog = "nestedpid";
	setvbuf(stdout, wl_stdout_buf, _IOLBF, sizeof(wl_stdout_buf));
	signal(SIGTERM, on_term);
	if (pipe(ready))
		wl_die("pipe: %s", strerror(errno));
	ready_w = ready[1];
	fflush(stdout);
	h = fork();
	if (h < 0)
		wl_die("fork: %s", strerror(errno));
	if (h == 0) {
		close(ready[0]);
		helper();
	}
	close(ready[1]);
	/* S, C and D each say they are set up */
	for (int i = 0; i < 3; i++)
		if (read(ready[0], buf, 1) != 1)
			wl_die("a process of the nested pid namespace failed to start");
	close(ready[0]);
	printf("READY pid=%d tids=%d\n", getpid(), getpid());
	fflush(stdout);
	wait_stop();
	if (reap(h))
		wl_fail("root: the nested pid namespace failed");
	if (wl_fails)
		return 1;
	printf("PASS\n");
	return 0;
}
