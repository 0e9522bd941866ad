/*
 * memkinds: memory kinds and process states of issue 11's "not checked
 * yet" rows, one per mode.
 *
 * "mlock": a 1 MiB private region locked with mlock, with a pattern.
 *   After SIGTERM: the contents, and that the region is still locked
 *   (VmLck in /proc/self/status counts it).
 *
 * "aio": an AIO context (io_setup), whose ring is mapped in the process.
 *   cryo refuses it; after SIGTERM the context must still take io_destroy.
 *
 * "traced": the process forks a child and traces it (PTRACE_SEIZE); cryo
 *   cannot seize a traced process and refuses the tree. After SIGTERM the
 *   process checks the child is still its tracee (TracerPid), then kills
 *   and reaps it.
 */
#include "wl.h"
#include <linux/aio_abi.h>
#include <sys/ptrace.h>
#include <sys/wait.h>

#define LOCKED_LEN (1 << 20)

static long vmlck_kb(void)
{
	char buf[4096], *p;
	if (wl_read_file("/proc/self/status", buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "VmLck:")))
		return -1;
	return strtol(p + 6, NULL, 10);
}

static long tracer_of(pid_t pid)
{
	char path[64], buf[4096], *p;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (wl_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "TracerPid:")))
		return -1;
	return strtol(p + 10, NULL, 10);
}

int main(int argc, char **argv)
{
	uint8_t *region = NULL;
	aio_context_t ctx = 0;
	pid_t child = 0;

	wl_init(argc, argv);
	if (strcmp(wl_mode, "mlock") == 0) {
		region = mmap(NULL, LOCKED_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (region == MAP_FAILED)
			wl_die("mmap: %s", strerror(errno));
		wl_fill(region, LOCKED_LEN, 7);
		if (mlock(region, LOCKED_LEN))
			wl_die("mlock: %s", strerror(errno));
		if (vmlck_kb() < LOCKED_LEN / 1024)
			wl_die("VmLck %ld kB after mlock of %d kB", vmlck_kb(), LOCKED_LEN / 1024);
	} else if (strcmp(wl_mode, "aio") == 0) {
		if (syscall(SYS_io_setup, 8, &ctx))
			wl_die("io_setup: %s", strerror(errno));
	} else if (strcmp(wl_mode, "traced") == 0) {
		child = fork();
		if (child < 0)
			wl_die("fork: %s", strerror(errno));
		if (child == 0) {
			for (;;)
				pause();
		}
		if (ptrace(PTRACE_SEIZE, child, 0, 0))
			wl_die("PTRACE_SEIZE %d: %s", child, strerror(errno));
	} else {
		wl_die("mode must be mlock, aio or traced, not '%s'", wl_mode);
	}
	wl_ready();
	wl_wait_stop();
	if (region) {
		long bad;
		if (wl_corrupt)
			munlock(region, LOCKED_LEN);
		bad = wl_verify(region, LOCKED_LEN, 7);
		CHECK(bad < 0, "locked region: word %ld differs", bad);
		CHECK(vmlck_kb() >= LOCKED_LEN / 1024, "VmLck %ld kB, want at least %d kB (the region is no longer locked)",
		      vmlck_kb(), LOCKED_LEN / 1024);
	}
	if (ctx)
		CHECK(syscall(SYS_io_destroy, ctx) == 0, "io_destroy: %s", strerror(errno));
	if (child) {
		int st;
		CHECK(tracer_of(child) == getpid(), "child %d: TracerPid %ld, want %d", child, tracer_of(child), getpid());
		kill(child, SIGKILL);
		CHECK(waitpid(child, &st, __WALL) == child, "waitpid %d: %s", child, strerror(errno));
	}
	return wl_finish();
}
