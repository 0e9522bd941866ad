/*
 * sandbox_root: what a browser sandbox leaves below the tree's root,
 * across a checkpoint (Firefox's content processes).
 *
 * The root forks a child C, which:
 *   - maps an anonymous shared area (MAP_SHARED|MAP_ANONYMOUS) and writes
 *     a pattern in it: C is the area's maker, not the root;
 *   - makes a memfd with MFD_NOEXEC_SEAL, maps it writable, writes a
 *     pattern, then seals it with F_SEAL_FUTURE_WRITE|SHRINK|GROW|SEAL
 *     (Firefox's frozen shared memory): its writable mapping stays, new
 *     writable mappings are refused;
 *   - unshares its IPC namespace and makes a System V shared memory
 *     segment there (key 0x43525953) with a pattern;
 *   - forks a helper H and chroots into /proc/H/fdinfo, goes to /, then
 *     kills and reaps H: its root is a dead /proc directory where no path
 *     leads anywhere (Firefox's SandboxFork chroot).
 *
 * After SIGTERM (sent to the root, passed on to C), C checks that the
 * shared area, the memfd's pattern and seals, and its writable mapping are
 * back, that a new writable mapping of the memfd is still refused and a
 * read-only one works, that the segment is in its IPC namespace with its
 * pattern, and that no path opens from its root ("/" and "/etc/passwd"
 * fail) while its own /proc is out of reach too.
 */
#include "wl.h"
#include <sched.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>

#define SHM_KEY 0x43525953
#define AREA (64 * 1024)

static volatile sig_atomic_t child_stop;
static void child_term(int sig)
{
	(void)sig;
	child_stop = 1;
}

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

static int same(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

static int child(int ready)
{
	signal(SIGTERM, child_term);
	unsigned char *anon = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (anon == MAP_FAILED)
		wl_die("mmap shared: %s", strerror(errno));
	fill(anon, AREA, 1);
	int mfd = memfd_create("cryo-frozen", MFD_CLOEXEC | 0x8 /* MFD_NOEXEC_SEAL */);
	if (mfd < 0)
		wl_skip("memfd_create(MFD_NOEXEC_SEAL): %s", strerror(errno));
	if (ftruncate(mfd, AREA) < 0)
		wl_die("ftruncate: %s", strerror(errno));
	unsigned char *rw = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (rw == MAP_FAILED)
		wl_die("mmap memfd: %s", strerror(errno));
	fill(rw, AREA, 2);
	int want = F_SEAL_FUTURE_WRITE | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
	if (fcntl(mfd, F_ADD_SEALS, want) < 0)
		wl_die("F_ADD_SEALS: %s", strerror(errno));
	int seals = fcntl(mfd, F_GET_SEALS);
	if (unshare(CLONE_NEWIPC) < 0)
		wl_die("unshare(CLONE_NEWIPC): %s", strerror(errno));
	int shmid = shmget(SHM_KEY, AREA, IPC_CREAT | 0600);
	unsigned char *seg = shmid < 0 ? MAP_FAILED : shmat(shmid, NULL, 0);
	if (seg == MAP_FAILED)
		wl_die("shmget/shmat: %s", strerror(errno));
	fill(seg, AREA, 3);
	shmdt(seg);
	pid_t h = fork();
	if (h < 0)
		wl_die("fork helper: %s", strerror(errno));
	if (h == 0) {
		for (;;)
			pause();
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", h);
	if (chroot(path) < 0 || chdir("/") < 0)
		wl_die("chroot %s: %s", path, strerror(errno));
	kill(h, SIGKILL);
	waitpid(h, NULL, 0);
	CHECK(open("/", O_RDONLY) < 0, "C: / opens from the dead root before the dump");
	if (write(ready, "r", 1) != 1)
		wl_die("ready: %s", strerror(errno));
	close(ready);

	while (!child_stop)
		pause();

	CHECK(same(anon, AREA, 1), "C: the anonymous shared area lost its pattern");
	CHECK(same(rw, AREA, 2), "C: the memfd lost its pattern");
	CHECK(fcntl(mfd, F_GET_SEALS) == seals, "C: memfd seals %#x, were %#x", fcntl(mfd, F_GET_SEALS), seals);
	rw[0] = 99; /* the writable mapping made before the seal is still writable */
	void *again = mmap(NULL, AREA, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	CHECK(again == MAP_FAILED && errno == EPERM, "C: a new writable mapping of the sealed memfd: %p (%s), want EPERM", again,
	      strerror(errno));
	unsigned char *ro = mmap(NULL, AREA, PROT_READ, MAP_SHARED, mfd, 0);
	CHECK(ro != MAP_FAILED && ro[0] == 99, "C: a read-only mapping of the sealed memfd does not show the write");
	shmid = shmget(SHM_KEY, 0, 0);
	seg = shmid < 0 ? MAP_FAILED : shmat(shmid, NULL, SHM_RDONLY);
	CHECK(seg != MAP_FAILED && same(seg, AREA, 3), "C: the System V segment of its IPC namespace is not back (%s)", strerror(errno));
	int fd = open("/", O_RDONLY);
	CHECK(fd < 0, "C: / opens from its root: the dead /proc root is not back");
	CHECK(open("/etc/passwd", O_RDONLY) < 0, "C: /etc/passwd opens from its root");
	CHECK(open("/proc/self/status", O_RDONLY) < 0, "C: /proc/self/status opens from its root");
	return atomic_load(&wl_fails) ? 1 : 0;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		wl_die("pipe: %s", strerror(errno));
	pid_t c = fork();
	if (c < 0)
		wl_die("fork: %s", strerror(errno));
	if (c == 0) {
		close(p[0]);
		_exit(child(p[1]));
	}
	close(p[1]);
	char r;
	if (read(p[0], &r, 1) != 1)
		wl_die("child setup failed");
	close(p[0]);
	wl_info("child pid=%d", c);
	printf("READY pid=%d tids=%d\n", wl_pid, wl_pid);
	fflush(stdout);
	while (!wl_stop)
		pause();
	kill(c, SIGTERM);
	int st;
	if (waitpid(c, &st, 0) != c || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		wl_fail("child: status %#x", st);
	return wl_finish();
}
