/*
 * userns: a process (tree) inside its own user namespace, with the IPC,
 * UTS, mount and PID namespaces around it, survives checkpoint/restore.
 * Started by the test as a normal user (uid 4242); see e2e/userns_test.go.
 *
 * usage: userns MODE
 *
 * Modes that create the namespaces themselves (unshare(2), no exec after,
 * so the workload keeps the full capability set of its new namespace):
 *   own     unshare(USER|IPC|UTS), maps its own uid/gid to themselves
 *           ("4242 4242 1") and writes "deny" to setgroups: `unshare -c -i`.
 *   root    the same with the uid/gid mapped to 0 inside: `unshare -r -i`.
 *   range   unshare(USER|IPC|UTS), prints "MAP pid=<pid>" and waits (10 s)
 *           until the test (root outside) has written a multi-range uid_map
 *           and gid_map (setgroups stays "allow"), like newuidmap for
 *           `unshare --map-users`; then switches to ids of the ranges.
 *   peercred  range, plus two socketpairs: one made as uid 0 inside, one
 *           after the switch; SO_PEERCRED of each (pid, uid, gid as seen
 *           inside) must be unchanged.
 *   nested  range for the outer namespace (ns1, whose root the workload
 *           stays); then forks a child that unshares USER|IPC|UTS again
 *           (ns2, nested in ns1) and whose maps the parent writes from ns1:
 *           uid_map and gid_map "0 2000 10" + "10 0 1", setgroups "deny".
 *           The child switches to uids 4/5/10 and gids 1/2/3 inside ns2.
 *           With WL_MOUNTS=1 ns1 also gets a mount namespace with the mounts
 *           of the mnt mode, which the child (in ns2) shares.
 *   mnt     unshare(USER|MNT|IPC|UTS) mapped like root, makes / rprivate,
 *           mounts a tmpfs (size=1m,mode=0750) at ./tmpfs holding files,
 *           binds ./src on ./bind and ./src on ./robind read-only, and
 *           keeps tmpfs/data open.
 * Mode run under the real unshare(1), which made the namespaces:
 *   inherit records the namespaces it was started in: SysV objects if its
 *           IPC namespace is new, hostname if its UTS namespace is new and
 *           it has CAP_SYS_ADMIN, the range id switch if uid_map has more
 *           than one line and it has CAP_SETUID; if it is pid 1 of its pid
 *           namespace (unshare -Urpf --mount-proc) it forks two children,
 *           one of which forks a grandchild, checks /proc is its own, and
 *           makes the socketpairs of the peercred mode (SO_PEERCRED must
 *           name pid 1 after the restore too).
 *           With WL_MOUNTS=1 (under unshare -m) it makes the mounts of the
 *           mnt mode first (the children share them; with WL_MOUNTS_SHARED=1
 *           also the descriptor on tmpfs/data: one open file description,
 *           checked with kcmp). If its time namespace
 *           has offsets (unshare -T --monotonic/--boottime), it checks them.
 *
 * Mounts, after restore: each mount's mountinfo line from the 4th field
 * (root, point, options, propagation, type, source, superblock options:
 * size, mode, uid/gid) is the same, tmpfs/data/link/sub and the tmpfs
 * root have their contents, modes and owners, statfs says tmpfs, the open
 * descriptor is tmpfs/data still (same device and inode) with its bytes,
 * bind/data is src/data, robind is read-only, a file made in bind shows
 * in src; outside, the test sees neither the tmpfs nor the mounts.
 * Time: /proc/self/timens_offsets is the same text, CLOCK_MONOTONIC is at
 * least its offset and did not go back, CLOCK_BOOTTIME - CLOCK_MONOTONIC
 * is at least the difference of the offsets (lost offsets make both false
 * on a machine up for less than 100 days).
 *
 * Recorded before READY and compared after SIGTERM, in every process:
 * getresuid/getresgid/fsuid/fsgid/getgroups and the capability sets as seen
 * inside; /proc/self/uid_map, gid_map, setgroups (text, exact); the owner of
 * the user namespace (NS_GET_OWNER_UID, as seen inside); which namespaces
 * (user, pid, ipc, uts, mnt) are not the test's (CRYO_E2E_OUTER_NS, e.g.
 * "user:4026531837 pid:4026531836 ...": every namespace that was new still
 * is, user/ipc/uts/mnt that were the test's still are); the dumpable flag;
 * hostname and domainname; "/" owned by 65534:65534 (root is unmapped);
 * owners of files created inside (as seen inside); SysV objects: a shm
 * segment (mode 0640, 12388 bytes of pattern, attached: the mapping and a
 * fresh shmat both hold the pattern, nattch 1), a semaphore set (4 values,
 * mode 0600), a message queue (mode 0620, 3 messages of types 1, 7, 3):
 * ids by key, uid/gid/cuid/cgid/mode, segsz/nsems/qnum/cbytes, values,
 * messages by type and in order (shm cpid and msg lspid, pids the kernel
 * records and nobody can set, only get an INFO line if they changed).
 * getppid() is checked in children only (the root's parent is the test,
 * then cryo restore).
 *
 * Child processes print their own FAIL lines and exit 0/1; the root of the
 * tree SIGTERMs them, waits (10 s) and alone prints PASS.
 */
#include "wl.h"
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/kcmp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/ipc.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/vfs.h>
#include <time.h>
#include <sys/wait.h>

#define SHM_KEY 0x6372796f
#define SEM_KEY 0x63727970
#define MSG_KEY 0x63727971
#define SHM_SIZE 12388
#define NSEMS 4
#define MAXFILES 12
#define MAXKIDS 4

enum { NS_USER, NS_PID, NS_IPC, NS_UTS, NS_MNT, NS_COUNT };
static const char *ns_names[NS_COUNT] = {"user", "pid", "ipc", "uts", "mnt"};
static unsigned long outer_ns[NS_COUNT];

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

struct msgbuf_ {
	long mtype;
	char mtext[64];
};
static const struct {
	long type;
	const char *text;
} msgs[3] = {{1, "first message, type 1"}, {7, "seven"}, {3, "the third one, of type 3, longest"}};

struct filerec {
	char name[128];
	uid_t uid;
	gid_t gid;
};

struct mountrec {
	char dir[32];
	char line[1024]; /* mountinfo fields from the 4th on (root, point, opts, ...) */
};

