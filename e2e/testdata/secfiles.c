/*
 * secfiles - a normal user's process whose files root dumps and restores
 * while the user attacks the paths (e2e/security_files_test.go).
 *   usage: secfiles MODE      (run in a directory the user owns)
 * open:   opens ./data (the user's, "user data\n") read-write. After
 *         SIGTERM: the descriptor is still that file (its inode, owner and
 *         contents), nothing else.
 * openro: the same, read-only (a FIFO would block such an open, a
 *         directory would not fail it).
 * ghost:  creates ./sub/g.dat ("ghost data\n", mode 0600), holds it open
 *         read-write and unlinks it. After SIGTERM: the descriptor reads
 *         the contents, is owned by the process's uid, has no link, and no
 *         file is at ./sub/g.dat.
 * sparse: four deleted files of 60 MiB, all holes but a marker at 1 MiB
 *         and at the end. After SIGTERM: sizes, markers and holes read
 *         back.
 */
#include "wl.h"

#define SPARSE_N 4
#define SPARSE_SIZE (60L << 20)

/* check_same: fd is still what, owned by the process, reading want; the
 * same inode unless before is NULL (a deleted file comes back as a new
 * one). */
static void check_same(int fd, const struct stat *before, const char *what, const char *want)
{
	struct stat st;
	CHECK(fstat(fd, &st) == 0, "fstat %s: %s", what, strerror(errno));
	CHECK(!before || (st.st_dev == before->st_dev && st.st_ino == before->st_ino), "%s is inode %lu now, was %lu",
	      what, (unsigned long)st.st_ino, before ? (unsigned long)before->st_ino : 0UL);
	CHECK(st.st_uid == getuid(), "%s is owned by uid %d now, the process is uid %d", what, st.st_uid, getuid());
	char buf[64] = {0};
	CHECK(pread(fd, buf, sizeof buf - 1, 0) == (ssize_t)strlen(want) && strcmp(buf, want) == 0,
	      "%s reads %s, want %s", what, buf, want);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	struct stat before;
	int fd = -1, sparse[SPARSE_N];
	int ro = strcmp(wl_mode, "openro") == 0;
	if (ro || strcmp(wl_mode, "open") == 0) {
		fd = open("data", ro ? O_RDONLY : O_RDWR);
		if (fd < 0 || fstat(fd, &before))
			wl_die("open data: %s", strerror(errno));
	} else if (strcmp(wl_mode, "ghost") == 0) {
		fd = open("sub/g.dat", O_RDWR | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, "ghost data\n", 11) != 11 || fstat(fd, &before) || unlink("sub/g.dat"))
			wl_die("ghost sub/g.dat: %s", strerror(errno));
	} else if (strcmp(wl_mode, "sparse") == 0) {
		for (int i = 0; i < SPARSE_N; i++) {
			char name[32];
			snprintf(name, sizeof name, "sparse%d.dat", i);
			sparse[i] = open(name, O_RDWR | O_CREAT | O_EXCL, 0600);
			if (sparse[i] < 0 || ftruncate(sparse[i], SPARSE_SIZE) ||
			    pwrite(sparse[i], "mark", 4, 1 << 20) != 4 || pwrite(sparse[i], "end!", 4, SPARSE_SIZE - 4) != 4 ||
			    unlink(name))
				wl_die("sparse %s: %s", name, strerror(errno));
		}
	} else {
		wl_usage();
	}
	wl_ready();
	wl_wait_stop();
	if (ro || strcmp(wl_mode, "open") == 0) {
		check_same(fd, &before, "data", "user data\n");
	} else if (strcmp(wl_mode, "ghost") == 0) {
		check_same(fd, NULL, "the deleted sub/g.dat", "ghost data\n");
		struct stat st;
		CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0, "the deleted file has %ld links", (long)st.st_nlink);
		CHECK(access("sub/g.dat", F_OK) != 0, "a file is left at sub/g.dat");
	} else {
		for (int i = 0; i < SPARSE_N; i++) {
			struct stat st;
			char buf[8] = {0}, zero[4096], none[4096] = {0};
			CHECK(fstat(sparse[i], &st) == 0 && st.st_size == SPARSE_SIZE && st.st_nlink == 0,
			      "sparse file %d: size %ld links %ld", i, (long)st.st_size, (long)st.st_nlink);
			CHECK(pread(sparse[i], buf, 4, 1 << 20) == 4 && memcmp(buf, "mark", 4) == 0, "sparse file %d: no mark", i);
			CHECK(pread(sparse[i], buf, 4, SPARSE_SIZE - 4) == 4 && memcmp(buf, "end!", 4) == 0, "sparse file %d: no end", i);
			CHECK(pread(sparse[i], zero, sizeof zero, 30 << 20) == sizeof zero && memcmp(zero, none, sizeof zero) == 0,
			      "sparse file %d: a hole reads non-zero", i);
		}
	}
	return wl_finish();
}
