/*
 * tree_pipeline: the two C ends of a shell pipeline
 *
 *   sh -c 'tree_pipeline produce | tr a-z A-Z | tree_pipeline consume'
 *
 * (sh is a copy of dash, tr the coreutils one). The root of the tree is sh;
 * the harness does not signal anything: the run ends when the file "stop"
 * appears in the cwd.
 *
 * produce: writes "line NNNNNNNN <payload>\n" to the pipe, one line per
 * millisecond (the payload a function of N), one write() per line; once
 * "stop" exists it writes 200 more lines, then "end <count>\n", closes the
 * pipe, checks its ids (ppid = sh, pgid, sid) and exits. Its own messages
 * go to the shared output file (stdout is moved to fd 3).
 *
 * consume: reads the uppercased lines; every line must be the next number
 * with the right payload (none lost, doubled, reordered or damaged), copies
 * each line to pipeline.out (offset checked against the bytes written), and
 * after 100 lines prints one TREE line for sh and each process of the
 * pipeline (from /proc) and READY for sh. On "END <count>" it checks the
 * count and EOF, its ids, pipeline.out's offset and size, then prints PASS or
 * FAIL lines and exits 0 or 1 -- sh's exit status.
 *
 * WL_CORRUPT=1: once "stop" exists the consumer drops a line and moves
 * pipeline.out's offset; the producer expects another parent.
 */
#include "wl.h"
#include <ctype.h>

#define LINE_MAX_LEN 128
#define MAX_LINES 100000 /* safety stop: about 2 minutes */

static void payload(long n, char *out, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++)
		out[i] = (char)('a' + wl_pat((uint64_t)n, i) % 26);
	out[len - 1] = 0;
}

static int stop_requested(void) { return access("stop", F_OK) == 0; }

static int produce(void)
{
	char line[LINE_MAX_LEN], pl[33];
	long n = 0, extra = -1;
	int out = dup(1);
	if (out < 0 || dup2(2, 1) != 1)
		wl_die("produce: dup: %s", strerror(errno));
	wl_role = "producer";
	/* the consumer prints the TREE lines of the whole pipeline */
	wl_exp_pid = getpid();
	wl_exp_ppid = getppid();
	wl_exp_pgid = getpgrp();
	wl_exp_sid = getsid(0);
	for (;;) {
		int len;
		if (extra < 0 && (stop_requested() || n >= MAX_LINES))
			extra = 200;
		if (extra == 0)
			break;
		if (extra > 0)
			extra--;
		payload(n, pl, sizeof(pl));
		len = snprintf(line, sizeof(line), "line %08ld %s\n", n, pl);
		if (write(out, line, (size_t)len) != len) {
			wl_fail("producer: write line %ld: %s", n, strerror(errno));
			return 1;
		}
		n++;
		wl_msleep(1);
	}
	{
		char end[64];
		int len = snprintf(end, sizeof(end), "end %ld\n", n);
		if (write(out, end, (size_t)len) != len)
			wl_fail("producer: write end: %s", strerror(errno));
	}
	close(out);
	if (wl_corrupt)
		wl_exp_ppid += 100000;
	wl_tree_check_ids();
	if (atomic_load(&wl_fails) == 0)
		wl_info("producer: %ld lines written", n);
	fflush(stdout);
	return atomic_load(&wl_fails) ? 1 : 0;
}

