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
 */
#include "wl.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>

#define NOFILE 64
#define REGION (256 << 10)

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
	struct rlimit want;
	int res;
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
	} else {
		wl_die("mode nofile or as");
	}
	wl_ready();
	wl_wait_stop();

	struct rlimit got;
	CHECK(getrlimit(res, &got) == 0, "getrlimit: %s", strerror(errno));
	CHECK(got.rlim_cur == want.rlim_cur && got.rlim_max == want.rlim_max,
	      "limit %d is %llu:%llu, want %llu:%llu", res, (unsigned long long)got.rlim_cur,
	      (unsigned long long)got.rlim_max, (unsigned long long)want.rlim_cur, (unsigned long long)want.rlim_max);
	if (res == RLIMIT_NOFILE) {
		int fd = open("/dev/null", O_RDONLY);
		CHECK(fd < 0 && errno == EMFILE, "one more descriptor could be opened (%d)", fd);
		for (int i = 0; i < NOFILE; i++)
			CHECK(fcntl(i, F_GETFD) >= 0, "descriptor %d is closed", i);
	} else {
		void *m = mmap(NULL, 1 << 20, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		CHECK(m == MAP_FAILED && errno == ENOMEM, "a 1 MiB mapping fits under RLIMIT_AS");
	}
	long bad = wl_verify(region, REGION, 7);
	CHECK(bad < 0, "region differs at byte %ld", bad);
	if (atomic_load(&wl_fails))
		return 1;
	printf("PASS\n");
	return 0;
}
