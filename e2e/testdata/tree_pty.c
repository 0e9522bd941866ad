/*
 * tree_pty: a pseudo-terminal pair owned by the tree.
 *
 *   root  opens a master (posix_openpt), unlocks it, puts it in packet mode
 *         (TIOCPKT), keeps it at fd 20 and a dup at fd 21 (one open file
 *         description)
 *   +-- S setsid(), opens the slave at fd 10 (it becomes S's controlling
 *         terminal: S leads a session with none), a second open of it at
 *         fd 11 with O_NONBLOCK; sets raw mode with some c_cc changed, a
 *         window size, TIOCEXCL
 *       +-- G its own process group (setpgid), made the foreground group
 *             of the terminal (tcsetpgrp), holds the slave inherited and
 *             /dev/tty (its controlling terminal, the slave) at fd 12
 *
 * Before READY each process records what it sees; after SIGTERM each checks
 * it again:
 *   root  ptsname and TIOCGPTN of the master, TIOCGPKT, TIOCGPTLCK
 *         (unlocked), O_NONBLOCK set through fd 21 shows on fd 20;
 *   S     ttyname of fds 10 and 11, getsid, tcgetsid, tcgetpgrp (G),
 *         tcgetattr (every flag and c_cc), TIOCGWINSZ, TIOCGEXCL, the
 *         flags of fd 11, /proc/self/stat tty_nr and tpgid, /dev/tty opens;
 *   G     tty_nr, tpgid (itself), tcgetpgrp; fd 12 is /dev/tty (5:0).
 * Then bytes must flow both ways: G writes a line on /dev/tty, the root
 * reads it from the master (after packet mode's leading 0 byte), writes an
 * answer, and G reads it from the slave.
 *
 * Modes "queued-in" and "queued-out": before READY the root writes a line
 * on the master that nobody reads (queued-in), or G writes one on the slave
 * that the root does not read (queued-out). After SIGTERM the queued line
 * is read first, where it waited: by G before anything else (queued-in),
 * by the root before G's new line (queued-out).
 *
 * Mode "shared": S does not make the slave exclusive (TIOCEXCL), for a
 * tree run without CAP_SYS_ADMIN, where G could not open /dev/tty then.
 */
#include "wl.h"
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <termios.h>

#define MASTER_FD 20
#define MASTER_DUP 21
#define SLAVE_FD 10
#define SLAVE_FD2 11
#define DEVTTY_FD 12
#define PING "ping from G\n"
#define PONG "pong from root\n"
#define QUEUED_IN "queued by root\n"
#define QUEUED_OUT "queued by G\n"

static char slave_path[64];
static struct termios want_tio;
static struct winsize want_ws = {.ws_row = 37, .ws_col = 123, .ws_xpixel = 5, .ws_ypixel = 9};
static int want_ptn;
static pid_t g_pid;
static int queued_in, queued_out, shared;

/* Fields 1 (pid), 5 (pgrp), 7 (tty_nr) and 8 (tpgid) of /proc/self/stat. */
static void stat_tty(int *pid, int *pgrp, int *tty_nr, int *tpgid)
{
	char buf[1024];
	*pid = *pgrp = *tty_nr = *tpgid = -1;
	if (wl_read_file("/proc/self/stat", buf, sizeof(buf)) <= 0)
		return;
	sscanf(buf, "%d", pid);
	char *p = strrchr(buf, ')');
	if (p)
		sscanf(p + 2, "%*c %*d %d %*d %d %d", pgrp, tty_nr, tpgid);
}

static int want_tty_nr, want_tpgid;

static void record_stat(void)
{
	int pid, pgrp;
	stat_tty(&pid, &pgrp, &want_tty_nr, &want_tpgid);
}

/* After a rootless restore the tree is in a new pid namespace while /proc
 * is still the host's, which names the foreground group by its host PID:
 * then only G, the foreground group's leader, can tell it, by its own
 * group as /proc shows it. */
static void check_stat(int is_g)
{
	int pid, pgrp, nr, tp;
	stat_tty(&pid, &pgrp, &nr, &tp);
	if (wl_corrupt)
		nr++;
	int want_tp = want_tpgid, tp_ok = tp == want_tpgid;
	if (pid != getpid()) {
		want_tp = is_g ? pgrp : -1; /* S: another group than its own */
		tp_ok = is_g ? tp == pgrp : tp > 0 && tp != pgrp;
	}
	TCHECK(nr == want_tty_nr && tp_ok, "/proc/self/stat tty_nr %#x tpgid %d, want %#x and %d", nr, tp, want_tty_nr,
	       want_tp);
}

