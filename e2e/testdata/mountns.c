/*
 * mountns - a process started by root in a mount namespace of its own
 * (what `unshare -m` makes), with mounts of its own, and in a time
 * namespace with clock offsets (`unshare -T --monotonic --boottime`).
 *   usage: mountns [-t NTHREADS] [mqueue|ghost|tree]
 * Before READY: unshare(CLONE_NEWNS|CLONE_NEWTIME), offsets of 100 days
 * (monotonic) and 200 days (boottime) written, the time namespace entered
 * (setns of its own time_for_children); / made rprivate, then in the cwd:
 *   t        a tmpfs "cryo-mnt" (size=2m,nr_inodes=64,mode=1777, nosuid,
 *            noexec) holding: owned (mode 0640, owner 1234:5678, 100
 *            bytes), hard (a hard link to owned), d/ (mode 0711) with d/f,
 *            d/link (a symlink to ../owned), empty/ (mode 0705), mp/ and
 *            filebind (mount points);
 *   t/mp     a bind mount of ./src (a directory of the host's filesystem);
 *   t/filebind  a read-only bind mount of the file ./hostfile;
 *   t/proc   a proc mount (nosuid,nodev,noexec);
 *   an open descriptor on t/owned at offset 3, and the cwd in t/d.
 * With "mqueue", also an mqueue mount at t/mq; with "ghost", t/ghost open
 * and deleted: the dump must refuse either.
 * With "tree", the root (TREE line, role root) then forks "kid", which
 * inherits the descriptor and the cwd (TREE line, role kid): after
 * restore the two share the open file description (kcmp) and its offset,
 * and the kid checks its cwd, its descriptor and the tmpfs's contents.
 *
 * After SIGTERM: the mount namespace is not the one it started in; the
 * mountinfo line of each mount from its 4th field (root, point, options,
 * propagation, type, source, superblock options) is the same; statfs of t
 * and t/proc says tmpfs and proc; the files, modes, owners, link, hard
 * link and empty directory are back; t/mp is ./src (same device and
 * inode) and t/filebind shows hostfile's bytes and is read-only;
 * t/proc/self is this process; the descriptor is t/owned (same device and
 * inode) at offset 3; the cwd is t/d. Every thread checks its cwd. The
 * clocks are checked as wl_timens_check says.
 */
#include "wl.h"
#include <linux/kcmp.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/vfs.h>

#define TMPFS_MAGIC 0x01021994
#define PROC_SUPER_MAGIC 0x9fa0

static char base[PATH_MAX];
static const char *points[] = {"t", "t/mp", "t/filebind", "t/proc"};
#define NPOINTS 4
static char lines[NPOINTS][1024];

static char *at(const char *rel)
{
	static char buf[4][PATH_MAX + 64];
	static int i;
	char *p = buf[i++ % 4];
	snprintf(p, PATH_MAX + 64, "%s/%s", base, rel);
	return p;
}

static void xwrite(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		wl_die("create %s: %s", path, strerror(errno));
	close(fd);
}

static unsigned long ns_inode(void)
{
	struct stat sb;
	if (stat("/proc/self/ns/mnt", &sb))
		wl_die("stat /proc/self/ns/mnt: %s", strerror(errno));
	return (unsigned long)sb.st_ino;
}

static void *thread_main(void *arg)
{
	int idx = (int)(long)arg;
	wl_block_sigterm();
	wl_thread_started(idx);
	while (!wl_stop)
		wl_msleep(5);
	char cwd[PATH_MAX];
	CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, at("t/d")) == 0, "thread %d: cwd %s, want %s", idx, cwd, at("t/d"));
	return NULL;
}