/* Everything one process records and re-checks. */
struct state {
	const char *who; /* prefix of FAIL lines: "" or "ns2 child: " ... */
	uid_t r, e, s, fs;
	gid_t rg, eg, sg, fsg;
	int ngroups;
	gid_t groups[64];
	struct __user_cap_data_struct cap[2];
	int dumpable;
	char uid_map[4096], gid_map[4096], setgroups[32];
	uid_t owner;
	int newns[NS_COUNT];
	int have_uts;
	char hostname[65], domainname[65];
	int have_ipc;
	int shmid, semid, msgid;
	unsigned char *shm_addr;
	uint64_t seed;
	struct shmid_ds shm;
	struct semid_ds sem;
	struct msqid_ds msq;
	unsigned short semvals[NSEMS];
	int nfiles;
	struct filerec files[MAXFILES];
	int nmounts;
	struct mountrec mounts[4];
	int tmpfs_fd; /* tmpfs/data, kept open */
	struct wl_timens time;
	int peer[2][2]; /* socketpairs (peercred mode) */
	struct ucred peercred[2];
	int have_peer;
	pid_t pid, ppid;
	int check_ppid;
};

static struct state st;
static const char *mode;
static pid_t kids[MAXKIDS];
static int nkids;

/* ------------------------------------------------------------------ */
/* small helpers */

static void xwrite_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		wl_die("open %s: %s", path, strerror(errno));
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		wl_die("write %s (%s): %s", path, text, strerror(errno));
	close(fd);
}

static unsigned long ns_inode(const char *path)
{
	struct stat sb;
	if (stat(path, &sb))
		return 0;
	return (unsigned long)sb.st_ino;
}

static void read_outer_ns(void)
{
	const char *env = getenv("CRYO_E2E_OUTER_NS");
	if (!env)
		wl_die("CRYO_E2E_OUTER_NS is not set");
	for (int i = 0; i < NS_COUNT; i++) {
		char key[16];
		const char *p;
		snprintf(key, sizeof(key), "%s:", ns_names[i]);
		p = strstr(env, key);
		if (!p || !(outer_ns[i] = strtoul(p + strlen(key), NULL, 10)))
			wl_die("CRYO_E2E_OUTER_NS=%s lacks %s", env, key);
	}
}

static void new_namespaces(int *out)
{
	for (int i = 0; i < NS_COUNT; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/ns/%s", ns_names[i]);
		out[i] = ns_inode(path) != outer_ns[i];
	}
}

static int has_cap(int cap)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d))
		return 0;
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

/* Waits (bounded) until the file at path is not empty. */
static void wait_nonempty(const char *path)
{
	char buf[256];
	for (int i = 0; i < 1000; i++) {
		if (wl_read_file(path, buf, sizeof(buf)) > 0)
			return;
		wl_msleep(10);
	}
	wl_die("%s still empty after 10 s", path);
}

/* Collapses runs of blanks: maps compare as "0 4242 1\n...". */
static void read_map(const char *path, char *out, size_t size)
{
	char raw[4096];
	size_t n = 0;
	int blank = 1;
	if (wl_read_file(path, raw, sizeof(raw)) < 0) {
		snprintf(out, size, "(%s: %s)", path, strerror(errno));
		return;
	}
	for (char *p = raw; *p && n + 1 < size; p++) {
		if (*p == ' ' || *p == '\t') {
			if (!blank)
				out[n++] = ' ';
			blank = 1;
			continue;
		}
		if (*p == '\n' && n > 0 && out[n - 1] == ' ')
			n--;
		out[n++] = *p;
		blank = *p == '\n';
	}
	out[n] = 0;
}

static int map_lines(const char *map)
{
	int n = 0;
	for (const char *p = map; *p; p++)
		n += *p == '\n';
	return n;
}

static void one(char *s)
{
	for (char *p = s; *p; p++)
		if (*p == '\n')
			*p = '|';
}

/* ------------------------------------------------------------------ */
/* SysV IPC */

static void ipc_setup(struct state *s, int set_owner, uid_t uid, gid_t gid)
{
	union semun arg;
	struct msgbuf_ m;

	s->have_ipc = 1;
	s->seed = 0x5eed0000u + (uint64_t)getpid();
	s->shmid = shmget(SHM_KEY, SHM_SIZE, IPC_CREAT | IPC_EXCL | 0640);
	if (s->shmid < 0)
		wl_die("shmget: %s", strerror(errno));
	s->shm_addr = shmat(s->shmid, NULL, 0);
	if (s->shm_addr == (void *)-1)
		wl_die("shmat: %s", strerror(errno));
	memset(s->shm_addr, 0, SHM_SIZE);
	wl_fill(s->shm_addr, SHM_SIZE & ~7, s->seed);
	memcpy(s->shm_addr + (SHM_SIZE & ~7), "tail", 4);

	s->semid = semget(SEM_KEY, NSEMS, IPC_CREAT | IPC_EXCL | 0600);
	if (s->semid < 0)
		wl_die("semget: %s", strerror(errno));
	{
		unsigned short vals[NSEMS] = {1, 7, 300, 32767};
		arg.array = vals;
		if (semctl(s->semid, 0, SETALL, arg))
			wl_die("semctl SETALL: %s", strerror(errno));
	}

	s->msgid = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0620);
	if (s->msgid < 0)
		wl_die("msgget: %s", strerror(errno));
	for (int i = 0; i < 3; i++) {
		m.mtype = msgs[i].type;
		strcpy(m.mtext, msgs[i].text);
		if (msgsnd(s->msgid, &m, strlen(msgs[i].text) + 1, IPC_NOWAIT))
			wl_die("msgsnd: %s", strerror(errno));
	}

	if (set_owner) {
		struct shmid_ds sd;
		struct msqid_ds md;
		shmctl(s->shmid, IPC_STAT, &sd);
		sd.shm_perm.uid = uid;
		sd.shm_perm.gid = gid;
		if (shmctl(s->shmid, IPC_SET, &sd))
			wl_die("shmctl IPC_SET %u:%u: %s", uid, gid, strerror(errno));
		struct semid_ds semd;
		union semun sarg = {.buf = &semd};
		semctl(s->semid, 0, IPC_STAT, sarg);
		semd.sem_perm.uid = uid;
		semd.sem_perm.gid = gid;
		if (semctl(s->semid, 0, IPC_SET, sarg))
			wl_die("semctl IPC_SET %u:%u: %s", uid, gid, strerror(errno));
		msgctl(s->msgid, IPC_STAT, &md);
		md.msg_perm.uid = uid;
		md.msg_perm.gid = gid;
		if (msgctl(s->msgid, IPC_SET, &md))
			wl_die("msgctl IPC_SET %u:%u: %s", uid, gid, strerror(errno));
	}
}