/* Waits (at most ms) until fd is readable; 0 if it is. */
static int await_input(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	do
		r = poll(&p, 1, ms);
	while (r < 0 && errno == EINTR);
	return r == 1 ? 0 : -1;
}

/* Reads exactly n bytes (each within 5 s). */
static int read_full(int fd, char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		if (await_input(fd, 5000))
			return -1;
		ssize_t r = read(fd, buf + got, n - got);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

/* Reads n bytes of data from a master in packet mode: each read gives a
 * 0 byte then data, or a lone status byte (skipped). */
static int read_packets(int fd, char *buf, size_t n)
{
	char pkt[256];
	size_t got = 0;
	while (got < n) {
		if (await_input(fd, 5000))
			return -1;
		ssize_t r = read(fd, pkt, sizeof(pkt));
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0 || (pkt[0] == 0 && (size_t)(r - 1) > n - got))
			return -1;
		if (pkt[0] == 0) {
			memcpy(buf + got, pkt + 1, (size_t)(r - 1));
			got += (size_t)(r - 1);
		}
	}
	return 0;
}

/* Drops the status packets (TIOCPKT_NOSTOP...) S's settings raised. */
static void drain_status(int fd)
{
	char pkt[256];
	while (await_input(fd, 0) == 0 && read(fd, pkt, sizeof(pkt)) > 0)
		if (pkt[0] == 0)
			wl_die("root: unexpected data on the master");
}

