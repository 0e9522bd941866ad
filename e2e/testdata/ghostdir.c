/*
 * ghostdir - directories removed while held.
 *   usage: ghostdir
 * Before READY, in the cwd (the workload's directory):
 *   - gd-cwd (mode 0750) is made, entered, and removed: the process's
 *     working directory is a removed directory;
 *   - gd-fd (mode 0710) is made and held open at descriptor 41, removed,
 *     and a new directory gd-fd (holding a file "keep") is made at the same
 *     name, so that the restore finds the name taken.
 * After SIGTERM: getcwd fails with ENOENT as before, /proc/self/cwd reads
 * ".../gd-cwd (deleted)", "." is a directory with no links, mode 0750 and
 * the process's owner; creating a file relative to the cwd, and relative to
 * descriptor 41, fails with the errno it failed with before; descriptor 41
 * is a directory with no links and mode 0710 whose link names gd-fd and
 * ends in " (deleted)"; the new gd-fd is still there with its file, and
 * nothing else named gd-* is left in the workload's directory.
 */
#include "wl.h"
#include <dirent.h>

#define DIRFD 41

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	char base[PATH_MAX], cwdpath[PATH_MAX + 16], fdpath[PATH_MAX + 16], want_cwd[PATH_MAX + 32];
	if (!getcwd(base, sizeof base))
		wl_die("getcwd: %s", strerror(errno));
	snprintf(cwdpath, sizeof cwdpath, "%s/gd-cwd", base);
	snprintf(fdpath, sizeof fdpath, "%s/gd-fd", base);
	snprintf(want_cwd, sizeof want_cwd, "%s (deleted)", cwdpath);
	umask(0);
	if (mkdir(fdpath, 0710) != 0)
		wl_die("mkdir %s: %s", fdpath, strerror(errno));
	int dfd = open(fdpath, O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || dup2(dfd, DIRFD) != DIRFD || close(dfd) != 0)
		wl_die("open %s: %s", fdpath, strerror(errno));
	if (rmdir(fdpath) != 0 || mkdir(fdpath, 0755) != 0)
		wl_die("remove and make again %s: %s", fdpath, strerror(errno));
	char keep[PATH_MAX + 32];
	snprintf(keep, sizeof keep, "%s/keep", fdpath);
	int kfd = open(keep, O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (kfd < 0 || close(kfd) != 0)
		wl_die("create %s: %s", keep, strerror(errno));
	if (mkdir(cwdpath, 0750) != 0 || chdir(cwdpath) != 0 || rmdir(cwdpath) != 0)
		wl_die("make, enter and remove %s: %s", cwdpath, strerror(errno));
	int cwd_err = openat(AT_FDCWD, "new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	int fd_err = openat(DIRFD, "new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	if (!cwd_err || !fd_err)
		wl_die("a file could be made in a removed directory");
	wl_ready();
	wl_wait_stop();
	if (wl_corrupt)
		fchdir(DIRFD);
	char buf[PATH_MAX];
	errno = 0;
	CHECK(getcwd(buf, sizeof buf) == NULL && errno == ENOENT, "getcwd: %s (errno %d), want ENOENT", errno ? "failed" : buf, errno);
	ssize_t n = readlink("/proc/self/cwd", buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	CHECK(strcmp(buf, want_cwd) == 0, "/proc/self/cwd is %s, want %s", buf, want_cwd);
	struct stat st;
	CHECK(stat(".", &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0750 && st.st_uid == getuid(),
	      "cwd: mode %o, %lu links, owner %d", st.st_mode, (unsigned long)st.st_nlink, st.st_uid);
	int e = openat(AT_FDCWD, "new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	CHECK(e == cwd_err, "create in the cwd: errno %d, was %d", e, cwd_err);
	e = openat(DIRFD, "new", O_WRONLY | O_CREAT | O_EXCL, 0600) < 0 ? errno : 0;
	CHECK(e == fd_err, "create under fd %d: errno %d, was %d", DIRFD, e, fd_err);
	CHECK(fstat(DIRFD, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 && (st.st_mode & 07777) == 0710 && st.st_uid == getuid(),
	      "fd %d: mode %o, %lu links, owner %d", DIRFD, st.st_mode, (unsigned long)st.st_nlink, st.st_uid);
	snprintf(buf, sizeof buf, "/proc/self/fd/%d", DIRFD);
	char link[PATH_MAX];
	n = readlink(buf, link, sizeof link - 1);
	link[n > 0 ? n : 0] = 0;
	size_t ln = strlen(link), sn = strlen(" (deleted)");
	CHECK(strncmp(link, fdpath, strlen(fdpath)) == 0 && ln > sn && strcmp(link + ln - sn, " (deleted)") == 0,
	      "fd %d links to %s, want %s... (deleted)", DIRFD, link, fdpath);
	CHECK(access(keep, F_OK) == 0, "the directory made at %s since lost %s", fdpath, keep);
	DIR *d = opendir(base);
	if (!d)
		wl_die("opendir %s: %s", base, strerror(errno));
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		CHECK(strncmp(de->d_name, "gd-", 3) != 0 || strcmp(de->d_name, "gd-fd") == 0, "%s/%s is left behind", base, de->d_name);
	closedir(d);
	return wl_finish();
}