static void ipc_record(struct state *s)
{
	union semun arg;
	if (shmctl(s->shmid, IPC_STAT, &s->shm))
		wl_die("shmctl IPC_STAT: %s", strerror(errno));
	arg.buf = &s->sem;
	if (semctl(s->semid, 0, IPC_STAT, arg))
		wl_die("semctl IPC_STAT: %s", strerror(errno));
	arg.array = s->semvals;
	if (semctl(s->semid, 0, GETALL, arg))
		wl_die("semctl GETALL: %s", strerror(errno));
	if (msgctl(s->msgid, IPC_STAT, &s->msq))
		wl_die("msgctl IPC_STAT: %s", strerror(errno));
	if (s->shm.shm_nattch != 1)
		wl_die("shm nattch %lu", (unsigned long)s->shm.shm_nattch);
	if (s->msq.msg_qnum != 3)
		wl_die("msg qnum %lu", (unsigned long)s->msq.msg_qnum);
	if (s->msq.msg_lspid != getpid() || s->shm.shm_cpid != getpid())
		wl_die("msg lspid %d / shm cpid %d, getpid %d", s->msq.msg_lspid, s->shm.shm_cpid, getpid());
}

#define PERM_EQ(what, a, b)                                                                                   \
	CHECK((a).uid == (b).uid && (a).gid == (b).gid && (a).cuid == (b).cuid && (a).cgid == (b).cgid &&   \
		  (a).mode == (b).mode && (a).__key == (b).__key,                                           \
	      "%s%s perm uid/gid/cuid/cgid/mode/key %u/%u/%u/%u/%#o/%#x, want %u/%u/%u/%u/%#o/%#x", s->who, what, \
	      (a).uid, (a).gid, (a).cuid, (a).cgid, (a).mode, (a).__key, (b).uid, (b).gid, (b).cuid, (b).cgid,   \
	      (b).mode, (b).__key)

static void ipc_check(struct state *s)
{
	struct shmid_ds sd;
	struct semid_ds semd;
	struct msqid_ds md;
	union semun arg;
	unsigned short vals[NSEMS];
	struct msgbuf_ m;
	int id;
	long bad;

	id = shmget(SHM_KEY, 0, 0);
	CHECK(id == s->shmid, "%sshmget(key) = %d (%s), want id %d", s->who, id, id < 0 ? strerror(errno) : "", s->shmid);
	id = semget(SEM_KEY, 0, 0);
	CHECK(id == s->semid, "%ssemget(key) = %d (%s), want id %d", s->who, id, id < 0 ? strerror(errno) : "", s->semid);
	id = msgget(MSG_KEY, 0);
	CHECK(id == s->msgid, "%smsgget(key) = %d (%s), want id %d", s->who, id, id < 0 ? strerror(errno) : "", s->msgid);

	if (shmctl(s->shmid, IPC_STAT, &sd)) {
		wl_fail("%sshmctl(%d, IPC_STAT): %s", s->who, s->shmid, strerror(errno));
	} else {
		PERM_EQ("shm", sd.shm_perm, s->shm.shm_perm);
		CHECK(sd.shm_segsz == s->shm.shm_segsz, "%sshm segsz %zu, want %zu", s->who, sd.shm_segsz, s->shm.shm_segsz);
		CHECK(sd.shm_nattch == 1, "%sshm nattch %lu, want 1 (our mapping)", s->who, (unsigned long)sd.shm_nattch);
		/* pids recorded by the kernel, not settable: reported only */
		if (sd.shm_cpid != s->shm.shm_cpid)
			wl_info("%sshm cpid %d, was %d", s->who, sd.shm_cpid, s->shm.shm_cpid);
	}
	if ((bad = wl_verify(s->shm_addr, SHM_SIZE & ~7, s->seed)) >= 0 || memcmp(s->shm_addr + (SHM_SIZE & ~7), "tail", 4))
		wl_fail("%sattached shm mapping differs (word %ld)", s->who, bad);
	{
		unsigned char *p = shmat(s->shmid, NULL, SHM_RDONLY);
		if (p == (void *)-1) {
			wl_fail("%sshmat(%d): %s", s->who, s->shmid, strerror(errno));
		} else {
			if ((bad = wl_verify(p, SHM_SIZE & ~7, s->seed)) >= 0 || memcmp(p + (SHM_SIZE & ~7), "tail", 4))
				wl_fail("%sshm segment contents differ (new shmat, word %ld)", s->who, bad);
			/* the old mapping and the segment are the same memory */
			s->shm_addr[5] ^= 0xff;
			CHECK(p[5] == s->shm_addr[5], "%sthe attached mapping is not the shm segment (a private copy?)", s->who);
			s->shm_addr[5] ^= 0xff;
			shmdt(p);
		}
	}

	arg.buf = &semd;
	if (semctl(s->semid, 0, IPC_STAT, arg)) {
		wl_fail("%ssemctl(%d, IPC_STAT): %s", s->who, s->semid, strerror(errno));
	} else {
		PERM_EQ("sem", semd.sem_perm, s->sem.sem_perm);
		CHECK(semd.sem_nsems == NSEMS, "%ssem nsems %lu, want %d", s->who, (unsigned long)semd.sem_nsems, NSEMS);
	}
	arg.array = vals;
	if (semctl(s->semid, 0, GETALL, arg))
		wl_fail("%ssemctl GETALL: %s", s->who, strerror(errno));
	else
		CHECK(memcmp(vals, s->semvals, sizeof(vals)) == 0, "%ssem values %u %u %u %u, want %u %u %u %u", s->who,
		      vals[0], vals[1], vals[2], vals[3], s->semvals[0], s->semvals[1], s->semvals[2], s->semvals[3]);

	if (msgctl(s->msgid, IPC_STAT, &md)) {
		wl_fail("%smsgctl(%d, IPC_STAT): %s", s->who, s->msgid, strerror(errno));
	} else {
		PERM_EQ("msg", md.msg_perm, s->msq.msg_perm);
		CHECK(md.msg_qnum == 3 && md.__msg_cbytes == s->msq.__msg_cbytes,
		      "%smsg queue %lu messages %lu bytes, want 3, %lu", s->who, (unsigned long)md.msg_qnum,
		      (unsigned long)md.__msg_cbytes, (unsigned long)s->msq.__msg_cbytes);
		if (md.msg_lspid != s->msq.msg_lspid)
			wl_info("%smsg lspid %d, was %d", s->who, md.msg_lspid, s->msq.msg_lspid);
	}
	/* type 7 first, then the rest in order */
	{
		static const int order[3] = {1, 0, 2};
		for (int k = 0; k < 3; k++) {
			int i = order[k];
			ssize_t n;
			memset(&m, 0, sizeof(m));
			n = msgrcv(s->msgid, &m, sizeof(m.mtext), k == 0 ? 7 : 0, IPC_NOWAIT);
			if (n < 0) {
				wl_fail("%smsgrcv #%d: %s", s->who, k, strerror(errno));
				break;
			}
			CHECK(m.mtype == msgs[i].type && (size_t)n == strlen(msgs[i].text) + 1 && strcmp(m.mtext, msgs[i].text) == 0,
			      "%smessage #%d: type %ld \"%.64s\" (%zd bytes), want type %ld \"%s\"", s->who, k, m.mtype, m.mtext, n,
			      msgs[i].type, msgs[i].text);
		}
	}
}

