/*
 * ghost - a file deleted while open.
 *   usage: ghost
 * Before READY: creates ghost.dat in the cwd (mode 0640) with a pattern,
 * leaves its offset at 4096 + 123 and unlinks it; a second descriptor is a
 * dup (one open file description). After SIGTERM: the contents and offset
 * are those of before, both descriptors still share the offset, the link
 * still reads ".../ghost.dat (deleted)", and no file is left at that name.
 *
 * Also a mapped deleted file: ghost-map.dat (3 pages of a pattern) mapped
 * MAP_PRIVATE read-write, page 1 written (a private copy), closed and
 * unlinked. After SIGTERM pages 0 and 2 still read the file's bytes, page 1
 * the written ones, /proc/self/maps names the mapping
 * ".../ghost-map.dat (deleted)", and nothing is left at that name.
 */
#include "wl.h"
#include <sys/mman.h>

#define GHOST_SIZE (64 * 1024)

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	char cwd[PATH_MAX], path[PATH_MAX + 16], want_link[PATH_MAX + 32];
	if (!getcwd(cwd, sizeof cwd))
		wl_die("getcwd: %s", strerror(errno));
	snprintf(path, sizeof path, "%s/ghost.dat", cwd);
	snprintf(want_link, sizeof want_link, "%s (deleted)", path);
	static char data[GHOST_SIZE];
	wl_fill(data, sizeof data, 77);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0640);
	if (fd < 0 || write(fd, data, sizeof data) != (ssize_t)sizeof data)
		wl_die("create %s: %s", path, strerror(errno));
	if (lseek(fd, 4096 + 123, SEEK_SET) < 0 || unlink(path) != 0)
		wl_die("seek/unlink: %s", strerror(errno));
	int dupfd = dup2(fd, 40);
	if (dupfd != 40)
		wl_die("dup2: %s", strerror(errno));
	char mpath[PATH_MAX + 16], want_map[PATH_MAX + 32];
	snprintf(mpath, sizeof mpath, "%s/ghost-map.dat", cwd);
	snprintf(want_map, sizeof want_map, "%s (deleted)", mpath);
	static char mdata[3 * 4096], page1[4096];
	wl_fill(mdata, sizeof mdata, 78);
	wl_fill(page1, sizeof page1, 79);
	int mfd = open(mpath, O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (mfd < 0 || write(mfd, mdata, sizeof mdata) != (ssize_t)sizeof mdata)
		wl_die("create %s: %s", mpath, strerror(errno));
	char *map = mmap(NULL, sizeof mdata, PROT_READ | PROT_WRITE, MAP_PRIVATE, mfd, 0);
	if (map == MAP_FAILED)
		wl_die("mmap: %s", strerror(errno));
	memcpy(map + 4096, page1, sizeof page1);
	if (close(mfd) || unlink(mpath))
		wl_die("close/unlink %s: %s", mpath, strerror(errno));
	wl_ready();
	wl_wait_stop();
	if (wl_corrupt)
		map[2 * 4096 + 5] ^= 1;
	CHECK(memcmp(map, mdata, 4096) == 0, "mapped deleted file: page 0 differs from the file");
	CHECK(memcmp(map + 4096, page1, 4096) == 0, "mapped deleted file: the written page 1 differs");
	CHECK(memcmp(map + 2 * 4096, mdata + 2 * 4096, 4096) == 0, "mapped deleted file: page 2 differs from the file");
	{
		char maps[1 << 16], want_line[64];
		ssize_t n = wl_read_file("/proc/self/maps", maps, sizeof maps - 1);
		maps[n > 0 ? n : 0] = 0;
		snprintf(want_line, sizeof want_line, "%lx-", (unsigned long)map);
		char *line = strstr(maps, want_line);
		char *end = line ? strchr(line, '\n') : NULL;
		if (end)
			*end = 0;
		CHECK(line && strstr(line, want_map), "maps line for %p is %s, want it to name %s", map, line ? line : "(none)", want_map);
	}
	CHECK(access(mpath, F_OK) != 0, "a file is left at %s", mpath);
	if (wl_corrupt)
		lseek(fd, 1, SEEK_CUR);
	wl_check_ids(0);
	CHECK(lseek(fd, 0, SEEK_CUR) == 4096 + 123, "offset %ld, want %d", (long)lseek(fd, 0, SEEK_CUR), 4096 + 123);
	static char back[GHOST_SIZE];
	CHECK(pread(fd, back, sizeof back, 0) == (ssize_t)sizeof back && memcmp(back, data, sizeof back) == 0,
	      "contents of the deleted file differ");
	lseek(dupfd, 10, SEEK_SET);
	CHECK(lseek(fd, 0, SEEK_CUR) == 10, "fd 40 no longer shares the offset");
	char link[PATH_MAX + 32] = {0}, lp[64];
	snprintf(lp, sizeof lp, "/proc/self/fd/%d", fd);
	if (readlink(lp, link, sizeof link - 1) < 0)
		wl_fail("readlink %s: %s", lp, strerror(errno));
	CHECK(strcmp(link, want_link) == 0, "link %s, want %s", link, want_link);
	struct stat st;
	CHECK(fstat(fd, &st) == 0 && (st.st_mode & 07777) == 0640 && st.st_nlink == 0,
	      "mode %o links %ld, want 640 and 0", st.st_mode & 07777, (long)st.st_nlink);
	CHECK(access(path, F_OK) != 0, "a file is left at %s", path);
	return wl_finish();
}
