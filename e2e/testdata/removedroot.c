/*
 * removedroot - a process whose root directory was removed.
 *   usage: removedroot [UID]
 * Before READY, in the cwd (the workload's directory, outside the root):
 *   - rr-data is made, "outside\n" written, and held at descriptor 40;
 *   - rr-root (mode 0711) is made (owned by UID if given), the process
 *     chroots into it and chdirs to "/", takes UID (all its uids, gids and
 *     no groups) if given, and removes rr-root through a descriptor of the
 *     workload's directory it then closes. Its executable, its libraries
 *     and its stdout all lie outside its root.
 * After SIGTERM: "/" is a directory with no links, mode 0711 and the
 * process's owner, with no entry; ".." of "/" is "/" still; creating a
 * file in "/" and getcwd fail with the errno they failed with before;
 * descriptor 40 reads "outside\n", takes a write and is the same file
 * (one link, the process's owner).
 */
#include "wl.h"
#include <dirent.h>
#include <grp.h>

#define DATAFD 40

/* root_ok checks "/" is the removed root: an empty directory, no links. */
static void root_ok(const char *when, uid_t uid)
{
	struct stat st;
	CHECK(stat("/", &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0711 && st.st_uid == uid,
	      "%s: / has mode %o, %lu links, owner %d", when, st.st_mode, (unsigned long)st.st_nlink, st.st_uid);
	struct stat up;
	CHECK(stat("/..", &up) == 0 && up.st_ino == st.st_ino && up.st_dev == st.st_dev, "%s: /.. is not /", when);
	DIR *d = opendir("/");
	if (!d) {
		wl_fail("%s: opendir /: %s", when, strerror(errno));
		return;
	}
	struct dirent *e;
	while ((e = readdir(d)))
		CHECK(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0, "%s: / holds %s", when, e->d_name);
	closedir(d);
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	uid_t uid = getuid();
	int drop = wl_mode[0] != 0;
	if (drop)
		uid = (uid_t)atoi(wl_mode);
	int fd = open("rr-data", O_RDWR | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, "outside\n", 8) != 8 || dup2(fd, DATAFD) != DATAFD || close(fd) != 0)
		wl_die("make rr-data: %s", strerror(errno));
	if (drop && fchown(DATAFD, uid, uid) != 0)
		wl_die("chown rr-data: %s", strerror(errno));
	int base = open(".", O_PATH | O_DIRECTORY);
	if (base < 0)
		wl_die("open .: %s", strerror(errno));
	umask(0);
	if (mkdir("rr-root", 0711) != 0 || (drop && chown("rr-root", uid, uid) != 0))
		wl_die("make rr-root: %s", strerror(errno));
	if (chroot("rr-root") != 0 || chdir("/") != 0)
		wl_die("chroot rr-root: %s", strerror(errno));
	if (drop && (setgroups(0, NULL) != 0 || setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0))
		wl_die("become %d: %s", uid, strerror(errno));
	if (unlinkat(base, "rr-root", AT_REMOVEDIR) != 0 || close(base) != 0)
		wl_die("remove rr-root: %s", strerror(errno));
	int mk_err = open("/new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	char buf[PATH_MAX];
	errno = 0;
	int cwd_err = getcwd(buf, sizeof buf) ? 0 : errno;
	if (!mk_err)
		wl_die("a file could be made in the removed root");
	root_ok("before", uid);
	if (wl_fails)
		wl_die("the removed root is not as expected before the dump");
	wl_ready();
	wl_wait_stop();
	if (wl_corrupt)
		close(DATAFD);
	root_ok("after", uid);
	int e = open("/new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	CHECK(e == mk_err, "create /new: errno %d, was %d", e, mk_err);
	errno = 0;
	e = getcwd(buf, sizeof buf) ? 0 : errno;
	CHECK(e == cwd_err, "getcwd: errno %d, was %d", e, cwd_err);
	char got[16] = {0};
	CHECK(pread(DATAFD, got, sizeof got - 1, 0) == 8 && strcmp(got, "outside\n") == 0, "fd %d reads %s", DATAFD, got);
	CHECK(pwrite(DATAFD, "again\n", 6, 8) == 6, "write fd %d: %s", DATAFD, strerror(errno));
	struct stat st;
	CHECK(fstat(DATAFD, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 && st.st_size == 14 && st.st_uid == uid,
	      "fd %d: %lu links, size %ld, owner %d", DATAFD, (unsigned long)st.st_nlink, (long)st.st_size, st.st_uid);
	return wl_finish();
}