static void ipc_corrupt(struct state *s)
{
	struct sembuf op = {1, 1, 0};
	struct msgbuf_ m;
	s->shm_addr[100] ^= 1;
	semop(s->semid, &op, 1);
	msgrcv(s->msgid, &m, sizeof(m.mtext), 3, IPC_NOWAIT);
}

/* ------------------------------------------------------------------ */
/* files, mounts, sockets */

static void add_file(struct state *s, const char *name, int chown_it, uid_t uid, gid_t gid)
{
	if (s->nfiles == MAXFILES)
		wl_die("more than %d files", MAXFILES);
	struct filerec *f = &s->files[s->nfiles++];
	int fd = open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		wl_die("create %s: %s", name, strerror(errno));
	if (write(fd, "cryo\n", 5) != 5)
		wl_die("write %s", name);
	if (chown_it && fchown(fd, uid, gid))
		wl_die("fchown %s %u:%u: %s", name, uid, gid, strerror(errno));
	close(fd);
	snprintf(f->name, sizeof(f->name), "%s", name);
}

/* An existing file, to be seen with the owner it has now. */
static void add_existing(struct state *s, const char *name)
{
	if (s->nfiles == MAXFILES)
		wl_die("more than %d files", MAXFILES);
	snprintf(s->files[s->nfiles++].name, sizeof(s->files[0].name), "%s", name);
}

static void files_record(struct state *s)
{
	for (int i = 0; i < s->nfiles; i++) {
		struct stat sb;
		if (lstat(s->files[i].name, &sb))
			wl_die("stat %s: %s", s->files[i].name, strerror(errno));
		s->files[i].uid = sb.st_uid;
		s->files[i].gid = sb.st_gid;
	}
}

static void files_check(struct state *s)
{
	for (int i = 0; i < s->nfiles; i++) {
		struct stat sb;
		if (lstat(s->files[i].name, &sb)) {
			wl_fail("%sstat %s: %s", s->who, s->files[i].name, strerror(errno));
			continue;
		}
		CHECK(sb.st_uid == s->files[i].uid && sb.st_gid == s->files[i].gid, "%s%s is owned by %u:%u inside, want %u:%u",
		      s->who, s->files[i].name, sb.st_uid, sb.st_gid, s->files[i].uid, s->files[i].gid);
	}
}

/* The mountinfo line of mount point dir (relative to cwd), from the 4th field. */
static int mountinfo_of(const char *dir, char *out, size_t size)
{
	char cwd[512], want[600];
	if (!getcwd(cwd, sizeof(cwd)))
		return 0;
	snprintf(want, sizeof(want), "%s/%s", cwd, dir);
	return wl_mountinfo_of(want, out, size);
}

/* subids: the namespace maps the range ids, and tmpfs/sub (0700) with a
 * 0600 file in it is given to 2004:2005, an owner a rootless cryo may not
 * read from outside the namespace. */