static void grandchild(void)
{
	char buf[64] = {0};
	struct stat st;
	int fd = open("/dev/tty", O_RDWR);
	if (fd < 0 || dup2(fd, DEVTTY_FD) != DEVTTY_FD)
		wl_die("G: open /dev/tty: %s", strerror(errno));
	close(fd);
	wl_tree_line();
	record_stat();
	wl_mark("G");
	if (queued_out) {
		wl_wait_mark("drained");
		if (write(SLAVE_FD, QUEUED_OUT, strlen(QUEUED_OUT)) != (ssize_t)strlen(QUEUED_OUT))
			wl_die("G: write: %s", strerror(errno));
		wl_mark("G.queued");
	}
	wl_tree_wait_stop();
	if (queued_in)
		TCHECK(read_full(SLAVE_FD, buf, strlen(QUEUED_IN)) == 0 && strcmp(buf, QUEUED_IN) == 0,
		       "the queued line on the slave: got \"%s\", want \"%s\"", buf, QUEUED_IN);
	memset(buf, 0, sizeof(buf));
	wl_tree_check_ids();
	check_stat(1);
	TCHECK(tcgetpgrp(SLAVE_FD) == getpid(), "tcgetpgrp %d, want G's own group %d", (int)tcgetpgrp(SLAVE_FD),
	       (int)getpid());
	TCHECK(fstat(DEVTTY_FD, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(5, 0),
	       "fd %d is not /dev/tty (rdev %#lx)", DEVTTY_FD, (unsigned long)st.st_rdev);
	TCHECK(tcgetpgrp(DEVTTY_FD) == getpid(), "tcgetpgrp through /dev/tty %d, want %d", (int)tcgetpgrp(DEVTTY_FD),
	       (int)getpid());
	wl_mark("G.checked");
	TCHECK(write(DEVTTY_FD, PING, strlen(PING)) == (ssize_t)strlen(PING), "write on /dev/tty: %s", strerror(errno));
	TCHECK(read_full(SLAVE_FD, buf, strlen(PONG)) == 0 && memcmp(buf, PONG, strlen(PONG)) == 0,
	       "read on the slave: got \"%s\", want \"%s\"", buf, PONG);
	wl_child_exit();
}

static void check_session_leader(void)
{
	struct termios tio;
	struct winsize ws;
	int excl = -1, fl;
	char *name;
	if (wl_corrupt)
		want_ws.ws_col++;
	name = ttyname(SLAVE_FD);
	TCHECK(name && strcmp(name, slave_path) == 0, "ttyname(%d) = %s, want %s", SLAVE_FD, name ? name : "(none)",
	       slave_path);
	name = ttyname(SLAVE_FD2);
	TCHECK(name && strcmp(name, slave_path) == 0, "ttyname(%d) = %s, want %s", SLAVE_FD2, name ? name : "(none)",
	       slave_path);
	TCHECK(tcgetsid(SLAVE_FD) == getpid(), "tcgetsid %d, want %d", (int)tcgetsid(SLAVE_FD), (int)getpid());
	TCHECK(tcgetpgrp(SLAVE_FD) == g_pid, "tcgetpgrp %d, want G's group %d", (int)tcgetpgrp(SLAVE_FD), (int)g_pid);
	memset(&tio, 0, sizeof(tio));
	TCHECK(tcgetattr(SLAVE_FD, &tio) == 0, "tcgetattr: %s", strerror(errno));
	TCHECK(tio.c_iflag == want_tio.c_iflag && tio.c_oflag == want_tio.c_oflag && tio.c_cflag == want_tio.c_cflag &&
	           tio.c_lflag == want_tio.c_lflag && tio.c_line == want_tio.c_line,
	       "termios flags i %#x o %#x c %#x l %#x line %d, want %#x %#x %#x %#x %d", tio.c_iflag, tio.c_oflag,
	       tio.c_cflag, tio.c_lflag, tio.c_line, want_tio.c_iflag, want_tio.c_oflag, want_tio.c_cflag,
	       want_tio.c_lflag, want_tio.c_line);
	for (int i = 0; i < NCCS && i < 19; i++)
		TCHECK(tio.c_cc[i] == want_tio.c_cc[i], "c_cc[%d] = %#x, want %#x", i, tio.c_cc[i], want_tio.c_cc[i]);
	TCHECK(ioctl(SLAVE_FD, TIOCGWINSZ, &ws) == 0 && ws.ws_row == want_ws.ws_row && ws.ws_col == want_ws.ws_col &&
	           ws.ws_xpixel == want_ws.ws_xpixel && ws.ws_ypixel == want_ws.ws_ypixel,
	       "window size %dx%d (%dx%d px), want %dx%d (%dx%d px)", ws.ws_row, ws.ws_col, ws.ws_xpixel, ws.ws_ypixel,
	       want_ws.ws_row, want_ws.ws_col, want_ws.ws_xpixel, want_ws.ws_ypixel);
	TCHECK(ioctl(SLAVE_FD, TIOCGEXCL, &excl) == 0 && excl == !shared, "TIOCGEXCL %d, want %d", excl, !shared);
	fl = fcntl(SLAVE_FD2, F_GETFL);
	TCHECK(fl >= 0 && (fl & O_NONBLOCK) && (fl & O_ACCMODE) == O_RDWR, "fd %d flags %#x, want O_RDWR|O_NONBLOCK",
	       SLAVE_FD2, fl);
	fl = fcntl(SLAVE_FD, F_GETFL);
	TCHECK(fl >= 0 && !(fl & O_NONBLOCK), "fd %d flags %#x, want no O_NONBLOCK (another open file)", SLAVE_FD, fl);
	int t = open("/dev/tty", O_RDWR | O_CLOEXEC);
	TCHECK(t >= 0, "open /dev/tty: %s (no controlling terminal)", strerror(errno));
	if (t >= 0)
		close(t);
	check_stat(0);
}

static void session_leader(void)
{
	pid_t g;
	if (setsid() < 0)
		wl_die("S: setsid: %s", strerror(errno));
	int fd = open(slave_path, O_RDWR);
	if (fd < 0 || dup2(fd, SLAVE_FD) != SLAVE_FD)
		wl_die("S: open %s: %s", slave_path, strerror(errno));
	close(fd);
	fd = open(slave_path, O_RDWR | O_NONBLOCK | O_NOCTTY);
	if (fd < 0 || dup2(fd, SLAVE_FD2) != SLAVE_FD2)
		wl_die("S: open %s again: %s", slave_path, strerror(errno));
	close(fd);
	if (tcgetsid(SLAVE_FD) != getpid())
		wl_die("S: %s did not become the controlling terminal", slave_path);
	if (tcgetattr(SLAVE_FD, &want_tio))
		wl_die("S: tcgetattr: %s", strerror(errno));
	cfmakeraw(&want_tio);
	want_tio.c_cc[VMIN] = 1;
	want_tio.c_cc[VTIME] = 0;
	want_tio.c_cc[VINTR] = 0x01;
	want_tio.c_cc[VKILL] = 0x02;
	want_tio.c_cc[VWERASE] = 0x0e;
	want_tio.c_lflag |= IEXTEN;
	if (tcsetattr(SLAVE_FD, TCSANOW, &want_tio) || tcgetattr(SLAVE_FD, &want_tio))
		wl_die("S: tcsetattr: %s", strerror(errno));
	if (ioctl(SLAVE_FD, TIOCSWINSZ, &want_ws) || (!shared && ioctl(SLAVE_FD, TIOCEXCL)))
		wl_die("S: TIOCSWINSZ/TIOCEXCL: %s", strerror(errno));
	if ((g = wl_fork("G")) == 0) {
		if (setpgid(0, 0))
			wl_die("G: setpgid: %s", strerror(errno));
		grandchild();
	}
	setpgid(g, g);
	g_pid = g;
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(SLAVE_FD, g))
		wl_die("S: tcsetpgrp: %s", strerror(errno));
	wl_wait_mark("G");
	wl_tree_line();
	record_stat();
	wl_mark("S");
	wl_tree_wait_stop();
	kill(g, SIGTERM);
	wl_tree_check_ids();
	check_session_leader();
	wl_reap_ok(g, "G");
	wl_check_no_children();
	wl_child_exit();
}