/* Prints TREE lines for sh and its children (from /proc), then READY. */
static void announce(pid_t sh)
{
	pid_t pids[16];
	int n = 0;
	DIR *d;
	struct dirent *e;
	/* the others must have exec'ed: the lines came through tr */
	for (int tries = 0; tries < 5000; tries++) {
		n = 0;
		d = opendir("/proc");
		while (d && (e = readdir(d)) && n < 16) {
			char path[64], buf[1024], *p;
			int pid = atoi(e->d_name), ppid;
			snprintf(path, sizeof(path), "/proc/%d/stat", pid);
			if (pid <= 0 || wl_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
				continue;
			if (sscanf(p + 2, "%*c %d", &ppid) == 1 && ppid == sh)
				pids[n++] = pid;
		}
		if (d)
			closedir(d);
		if (n == 3)
			break;
		wl_msleep(1);
	}
	if (n != 3)
		wl_die("consume: sh (%d) has %d children, want 3", sh, n);
	flockfile(stdout);
	for (int i = -1; i < n; i++) {
		pid_t pid = i < 0 ? sh : pids[i];
		char path[64], buf[1024], *p;
		int ppid, pgid, sid;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		if (wl_read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')) ||
		    sscanf(p + 2, "%*c %d %d %d", &ppid, &pgid, &sid) != 3)
			wl_die("consume: /proc/%d/stat", pid);
		printf("TREE pid=%d ppid=%d pgid=%d sid=%d role=%.*s\n", pid, ppid, pgid, sid,
		       (int)(p - strchr(buf, '(') - 1), strchr(buf, '(') + 1);
	}
	printf("READY pid=%d tids=%d\n", sh, sh);
	fflush(stdout);
	funlockfile(stdout);
}

static int consume(void)
{
	static char buf[1 << 16];
	char pl[33], want[LINE_MAX_LEN];
	size_t have = 0;
	long next = 0, end = -1, lost_reported = 0;
	off_t written = 0;
	int eof = 0, announced = 0, dropped = 0;
	int out = open("pipeline.out", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		wl_die("consume: open pipeline.out: %s", strerror(errno));
	wl_role = "consumer";
	wl_exp_pid = getpid();
	wl_exp_ppid = getppid();
	wl_exp_pgid = getpgrp();
	wl_exp_sid = getsid(0);

	while (!eof) {
		ssize_t r = read(0, buf + have, sizeof(buf) - have);
		char *line, *nl;
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			wl_fail("consumer: read: %s", strerror(errno));
			break;
		}
		if (r == 0)
			eof = 1;
		have += (size_t)r;
		line = buf;
		while ((nl = memchr(line, '\n', have - (size_t)(line - buf)))) {
			size_t len = (size_t)(nl - line) + 1;
			long n;
			*nl = 0;
			if (end >= 0) {
				wl_fail("consumer: data after END: \"%s\"", line);
			} else if (sscanf(line, "END %ld", &n) == 1) {
				end = n;
				TCHECK(n == next, "END %ld, but %ld lines received in sequence", n, next);
			} else if (sscanf(line, "LINE %ld", &n) == 1) {
				if (wl_corrupt && !dropped && stop_requested()) {
					dropped = 1; /* as if the line was lost */
					lseek(out, 1, SEEK_CUR);
					line = nl + 1;
					continue;
				}
				payload(n, pl, sizeof(pl));
				for (char *c = pl; *c; c++)
					*c = (char)toupper(*c);
				snprintf(want, sizeof(want), "LINE %08ld %s", n, pl);
				if (n != next) {
					if (lost_reported++ < 5)
						wl_fail("consumer: line %ld after line %ld: %s", n, next - 1,
							n > next ? "lines lost" : "line doubled or reordered");
					if (n > next)
						next = n + 1;
				} else if (strcmp(line, want) != 0) {
					wl_fail("consumer: line %ld damaged: \"%s\"", n, line);
					next++;
				} else {
					next++;
				}
				*nl = '\n';
				if (write(out, line, len) != (ssize_t)len)
					wl_fail("consumer: write pipeline.out: %s", strerror(errno));
				written += (off_t)len;
				if (!announced && next >= 100) {
					announce(getppid());
					announced = 1;
				}
			} else {
				wl_fail("consumer: bad line \"%s\"", line);
			}
			line = nl + 1;
		}
		have -= (size_t)(line - buf);
		memmove(buf, line, have);
		if (have == sizeof(buf)) {
			wl_fail("consumer: line too long");
			break;
		}
	}
	TCHECK(end >= 0, "no END line before EOF (%ld lines received)", next);
	TCHECK(have == 0, "%zu bytes after the last newline", have);
	wl_tree_check_ids();
	{
		struct stat st;
		off_t pos = lseek(out, 0, SEEK_CUR);
		TCHECK(pos == written, "pipeline.out: offset %ld, want %ld (bytes written)", (long)pos, (long)written);
		TCHECK(fstat(out, &st) == 0 && st.st_size == written, "pipeline.out: size %ld, want %ld", (long)st.st_size,
		       (long)written);
	}
	close(out);
	if (atomic_load(&wl_fails) == 0)
		wl_info("consumer: %ld lines in sequence", next);
	return wl_finish();
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	if (strcmp(wl_mode, "produce") == 0)
		return produce();
	if (strcmp(wl_mode, "consume") == 0)
		return consume();
	wl_die("mode must be produce or consume, not '%s'", wl_mode);
	return 2;
}