static void mounts_setup(struct state *s, int subids)
{
	static const char *dirs[3] = {"tmpfs", "bind", "robind"};
	char big[8192];
	int fd;

	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL))
		wl_die("make / rprivate: %s", strerror(errno));
	if (mkdir("tmpfs", 0755) || mkdir("src", 0755) || mkdir("bind", 0755) || mkdir("robind", 0755))
		wl_die("mkdir: %s", strerror(errno));
	fd = open("src/data", O_WRONLY | O_CREAT | O_EXCL, 0640);
	if (fd < 0 || write(fd, "bound\n", 6) != 6)
		wl_die("src/data: %s", strerror(errno));
	close(fd);
	if (mount("cryo-tmpfs", "tmpfs", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0750"))
		wl_die("mount tmpfs: %s", strerror(errno));
	wl_fill(big, sizeof(big), 0x7e57);
	fd = open("tmpfs/data", O_WRONLY | O_CREAT | O_EXCL, 0600);
	if (fd < 0 || write(fd, big, sizeof(big)) != sizeof(big))
		wl_die("tmpfs/data: %s", strerror(errno));
	close(fd);
	if (mkdir("tmpfs/sub", 0700) || symlink("data", "tmpfs/link"))
		wl_die("tmpfs/sub: %s", strerror(errno));
	if (subids) {
		fd = open("tmpfs/sub/secret", O_WRONLY | O_CREAT | O_EXCL, 0600);
		if (fd < 0 || write(fd, "secret\n", 7) != 7 || fchown(fd, 2004, 2005) || chown("tmpfs/sub", 2004, 2005))
			wl_die("tmpfs/sub/secret: %s", strerror(errno));
		close(fd);
	}
	if (mount("src", "bind", NULL, MS_BIND, NULL) || mount("src", "robind", NULL, MS_BIND, NULL) ||
	    mount(NULL, "robind", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL))
		wl_die("bind mounts: %s", strerror(errno));
	add_existing(s, "tmpfs");
	add_existing(s, "tmpfs/data");
	add_existing(s, "tmpfs/sub");
	if (subids)
		add_existing(s, "tmpfs/sub/secret");
	add_existing(s, "bind/data");
	for (int i = 0; i < 3; i++) {
		snprintf(s->mounts[i].dir, sizeof(s->mounts[i].dir), "%s", dirs[i]);
		if (!mountinfo_of(dirs[i], s->mounts[i].line, sizeof(s->mounts[i].line)))
			wl_die("%s is not in /proc/self/mountinfo", dirs[i]);
	}
	s->nmounts = 3;
}

static void mounts_check(struct state *s)
{
	char buf[8192], line[1024];
	struct stat a, b;
	ssize_t n;
	int fd;

	for (int i = 0; i < s->nmounts; i++) {
		if (!mountinfo_of(s->mounts[i].dir, line, sizeof(line)))
			wl_fail("%s is no mount point any more", s->mounts[i].dir);
		else
			CHECK(strcmp(line, s->mounts[i].line) == 0, "mountinfo of %s: \"%s\", want \"%s\"", s->mounts[i].dir, line,
			      s->mounts[i].line);
	}
	n = wl_read_file("tmpfs/data", buf, sizeof(buf));
	CHECK(n == 8191 && wl_verify(buf, 8184, 0x7e57) < 0, "tmpfs/data: %zd bytes, pattern %s", n,
	      n > 0 && wl_verify(buf, 8184, 0x7e57) < 0 ? "ok" : "differs");
	n = readlink("tmpfs/link", buf, sizeof(buf) - 1);
	CHECK(n == 4 && memcmp(buf, "data", 4) == 0, "tmpfs/link is not a symlink to data");
	CHECK(stat("tmpfs/sub", &a) == 0 && S_ISDIR(a.st_mode) && (a.st_mode & 07777) == 0700, "tmpfs/sub: not a 0700 dir");
	CHECK(stat("tmpfs", &a) == 0 && (a.st_mode & 07777) == 0750, "tmpfs root mode %o, want 0750", a.st_mode & 07777);
	n = wl_read_file("bind/data", buf, sizeof(buf));
	CHECK(n == 6 && memcmp(buf, "bound\n", 6) == 0, "bind/data does not show src/data");
	CHECK(stat("bind/data", &a) == 0 && stat("src/data", &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
	      "bind/data is not src/data");
	fd = open("robind/new", O_WRONLY | O_CREAT, 0600);
	CHECK(fd < 0 && errno == EROFS, "creating robind/new: %s, want EROFS", fd < 0 ? strerror(errno) : "succeeded");
	if (fd >= 0)
		close(fd);
	fd = open("bind/new", O_WRONLY | O_CREAT, 0600);
	CHECK(fd >= 0, "creating bind/new: %s", strerror(errno));
	if (fd >= 0) {
		close(fd);
		CHECK(stat("src/new", &a) == 0, "bind/new did not appear in src");
	}
}

/* Keeps tmpfs/data open: a descriptor on a mount of the namespace's own. */
static void mounts_hold(struct state *s)
{
	s->tmpfs_fd = open("tmpfs/data", O_RDONLY | O_CLOEXEC);
	if (s->tmpfs_fd < 0)
		wl_die("open tmpfs/data: %s", strerror(errno));
}

static void mounts_check_more(struct state *s)
{
	char buf[8192];
	struct stat a, b;
	struct statfs fs;
	ssize_t n;

	CHECK(statfs("tmpfs", &fs) == 0 && fs.f_type == 0x01021994 /* TMPFS_MAGIC */, "statfs(tmpfs): type %#lx, want tmpfs",
	      (unsigned long)fs.f_type);
	if (s->tmpfs_fd < 0)
		return;
	CHECK(fstat(s->tmpfs_fd, &a) == 0 && stat("tmpfs/data", &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev,
	      "the open descriptor is not tmpfs/data");
	/* opened before the forks: the same open file description in the
	 * children (they hold it at the same number) */
	for (int i = 0; getenv("WL_MOUNTS_SHARED") && i < nkids; i++)
		CHECK(syscall(SYS_kcmp, getpid(), kids[i], KCMP_FILE, s->tmpfs_fd, s->tmpfs_fd) == 0,
		      "child %d does not share the open tmpfs/data (kcmp)", kids[i]);
	n = pread(s->tmpfs_fd, buf, sizeof(buf) - 1, 0);
	CHECK(n == 8191 && wl_verify(buf, 8184, 0x7e57) < 0, "the open tmpfs/data: %zd bytes, pattern %s", n,
	      n > 0 && wl_verify(buf, 8184, 0x7e57) < 0 ? "ok" : "differs");
}

static void mounts_corrupt(void)
{
	umount2("bind", MNT_DETACH);
}

static void peer_setup(struct state *s, int i)
{
	socklen_t len = sizeof(struct ucred);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s->peer[i]))
		wl_die("socketpair: %s", strerror(errno));
	if (getsockopt(s->peer[i][1], SOL_SOCKET, SO_PEERCRED, &s->peercred[i], &len))
		wl_die("SO_PEERCRED: %s", strerror(errno));
	s->have_peer = 1;
}

static void peer_check(struct state *s)
{
	for (int i = 0; i < 2; i++) {
		struct ucred c;
		socklen_t len = sizeof(c);
		char b = 0;
		if (getsockopt(s->peer[i][1], SOL_SOCKET, SO_PEERCRED, &c, &len)) {
			wl_fail("socketpair %d: SO_PEERCRED: %s", i, strerror(errno));
			continue;
		}
		CHECK(c.pid == s->peercred[i].pid && c.uid == s->peercred[i].uid && c.gid == s->peercred[i].gid,
		      "socketpair %d: SO_PEERCRED pid/uid/gid %d/%u/%u, want %d/%u/%u", i, c.pid, c.uid, c.gid,
		      s->peercred[i].pid, s->peercred[i].uid, s->peercred[i].gid);
		CHECK(write(s->peer[i][0], "x", 1) == 1 && read(s->peer[i][1], &b, 1) == 1 && b == 'x',
		      "socketpair %d does not carry data", i);
	}
}

/* ------------------------------------------------------------------ */
/* credentials and namespaces */

static void creds_get(struct state *s)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	syscall(SYS_getresuid, &s->r, &s->e, &s->s);
	syscall(SYS_getresgid, &s->rg, &s->eg, &s->sg);
	s->fs = (uid_t)setfsuid(-1);
	s->fsg = (gid_t)setfsgid(-1);
	s->ngroups = getgroups(64, s->groups);
	syscall(SYS_capget, &h, s->cap);
	s->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
}

static uid_t ns_owner(void)
{
	uid_t uid = (uid_t)-2;
	int fd = open("/proc/self/ns/user", O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (ioctl(fd, NS_GET_OWNER_UID, &uid))
			uid = (uid_t)-3;
		close(fd);
	}
	return uid;
}

static void record(struct state *s)
{
	struct stat sb;
	creds_get(s);
	read_map("/proc/self/uid_map", s->uid_map, sizeof(s->uid_map));
	read_map("/proc/self/gid_map", s->gid_map, sizeof(s->gid_map));
	read_map("/proc/self/setgroups", s->setgroups, sizeof(s->setgroups));
	s->setgroups[strcspn(s->setgroups, "\n")] = 0;
	s->owner = ns_owner();
	new_namespaces(s->newns);
	if (!s->newns[NS_USER])
		wl_die("%snot in a user namespace of its own (user ns inode %lu is the test's)", s->who, outer_ns[NS_USER]);
	if (stat("/", &sb) || sb.st_uid != 65534 || sb.st_gid != 65534)
		wl_die("%s/ is owned by %u:%u inside, want 65534:65534 (root unmapped)", s->who, sb.st_uid, sb.st_gid);
	if (s->have_uts) {
		gethostname(s->hostname, sizeof(s->hostname));
		getdomainname(s->domainname, sizeof(s->domainname));
	}
	if (s->have_ipc)
		ipc_record(s);
	files_record(s);
	s->pid = getpid();
	s->ppid = getppid();
}

