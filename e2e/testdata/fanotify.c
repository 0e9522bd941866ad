/*
 * fanotify: a fanotify group and its marks survive checkpoint/restore.
 *
 * usage: fanotify [fs]
 *
 * The cwd (the test's temp dir) holds files "fan.txt", "quiet.txt",
 * "other.txt" and directory "fandir". F = fanotify_init(FAN_CLASS_NOTIF |
 * FAN_NONBLOCK, O_RDONLY) (no FD_CLOEXEC) has four marks:
 *   - an inode mark on fan.txt: FAN_MODIFY | FAN_CLOSE_WRITE;
 *   - an inode mark on directory fandir: FAN_MODIFY | FAN_EVENT_ON_CHILD;
 *   - a mount mark on the mount holding the cwd: FAN_CLOSE_WRITE;
 *   - an inode mark on quiet.txt with only an ignored mask, FAN_CLOSE_WRITE
 *     (FAN_MARK_IGNORED_SURV_MODIFY), which silences the mount mark for it.
 * The queue is drained before READY. After SIGTERM: F_GETFL has O_NONBLOCK,
 * F_GETFD no FD_CLOEXEC, the link is anon_inode:[fanotify], and the
 * "fanotify " lines of /proc/self/fdinfo/F (group flags, each mark's inode,
 * device, flags, masks and file handle, the mount's id) are identical
 * (sorted) to those before the dump. Then, the queue drained again (the
 * mount mark sees the whole file system):
 *   - appending to fan.txt gives FAN_MODIFY and FAN_CLOSE_WRITE on its inode;
 *   - writing fandir/child gives FAN_MODIFY on the child's inode (only the
 *     directory mark asks for FAN_MODIFY of other files);
 *   - writing quiet.txt, then other.txt, gives FAN_CLOSE_WRITE on other.txt
 *     (the mount mark) and nothing for quiet.txt before it (ignored mask).
 * Events are told apart by the inode of the descriptor each carries; events
 * of other files (other processes' writes on the same mount) are skipped.
 * Every wait is bounded (5 s).
 * Mode fs: the group also has a filesystem mark (FAN_MARK_FILESYSTEM, on the
 * cwd's file system, FAN_CLOSE_WRITE), which cryo refuses at dump; the
 * checks are the same, in the process that was never dumped.
 * WL_CORRUPT: the mark on fan.txt is removed after SIGTERM.
 */
#include "wl.h"
#include <sys/fanotify.h>

static int F = -1;
static char lines_before[4096];

static ino_t ino_of(const char *path)
{
	struct stat st;
	if (stat(path, &st))
		wl_die("stat %s: %s", path, strerror(errno));
	return st.st_ino;
}

static void write_file(const char *path, int flags)
{
	int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
	if (fd < 0 || write(fd, "x", 1) != 1)
		wl_die("write %s: %s", path, strerror(errno));
	close(fd);
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The "fanotify " lines of F's fdinfo, sorted, joined by " | ". */
static void fdinfo_lines(char *out, size_t size)
{
	char path[64], buf[8192], *lines[64], *save = NULL;
	int n = 0;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", F);
	if (wl_read_file(path, buf, sizeof(buf)) < 0)
		wl_die("%s: %s", path, strerror(errno));
	for (char *l = strtok_r(buf, "\n", &save); l && n < 64; l = strtok_r(NULL, "\n", &save))
		if (strncmp(l, "fanotify ", 9) == 0)
			lines[n++] = l;
	qsort(lines, n, sizeof(lines[0]), cmp_str);
	out[0] = 0;
	for (int i = 0; i < n; i++) {
		strncat(out, lines[i], size - strlen(out) - 1);
		strncat(out, " | ", size - strlen(out) - 1);
	}
}

/* Reads F's events until none is left (noise of the mount mark). */
static void drain(void)
{
	char buf[8192];
	for (;;) {
		ssize_t n = read(F, buf, sizeof(buf));
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0)
			wl_die("read of the fanotify fd: %s", n < 0 ? strerror(errno) : "EOF");
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n))
			if (m->fd >= 0)
				close(m->fd);
	}
}

/*
 * Reads events until those on inode want carry every bit of mask (within
 * 5 s) and returns the bits seen; *seen_bad is set when an event on inode
 * bad (0: none) came first.
 */