int main(int argc, char **argv)
{
	wl_init(argc, argv);
	char owned[100], buf[256];
	struct stat a, b;
	struct statfs fs;
	int fd;
	unsigned long host_ns;

	if (!getcwd(base, sizeof base))
		wl_die("getcwd: %s", strerror(errno));
	host_ns = ns_inode();
	if (unshare(CLONE_NEWNS | CLONE_NEWTIME))
		wl_die("unshare(CLONE_NEWNS|CLONE_NEWTIME): %s", strerror(errno));
	int tfd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	const char *offsets = "monotonic 8640000 0\nboottime 17280000 0\n";
	if (tfd < 0 || write(tfd, offsets, strlen(offsets)) != (ssize_t)strlen(offsets))
		wl_die("write /proc/self/timens_offsets: %s", strerror(errno));
	close(tfd);
	tfd = open("/proc/self/ns/time_for_children", O_RDONLY | O_CLOEXEC);
	if (tfd < 0 || setns(tfd, CLONE_NEWTIME))
		wl_die("enter the new time namespace: %s", strerror(errno));
	close(tfd);
	struct wl_timens tns;
	wl_timens_record(&tns);
	if (!tns.have)
		wl_die("no time offsets after entering the time namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		wl_die("make / rprivate: %s", strerror(errno));
	if (mkdir("t", 0755) || mkdir("src", 0755))
		wl_die("mkdir: %s", strerror(errno));
	xwrite("src/in-src", "src\n", 0644);
	xwrite("hostfile", "host file\n", 0644);
	if (mount("cryo-mnt", "t", "tmpfs", MS_NOSUID | MS_NOEXEC, "size=2m,nr_inodes=64,mode=1777"))
		wl_die("mount tmpfs: %s", strerror(errno));
	wl_fill(owned, sizeof owned, 0x6d6e74);
	fd = open("t/owned", O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, owned, sizeof owned) != sizeof owned || fchown(fd, 1234, 5678) || fchmod(fd, 0640))
		wl_die("t/owned: %s", strerror(errno));
	close(fd);
	if (link("t/owned", "t/hard") || mkdir("t/d", 0711) || mkdir("t/empty", 0705) || mkdir("t/mp", 0755) ||
	    mkdir("t/proc", 0555) || symlink("../owned", "t/d/link"))
		wl_die("tmpfs entries: %s", strerror(errno));
	xwrite("t/d/f", "in d\n", 0600);
	xwrite("t/filebind", "", 0600);
	if (chmod("t/empty", 0705) || chmod("t/d", 0711))
		wl_die("chmod: %s", strerror(errno));
	if (mount("src", "t/mp", NULL, MS_BIND, NULL) || mount("hostfile", "t/filebind", NULL, MS_BIND, NULL) ||
	    mount(NULL, "t/filebind", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL))
		wl_die("bind mounts: %s", strerror(errno));
	if (mount("proc", "t/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		wl_die("mount proc: %s", strerror(errno));
	if (!strcmp(wl_mode, "mqueue") && (mkdir("t/mq", 0755) || mount("mqueue", "t/mq", "mqueue", 0, NULL)))
		wl_die("mount mqueue: %s", strerror(errno));
	if (!strcmp(wl_mode, "ghost") && (open("t/ghost", O_RDWR | O_CREAT | O_EXCL, 0600) < 0 || unlink("t/ghost")))
		wl_die("t/ghost: %s", strerror(errno));
	for (int i = 0; i < NPOINTS; i++)
		if (!wl_mountinfo_of(at(points[i]), lines[i], sizeof lines[i]))
			wl_die("%s is not in /proc/self/mountinfo", points[i]);
	fd = open("t/owned", O_RDWR | O_CLOEXEC);
	if (fd < 0 || lseek(fd, 3, SEEK_SET) != 3)
		wl_die("open t/owned: %s", strerror(errno));
	if (chdir("t/d"))
		wl_die("chdir t/d: %s", strerror(errno));

	pid_t kid = -1;
	if (!strcmp(wl_mode, "tree")) {
		wl_tree_line();
		kid = wl_fork("kid");
		if (kid == 0) {
			wl_tree_line();
			wl_mark("kid");
			wl_tree_wait_stop();
			wl_tree_check_ids();
			struct stat ka, kb;
			char kcwd[PATH_MAX];
			TCHECK(getcwd(kcwd, sizeof kcwd) && strcmp(kcwd, at("t/d")) == 0, "cwd %s, want %s", kcwd, at("t/d"));
			TCHECK(fstat(fd, &ka) == 0 && stat(at("t/owned"), &kb) == 0 && ka.st_ino == kb.st_ino && ka.st_dev == kb.st_dev,
			       "the inherited descriptor is not t/owned");
			TCHECK(lseek(fd, 0, SEEK_CUR) == 3, "inherited descriptor offset %ld, want 3", (long)lseek(fd, 0, SEEK_CUR));
			TCHECK(wl_read_file(at("t/d/f"), buf, sizeof buf) == 5, "t/d/f is not there");
			wl_check_no_children();
			wl_child_exit();
		}
		wl_wait_mark("kid");
	}

	pthread_t th[WL_MAX_THREADS];
	for (int i = 1; i < wl_nthreads; i++)
		if (pthread_create(&th[i], NULL, thread_main, (void *)(long)i))
			wl_die("pthread_create");
	wl_wait_started(wl_nthreads - 1);
	wl_ready();
	wl_wait_stop();
	if (kid > 0) {
		CHECK(syscall(SYS_kcmp, getpid(), kid, KCMP_FILE, fd, fd) == 0,
		      "the kid does not share the open t/owned (kcmp)");
		if (kill(kid, SIGTERM))
			wl_fail("kill(kid %d, SIGTERM): %s", kid, strerror(errno));
	}
	if (wl_corrupt)
		unlink(at("t/d/f"));

	CHECK(ns_inode() != host_ns, "back in the mount namespace it started in");
	wl_timens_check(&tns);
	for (int i = 0; i < NPOINTS; i++) {
		char line[1024];
		if (!wl_mountinfo_of(at(points[i]), line, sizeof line))
			wl_fail("%s is no mount point any more", points[i]);
		else
			CHECK(strcmp(line, lines[i]) == 0, "mountinfo of %s: \"%s\", want \"%s\"", points[i], line, lines[i]);
	}
	CHECK(statfs(at("t"), &fs) == 0 && fs.f_type == TMPFS_MAGIC, "statfs(t): type %#lx, want tmpfs", (unsigned long)fs.f_type);
	CHECK(statfs(at("t/proc"), &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC, "statfs(t/proc): type %#lx, want proc",
	      (unsigned long)fs.f_type);
	CHECK(stat(at("t"), &a) == 0 && (a.st_mode & 07777) == 01777, "t: mode %o, want 1777", a.st_mode & 07777);
	CHECK(stat(at("t/owned"), &a) == 0 && (a.st_mode & 07777) == 0640 && a.st_uid == 1234 && a.st_gid == 5678 &&
	          a.st_nlink == 2,
	      "t/owned: mode %o owner %u:%u links %lu, want 640 1234:5678 2", a.st_mode & 07777, a.st_uid, a.st_gid,
	      (unsigned long)a.st_nlink);
	CHECK(stat(at("t/hard"), &b) == 0 && a.st_ino == b.st_ino, "t/hard is not a hard link of t/owned");
	CHECK(wl_read_file(at("t/owned"), buf, sizeof buf) == sizeof owned && memcmp(buf, owned, sizeof owned) == 0,
	      "t/owned: contents differ");
	CHECK(stat(at("t/d"), &a) == 0 && (a.st_mode & 07777) == 0711, "t/d: mode %o, want 711", a.st_mode & 07777);
	CHECK(stat(at("t/empty"), &a) == 0 && (a.st_mode & 07777) == 0705, "t/empty: mode %o, want 705", a.st_mode & 07777);
	CHECK(wl_read_file(at("t/d/f"), buf, sizeof buf) == 5 && memcmp(buf, "in d\n", 5) == 0, "t/d/f: contents differ");
	ssize_t n = readlink(at("t/d/link"), buf, sizeof buf - 1);
	CHECK(n == 8 && memcmp(buf, "../owned", 8) == 0, "t/d/link is not a symlink to ../owned");
	CHECK(stat(at("t/mp"), &a) == 0 && stat(at("src"), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
	      "t/mp is not src");
	CHECK(wl_read_file(at("t/mp/in-src"), buf, sizeof buf) == 4, "t/mp/in-src is not there");
	CHECK(wl_read_file(at("t/filebind"), buf, sizeof buf) == 10 && memcmp(buf, "host file\n", 10) == 0,
	      "t/filebind does not show hostfile");
	int wfd = open(at("t/filebind"), O_WRONLY);
	CHECK(wfd < 0 && errno == EROFS, "t/filebind is writable (%s)", wfd < 0 ? strerror(errno) : "opened");
	if (wfd >= 0)
		close(wfd);
	snprintf(buf, sizeof buf, "%d", getpid());
	char self[64] = "";
	n = readlink(at("t/proc/self"), self, sizeof self - 1);
	CHECK(n > 0 && strcmp(self, buf) == 0, "t/proc/self is \"%s\", want %s", self, buf);
	CHECK(fstat(fd, &a) == 0 && stat(at("t/owned"), &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
	      "the open descriptor is not t/owned");
	CHECK(lseek(fd, 0, SEEK_CUR) == 3, "descriptor offset %ld, want 3", (long)lseek(fd, 0, SEEK_CUR));
	char cwd[PATH_MAX];
	CHECK(getcwd(cwd, sizeof cwd) && strcmp(cwd, at("t/d")) == 0, "cwd %s, want %s", cwd, at("t/d"));
	for (int i = 1; i < wl_nthreads; i++)
		pthread_join(th[i], NULL);
	if (kid > 0)
		wl_reap_ok(kid, "kid");
	return wl_finish();
}