static void check(struct state *s)
{
	struct state now;
	char buf[4096];
	struct stat sb;

	memset(&now, 0, sizeof(now));
	creds_get(&now);
	CHECK(getpid() == s->pid, "%sgetpid() = %d, want %d", s->who, getpid(), s->pid);
	/* the root's parent is outside the tree (the test, then cryo) */
	if (s->check_ppid)
		CHECK(getppid() == s->ppid, "%sgetppid() = %d, want %d", s->who, getppid(), s->ppid);
	CHECK(now.r == s->r && now.e == s->e && now.s == s->s, "%sgetresuid = %u/%u/%u, want %u/%u/%u", s->who, now.r, now.e,
	      now.s, s->r, s->e, s->s);
	CHECK(now.rg == s->rg && now.eg == s->eg && now.sg == s->sg, "%sgetresgid = %u/%u/%u, want %u/%u/%u", s->who, now.rg,
	      now.eg, now.sg, s->rg, s->eg, s->sg);
	CHECK(now.fs == s->fs && now.fsg == s->fsg, "%sfsuid/fsgid = %u/%u, want %u/%u", s->who, now.fs, now.fsg, s->fs, s->fsg);
	CHECK(now.ngroups == s->ngroups && memcmp(now.groups, s->groups, sizeof(gid_t) * (size_t)(now.ngroups > 0 ? now.ngroups : 0)) == 0,
	      "%sgetgroups: %d groups (first %u), want %d (first %u)", s->who, now.ngroups, now.ngroups > 0 ? now.groups[0] : 0,
	      s->ngroups, s->ngroups > 0 ? s->groups[0] : 0);
	CHECK(memcmp(now.cap, s->cap, sizeof(now.cap)) == 0,
	      "%scaps eff/perm/inh %#x/%#x/%#x %#x/%#x/%#x, want %#x/%#x/%#x %#x/%#x/%#x", s->who, now.cap[0].effective,
	      now.cap[0].permitted, now.cap[0].inheritable, now.cap[1].effective, now.cap[1].permitted,
	      now.cap[1].inheritable, s->cap[0].effective, s->cap[0].permitted, s->cap[0].inheritable,
	      s->cap[1].effective, s->cap[1].permitted, s->cap[1].inheritable);
	CHECK(now.dumpable == s->dumpable, "%sdumpable %d, want %d", s->who, now.dumpable, s->dumpable);

	read_map("/proc/self/uid_map", buf, sizeof(buf));
	if (strcmp(buf, s->uid_map)) {
		one(buf);
		one(s->uid_map);
		wl_fail("%s/proc/self/uid_map \"%s\", want \"%s\"", s->who, buf, s->uid_map);
	}
	read_map("/proc/self/gid_map", buf, sizeof(buf));
	if (strcmp(buf, s->gid_map)) {
		one(buf);
		one(s->gid_map);
		wl_fail("%s/proc/self/gid_map \"%s\", want \"%s\"", s->who, buf, s->gid_map);
	}
	read_map("/proc/self/setgroups", buf, sizeof(buf));
	buf[strcspn(buf, "\n")] = 0;
	CHECK(strcmp(buf, s->setgroups) == 0, "%s/proc/self/setgroups \"%s\", want \"%s\"", s->who, buf, s->setgroups);
	now.owner = ns_owner();
	CHECK(now.owner == s->owner, "%suser namespace owner (NS_GET_OWNER_UID) %u, want %u", s->who, now.owner, s->owner);

	new_namespaces(now.newns);
	for (int i = 0; i < NS_COUNT; i++) {
		if (s->newns[i])
			CHECK(now.newns[i], "%s%s namespace is the test's (initial) one again", s->who, ns_names[i]);
		else if (i != NS_PID) /* a rootless restore may add a pid namespace */
			CHECK(!now.newns[i], "%s%s namespace is a new one, was the test's", s->who, ns_names[i]);
	}
	CHECK(stat("/", &sb) == 0 && sb.st_uid == 65534 && sb.st_gid == 65534, "%s/ is owned by %u:%u inside, want 65534:65534",
	      s->who, sb.st_uid, sb.st_gid);

	if (s->have_uts) {
		char h[65] = "", d[65] = "";
		gethostname(h, sizeof(h));
		getdomainname(d, sizeof(d));
		CHECK(strcmp(h, s->hostname) == 0, "%shostname \"%s\", want \"%s\"", s->who, h, s->hostname);
		CHECK(strcmp(d, s->domainname) == 0, "%sdomainname \"%s\", want \"%s\"", s->who, d, s->domainname);
	}
	if (s->have_ipc)
		ipc_check(s);
	files_check(s);
	if (s->nmounts) {
		mounts_check(s);
		mounts_check_more(s);
	}
	if (s->time.have)
		wl_timens_check(&s->time);
	if (s->have_peer)
		peer_check(s);
}

static void corrupt(struct state *s)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (s->have_uts)
		sethostname("corrupted", 9);
	if (s->have_ipc)
		ipc_corrupt(s);
	if (s->nmounts)
		mounts_corrupt();
	if (s->nfiles && has_cap(CAP_CHOWN) && chown(s->files[0].name, s->files[0].uid, s->files[0].gid + 1))
		wl_info("corrupt: chown: %s", strerror(errno));
	syscall(SYS_capget, &h, d);
	d[0].inheritable ^= 1u << CAP_CHOWN; /* always allowed: drop or add within permitted */
	d[0].inheritable &= d[0].permitted;
	if (d[0].inheritable == s->cap[0].inheritable)
		prctl(PR_SET_DUMPABLE, !s->dumpable, 0, 0, 0);
	syscall(SYS_capset, &h, d);
}

/* Own uid/gid mapped to `inside` (unshare -c: itself; unshare -r: 0). */
static uid_t start_uid;
static gid_t start_gid;

static void map_self(int to_root)
{
	char buf[64];
	uid_t uid = start_uid;
	gid_t gid = start_gid;
	snprintf(buf, sizeof(buf), "%u %u 1\n", to_root ? 0 : uid, uid);
	xwrite_file("/proc/self/uid_map", buf);
	xwrite_file("/proc/self/setgroups", "deny");
	snprintf(buf, sizeof(buf), "%u %u 1\n", to_root ? 0 : gid, gid);
	xwrite_file("/proc/self/gid_map", buf);
}

/* The test writes our maps (multi-range needs CAP_SETUID outside). */
static void map_by_test(void)
{
	printf("MAP pid=%d\n", getpid());
	fflush(stdout);
	wait_nonempty("/proc/self/gid_map"); /* the test writes uid_map first */
	if (getuid() != 0 || getgid() != 0)
		wl_die("after the test wrote the maps: uid %u gid %u inside, want 0 0", getuid(), getgid());
}

/* Switches to ids of the ranges: groups {1, 2002, 2005}, gids 2003/2002/5,
 * uids 2002/2001/0 (saved 0 keeps the permitted capabilities). */
static void switch_range_ids(void)
{
	gid_t groups[3] = {1, 2002, 2005};
	if (setgroups(3, groups))
		wl_die("setgroups: %s", strerror(errno));
	if (setresgid(2003, 2002, 5))
		wl_die("setresgid: %s", strerror(errno));
	if (setresuid(2002, 2001, 0))
		wl_die("setresuid: %s", strerror(errno));
	/* the euid change cleared it */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		wl_die("PR_SET_DUMPABLE: %s", strerror(errno));
}