int main(int argc, char **argv)
{
	pid_t s;
	int pkt = -1, lck = -1, n = -1, fl;
	char buf[64] = {0};

	wl_init(argc, argv);
	wl_exp_pid = getpid();
	wl_clear_marks();
	queued_in = strcmp(wl_mode, "queued-in") == 0;
	queued_out = strcmp(wl_mode, "queued-out") == 0;
	shared = strcmp(wl_mode, "shared") == 0;
	if ((wl_mode[0] && !queued_in && !queued_out && !shared) || wl_nthreads != 1)
		wl_die("tree_pty takes no threads and no mode but queued-in, queued-out or shared");
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) || unlockpt(m) || dup2(m, MASTER_FD) != MASTER_FD || dup2(m, MASTER_DUP) != MASTER_DUP)
		wl_die("open a pty master: %s", strerror(errno));
	close(m);
	snprintf(slave_path, sizeof(slave_path), "%s", ptsname(MASTER_FD));
	if (ioctl(MASTER_FD, TIOCGPTN, &want_ptn))
		wl_die("TIOCGPTN: %s", strerror(errno));
	int one = 1;
	if (ioctl(MASTER_FD, TIOCPKT, &one))
		wl_die("TIOCPKT: %s", strerror(errno));
	if ((s = wl_fork("S")) == 0)
		session_leader();
	wl_wait_mark("S");
	drain_status(MASTER_FD);
	wl_mark("drained");
	if (queued_out) {
		wl_wait_mark("G.queued");
		if (await_input(MASTER_FD, 5000))
			wl_die("root: G's queued line did not reach the master");
	}
	if (queued_in) {
		if (write(MASTER_FD, QUEUED_IN, strlen(QUEUED_IN)) != (ssize_t)strlen(QUEUED_IN))
			wl_die("root: write: %s", strerror(errno));
		/* Until it reached the slave's line discipline (root may
		 * open an exclusive terminal). */
		int sl = open(slave_path, O_RDWR | O_NOCTTY | O_CLOEXEC);
		if (sl < 0 || await_input(sl, 5000))
			wl_die("root: the queued line did not reach the slave: %s", strerror(errno));
		close(sl);
	}
	wl_tree_line();
	wl_ready();
	wl_tree_wait_stop();

	kill(s, SIGTERM);
	wl_check_ids(0);
	wl_tree_check_ids();
	char *name = ptsname(MASTER_FD);
	TCHECK(name && strcmp(name, slave_path) == 0, "ptsname %s, want %s", name ? name : "(none)", slave_path);
	TCHECK(ioctl(MASTER_FD, TIOCGPTN, &n) == 0 && n == want_ptn, "TIOCGPTN %d, want %d", n, want_ptn);
	TCHECK(ioctl(MASTER_FD, TIOCGPKT, &pkt) == 0 && pkt == 1, "TIOCGPKT %d, want 1 (packet mode)", pkt);
	TCHECK(ioctl(MASTER_FD, TIOCGPTLCK, &lck) == 0 && lck == 0, "TIOCGPTLCK %d, want 0 (unlocked)", lck);
	fcntl(MASTER_DUP, F_SETFL, O_NONBLOCK);
	fl = fcntl(MASTER_FD, F_GETFL);
	TCHECK(fl >= 0 && (fl & O_NONBLOCK), "O_NONBLOCK set on fd %d is not on fd %d: not one open file", MASTER_DUP,
	       MASTER_FD);
	const char *want = queued_out ? QUEUED_OUT PING : PING;
	TCHECK(read_packets(MASTER_FD, buf, strlen(want)) == 0 && memcmp(buf, want, strlen(want)) == 0,
	       "read on the master: got \"%s\", want \"%s\"", buf, want);
	TCHECK(write(MASTER_FD, PONG, strlen(PONG)) == (ssize_t)strlen(PONG), "write on the master: %s",
	       strerror(errno));
	wl_reap_ok(s, "S");
	wl_check_no_children();
	return wl_finish();
}