static unsigned long long await_events(ino_t want, unsigned long long mask, ino_t bad, int *seen_bad)
{
	unsigned long long got = 0;
	uint64_t deadline = wl_now_ns(CLOCK_MONOTONIC) + 5000000000ULL;
	char buf[8192];
	while ((got & mask) != mask && wl_now_ns(CLOCK_MONOTONIC) < deadline) {
		if (!wl_readable(F, 100))
			continue;
		ssize_t n = read(F, buf, sizeof(buf));
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n <= 0)
			wl_die("read of the fanotify fd: %s", n < 0 ? strerror(errno) : "EOF");
		for (struct fanotify_event_metadata *m = (void *)buf; FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
			struct stat st;
			if (m->fd < 0)
				continue;
			if (fstat(m->fd, &st) == 0) {
				if (st.st_ino == want)
					got |= m->mask;
				else if (bad && st.st_ino == bad && seen_bad)
					*seen_bad = 1;
			}
			close(m->fd);
		}
	}
	return got;
}

static void setup(void)
{
	if (mkdir("fandir", 0755))
		wl_die("mkdir fandir: %s", strerror(errno));
	write_file("fan.txt", 0);
	write_file("quiet.txt", 0);
	write_file("other.txt", 0);
	F = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
	if (F < 0)
		wl_die("fanotify_init: %s", strerror(errno));
	if (fanotify_mark(F, FAN_MARK_ADD, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, "fan.txt"))
		wl_die("fanotify_mark fan.txt: %s", strerror(errno));
	if (fanotify_mark(F, FAN_MARK_ADD, FAN_MODIFY | FAN_EVENT_ON_CHILD, AT_FDCWD, "fandir"))
		wl_die("fanotify_mark fandir: %s", strerror(errno));
	if (fanotify_mark(F, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, "."))
		wl_die("fanotify_mark mount of .: %s", strerror(errno));
	if (fanotify_mark(F, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_CLOSE_WRITE, AT_FDCWD, "quiet.txt"))
		wl_die("fanotify_mark quiet.txt: %s", strerror(errno));
	if (strcmp(wl_mode, "fs") == 0 &&
	    fanotify_mark(F, FAN_MARK_ADD | FAN_MARK_FILESYSTEM, FAN_CLOSE_WRITE, AT_FDCWD, "."))
		wl_die("fanotify_mark file system of .: %s", strerror(errno));
	fdinfo_lines(lines_before, sizeof(lines_before));
	drain();
}

static void check(void)
{
	char link[64], path[64], now[4096];
	int fl = fcntl(F, F_GETFL), fdfl = fcntl(F, F_GETFD), bad = 0;
	ssize_t n;

	CHECK(fl >= 0 && (fl & O_NONBLOCK), "F_GETFL = %#x, want O_NONBLOCK", fl);
	CHECK(fdfl == 0, "F_GETFD = %#x, want 0", fdfl);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", F);
	n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = 0;
	CHECK(strcmp(link, "anon_inode:[fanotify]") == 0, "fd %d links to '%s'", F, link);
	fdinfo_lines(now, sizeof(now));
	CHECK(strcmp(now, lines_before) == 0, "fdinfo marks\n  now    %s\n  before %s", now, lines_before);

	drain();
	write_file("fan.txt", O_APPEND);
	unsigned long long got = await_events(ino_of("fan.txt"), FAN_MODIFY | FAN_CLOSE_WRITE, 0, NULL);
	CHECK((got & (FAN_MODIFY | FAN_CLOSE_WRITE)) == (FAN_MODIFY | FAN_CLOSE_WRITE),
	      "fan.txt: events %#llx, want FAN_MODIFY|FAN_CLOSE_WRITE", got);

	write_file("fandir/child", 0);
	got = await_events(ino_of("fandir/child"), FAN_MODIFY, 0, NULL);
	CHECK(got & FAN_MODIFY, "fandir/child: events %#llx, want FAN_MODIFY (directory mark)", got);

	write_file("quiet.txt", O_APPEND);
	write_file("other.txt", O_APPEND);
	got = await_events(ino_of("other.txt"), FAN_CLOSE_WRITE, ino_of("quiet.txt"), &bad);
	CHECK(got & FAN_CLOSE_WRITE, "other.txt: events %#llx, want FAN_CLOSE_WRITE (mount mark)", got);
	CHECK(!bad, "quiet.txt: an event despite its ignored mask");
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	setup();
	if (atomic_load(&wl_fails))
		wl_die("checks failed before READY");
	wl_ready();
	wl_wait_stop();
	if (wl_corrupt && fanotify_mark(F, FAN_MARK_REMOVE, FAN_MODIFY | FAN_CLOSE_WRITE, AT_FDCWD, "fan.txt"))
		wl_die("corrupt: remove the mark of fan.txt: %s", strerror(errno));
	wl_check_ids(0);
	check();
	return wl_finish();
}