static void set_uts(struct state *s, const char *host, const char *domain)
{
	if (sethostname(host, strlen(host)) || setdomainname(domain, strlen(domain)))
		wl_die("sethostname: %s", strerror(errno));
	s->have_uts = 1;
}

/* ------------------------------------------------------------------ */
/* children */

static int sync_pipe[2];

/* Waits (10 s) for child pid to exit; returns its exit code or -1. */
static int wait_child(pid_t pid)
{
	int status;
	for (int i = 0; i < 1000; i++) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		if (r < 0 && errno != EINTR) {
			wl_fail("%swaitpid(%d): %s", st.who, pid, strerror(errno));
			return -1;
		}
		wl_msleep(10);
	}
	wl_fail("%schild %d did not exit within 10 s of SIGTERM", st.who, pid);
	return -1;
}

static void stop_kids(void)
{
	for (int i = 0; i < nkids; i++)
		if (kill(kids[i], SIGTERM))
			wl_fail("%skill(child %d): %s", st.who, kids[i], strerror(errno));
	for (int i = 0; i < nkids; i++) {
		int rc = wait_child(kids[i]);
		CHECK(rc == 0, "%schild %d exited with status %d", st.who, kids[i], rc);
	}
}

/* Common end of a child process: wait, check, exit 0/1 (no PASS). */
static __attribute__((noreturn)) void child_finish(void)
{
	wl_wait_stop();
	if (wl_corrupt)
		corrupt(&st);
	check(&st);
	stop_kids();
	fflush(stdout);
	_exit(atomic_load(&wl_fails) ? 1 : 0);
}

static void signal_ready(void)
{
	if (write(sync_pipe[1], "r", 1) != 1)
		wl_die("sync write: %s", strerror(errno));
}

static void wait_ready(int n)
{
	char c;
	for (int i = 0; i < n; i++)
		if (read(sync_pipe[0], &c, 1) != 1)
			wl_die("a child died during setup");
}

/* pid-namespace tree: the procfs is ours, links agree with pid 1's. */
static void pidns_checks(const char *who)
{
	char buf[64], want[32], a[64], b[64];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);
	buf[n < 0 ? 0 : n] = 0;
	snprintf(want, sizeof(want), "%d", getpid());
	CHECK(strcmp(buf, want) == 0, "%s/proc/self -> \"%s\", want \"%s\" (/proc is not this pid namespace's)", who, buf, want);
	for (int i = 0; i < NS_COUNT; i++) {
		char p1[64], p2[64];
		snprintf(p1, sizeof(p1), "/proc/self/ns/%s", ns_names[i]);
		snprintf(p2, sizeof(p2), "/proc/1/ns/%s", ns_names[i]);
		n = readlink(p1, a, sizeof(a) - 1);
		a[n < 0 ? 0 : n] = 0;
		n = readlink(p2, b, sizeof(b) - 1);
		b[n < 0 ? 0 : n] = 0;
		CHECK(n > 0 && strcmp(a, b) == 0, "%s%s namespace %s, pid 1's is %s", who, ns_names[i], a, b);
	}
}

/* A child does not check the SysV objects of its parent. */
static void forget_ipc(void)
{
	if (st.have_ipc)
		shmdt(st.shm_addr);
	st.have_ipc = 0;
}

static __attribute__((noreturn)) void pid_tree_child(int depth)
{
	static char who[32];
	snprintf(who, sizeof(who), "pid %d: ", getpid());
	st.who = who;
	nkids = 0;
	forget_ipc();
	if (depth == 1) {
		pid_t g = fork();
		if (g < 0)
			wl_die("fork: %s", strerror(errno));
		if (g == 0)
			pid_tree_child(2);
		kids[nkids++] = g;
	}
	record(&st);
	st.check_ppid = 1;
	signal_ready();
	close(sync_pipe[0]);
	close(sync_pipe[1]);
	wl_wait_stop();
	if (wl_corrupt)
		corrupt(&st);
	check(&st);
	pidns_checks(who);
	stop_kids();
	fflush(stdout);
	_exit(atomic_load(&wl_fails) ? 1 : 0);
}

static void pid_tree(void)
{
	DIR *d;
	struct dirent *e;
	int seen = 0;

	for (int i = 0; i < 2; i++) {
		pid_t k = fork();
		if (k < 0)
			wl_die("fork: %s", strerror(errno));
		if (k == 0)
			pid_tree_child(1 - i); /* the first forks a grandchild */
		kids[nkids++] = k;
	}
	wait_ready(3);
	/* pid 1 and its 3 descendants, nothing else */
	d = opendir("/proc");
	while (d && (e = readdir(d)))
		if (atoi(e->d_name) > 0)
			seen++;
	if (d)
		closedir(d);
	if (seen != 4)
		wl_die("/proc lists %d processes, want 4", seen);
	wl_info("pid tree: 1 -> %d (-> grandchild), %d", kids[0], kids[1]);
}

/* nested: ns2 child; the parent (root of ns1) writes its maps */
static __attribute__((noreturn)) void nested_child(int go_fd)
{
	char c;
	forget_ipc();
	memset(&st, 0, sizeof(st));
	st.who = "ns2 child: ";
	if (unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWUTS))
		wl_die("ns2: unshare: %s", strerror(errno));
	signal_ready();
	if (read(go_fd, &c, 1) != 1)
		wl_die("ns2: parent died");
	close(go_fd);
	if (getuid() != 10 || getgid() != 10)
		wl_die("ns2: uid %u gid %u inside, want 10 10 (4242 is 0 in ns1, 10 in ns2)", getuid(), getgid());
	set_uts(&st, "cryo-ns2", "ns2.example");
	ipc_setup(&st, 1, 7, 8);
	add_file(&st, "ns2-plain", 0, 0, 0);      /* 10:10 inside, 4242 outside */
	add_file(&st, "ns2-chowned", 1, 7, 8);    /* ns1 2007:2008, outside 101007:101008 */
	add_existing(&st, "ns1-plain");           /* ns1 0:0 = 10:10 here */
	add_existing(&st, "ns1-chowned");         /* ns1 2004:2005 = 4:5 here */
	add_existing(&st, ".");                   /* 4242 = ns1 0 = 10 here */
	if (setresgid(1, 2, 3) || setresuid(4, 5, 10))
		wl_die("ns2: setres[ug]id: %s", strerror(errno));
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	record(&st);
	st.check_ppid = 1;
	if (st.ngroups != 1 || st.groups[0] != 10)
		wl_die("ns2: %d groups (first %u), want {10} (4242 seen from ns2)", st.ngroups, st.ngroups ? st.groups[0] : 0);
	signal_ready();
	close(sync_pipe[0]);
	close(sync_pipe[1]);
	child_finish();
}

static void nested_parent(void)
{
	int go[2];
	char path[64];
	pid_t k;
	struct stat sb;

	if (pipe(go))
		wl_die("pipe: %s", strerror(errno));
	k = fork();
	if (k < 0)
		wl_die("fork: %s", strerror(errno));
	if (k == 0) {
		close(go[1]);
		nested_child(go[0]);
	}
	close(go[0]);
	kids[nkids++] = k;
	wait_ready(1);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", k);
	xwrite_file(path, "0 2000 10\n10 0 1\n");
	snprintf(path, sizeof(path), "/proc/%d/setgroups", k);
	xwrite_file(path, "deny");
	snprintf(path, sizeof(path), "/proc/%d/gid_map", k);
	xwrite_file(path, "0 2000 10\n10 0 1\n");
	if (write(go[1], "g", 1) != 1)
		wl_die("go: %s", strerror(errno));
	close(go[1]);
	wait_ready(1);
	/* the child's files seen from ns1 */
	if (stat("ns2-chowned", &sb) || sb.st_uid != 2007 || sb.st_gid != 2008)
		wl_die("ns2-chowned is %u:%u in ns1, want 2007:2008", sb.st_uid, sb.st_gid);
	add_existing(&st, "ns2-plain");
	add_existing(&st, "ns2-chowned");
}

/* the child's maps as the parent (ns1) sees them */
static char kid_maps[2][256];
static void read_kid_maps(char out[2][256])
{
	/* The child's entry in /proc, which counts pids in the pid namespace
	 * it was mounted for: after a rootless restore the tree is in a new
	 * one, where the child's pid names another process of that /proc.
	 * The one child this thread has is listed there in /proc's numbers. */
	char path[64], buf[64];
	pid_t kid = kids[0];
	int n;
	if (wl_read_file("/proc/thread-self/children", buf, sizeof(buf)) > 0 && sscanf(buf, "%d %n", &kid, &n) == 1 &&
	    buf[n] != '\0')
		kid = kids[0]; /* more than one: keep our own number */
	snprintf(path, sizeof(path), "/proc/%d/uid_map", kid);
	read_map(path, out[0], 256);
	snprintf(path, sizeof(path), "/proc/%d/gid_map", kid);
	read_map(path, out[1], 256);
}

/* ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
	int ipc = 0, uts = 0, nested = 0, nested_mnt = 0, pidtree = 0, range = 0, peer = 0;

	wl_init(argc, argv);
	start_uid = getuid();
	start_gid = getgid();
	mode = wl_mode;
	st.who = "";
	st.tmpfs_fd = -1;
	read_outer_ns();
	if (pipe2(sync_pipe, O_CLOEXEC))
		wl_die("pipe: %s", strerror(errno));

	if (!strcmp(mode, "own") || !strcmp(mode, "root")) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWUTS))
			wl_die("unshare: %s", strerror(errno));
		map_self(!strcmp(mode, "root"));
		ipc = uts = 1;
	} else if (!strcmp(mode, "range") || !strcmp(mode, "peercred") || !strcmp(mode, "nested")) {
		nested = !strcmp(mode, "nested");
		nested_mnt = nested && getenv("WL_MOUNTS");
		if (unshare(CLONE_NEWUSER | CLONE_NEWIPC | CLONE_NEWUTS | (nested_mnt ? CLONE_NEWNS : 0)))
			wl_die("unshare: %s", strerror(errno));
		map_by_test();
		ipc = uts = 1;
		peer = !strcmp(mode, "peercred");
		range = !nested;
	} else if (!strcmp(mode, "mnt")) {
		if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS))
			wl_die("unshare: %s", strerror(errno));
		map_self(1);
		ipc = uts = 1;
	} else if (!strcmp(mode, "inherit")) {
		int n[NS_COUNT];
		char map[4096];
		new_namespaces(n);
		ipc = n[NS_IPC];
		uts = n[NS_UTS] && has_cap(CAP_SYS_ADMIN);
		read_map("/proc/self/uid_map", map, sizeof(map));
		range = map_lines(map) > 1 && has_cap(CAP_SETUID);
		pidtree = getpid() == 1;
		peer = pidtree; /* SO_PEERCRED names pid 1 inside */
		if (n[NS_PID] && !pidtree)
			wl_die("in a new pid namespace but pid %d, not 1 (unshare without -f?)", getpid());
	} else {
		wl_die("unknown mode '%s' (own, root, range, peercred, nested, mnt, inherit)", mode);
	}

	if (uts)
		set_uts(&st, nested ? "cryo-ns1" : "cryo-userns", "userns.example");
	if (ipc)
		ipc_setup(&st, range || nested, 2001, 2002);
	/* created with the ids we have now (0 in the root, range, nested and
	 * mnt modes, 4242 in own), then one chowned into the ranges */
	add_file(&st, nested ? "ns1-plain" : "plain", 0, 0, 0);
	if (range || nested)
		add_file(&st, nested ? "ns1-chowned" : "chowned", 1, 2004, 2005);
	add_existing(&st, "."); /* the start directory, 4242:4242 outside */
	if (!strcmp(mode, "mnt") || nested_mnt || (!strcmp(mode, "inherit") && getenv("WL_MOUNTS")))
		mounts_setup(&st, range || nested);
	if (peer)
		peer_setup(&st, 0);
	if (range)
		switch_range_ids();
	if (peer)
		peer_setup(&st, 1);
	if (nested)
		nested_parent();
	if (st.nmounts && getenv("WL_MOUNTS_SHARED"))
		mounts_hold(&st); /* before the forks: the children share it */
	if (pidtree)
		pid_tree();
	if (st.nmounts && st.tmpfs_fd < 0)
		mounts_hold(&st); /* after the forks: pid 1's own descriptor */
	wl_timens_record(&st.time);
	close(sync_pipe[0]);
	close(sync_pipe[1]);
	record(&st);
	if (nested)
		read_kid_maps(kid_maps);
	{
		char u[4096], g[4096];
		snprintf(u, sizeof(u), "%s", st.uid_map);
		snprintf(g, sizeof(g), "%s", st.gid_map);
		one(u);
		one(g);
		wl_info("uid %u/%u/%u gid %u/%u/%u uid_map \"%s\" gid_map \"%s\" setgroups %s owner %u", st.r, st.e, st.s, st.rg,
			st.eg, st.sg, u, g, st.setgroups, st.owner);
	}
	wl_ready();
	wl_wait_stop();

	if (wl_corrupt)
		corrupt(&st);
	wl_check_ids(0);
	check(&st);
	if (pidtree)
		pidns_checks("pid 1: ");
	if (nested) {
		char now[2][256];
		read_kid_maps(now);
		CHECK(strcmp(now[0], kid_maps[0]) == 0 && strcmp(now[1], kid_maps[1]) == 0,
		      "the ns2 child's maps seen from ns1 changed");
	}
	stop_kids();
	return wl_finish();
}
