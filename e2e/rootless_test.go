package e2e

// Rootless runs of the ordinary workloads: started by the test user in
// user and IPC namespaces of its own (unshare -r -i), dumped and restored
// by that user. The tree comes back in a new pid namespace under cryo's
// init, where every process has its old PID, and checks itself as after
// any restore.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestE2ERootlessWorkloads: the workloads of the root-run tests (their
// modes as subtest names), each dumped and restored by the test user:
// trees with sessions, zombies, a subreaper's orphan, pipes and shared
// files; anonymous shared memory (read without /proc/PID/map_files, which
// needs CAP_CHECKPOINT_RESTORE), a memfd and a /dev/shm file; signals,
// threads, memory, registers; eventfd, timerfd, signalfd, itimers; Unix
// socket queues; files; blocked system calls; credentials and attributes.
// Not here: inotify (finding a watched file by its handle needs
// CAP_DAC_READ_SEARCH: the dump refuses it in one line), and the POSIX
// timers workload, which compares /proc/self/timers, where the host's
// /proc shows the new outer PID.
func TestE2ERootlessWorkloads(t *testing.T) {
	for _, run := range []string{
		"tree_basic", "tree_zombie", "tree_orphan subreaper", "tree_pipe", "tree_files", "tree_shm",
		"signals", "threads", "memory", "regs gpr", "regs sse",
		"fdkinds eventfd", "fdkinds timerfd", "fdkinds signalfd", "fdkinds itimers", "fdkinds shared",
		"unix_queues", "files", "blocked", "attrs", "inet_udp",
	} {
		f := strings.Fields(run)
		t.Run(strings.Join(f, "-"), func(t *testing.T) { runRootlessWorkload(t, rootlessOwnUID, f[0], f[1:]...) })
	}
}

// TestE2ERootlessSubIDWorkloads: workloads of TestE2ERootlessWorkloads
// run as uid and gid 1000 inside a user namespace that maps the user's
// subordinate ids (rootlessSubIDs), dumped and restored by the user: their
// /proc files, pipes, shared memory and files are another user's seen from
// the initial namespace, which the dump reaches through an agent in their
// namespace.
func TestE2ERootlessSubIDWorkloads(t *testing.T) {
	for _, run := range []string{
		"tree_basic", "tree_zombie", "tree_orphan subreaper", "tree_pipe", "tree_files", "tree_shm",
		"signals", "threads", "memory", "regs gpr", "regs sse",
		"fdkinds eventfd", "fdkinds timerfd", "fdkinds signalfd", "fdkinds itimers", "fdkinds shared",
		"unix_queues", "files", "blocked", "attrs", "inet_udp", "tree_pty shared",
	} {
		f := strings.Fields(run)
		t.Run(strings.Join(f, "-"), func(t *testing.T) { runRootlessWorkload(t, rootlessSubIDs, f[0], f[1:]...) })
	}
}

// TestE2ERootlessSubIDStickyDir: tree_shm as in TestE2ERootlessSubIDWorkloads,
// in a directory like /tmp (root's, mode 1777): its deleted file, put back
// for the restore, has a subordinate owner then, and only that owner (or
// root) may unlink it there, which cryo does from inside the namespace;
// the workload checks that nothing is left at its path.
func TestE2ERootlessSubIDStickyDir(t *testing.T) {
	runRootlessWorkload(t, rootlessSubIDsSticky, "tree_shm")
}

// A rootlessLayout is how the test user starts a workload for a rootless
// dump and restore: a command prefix that execs it, and the owner and mode
// of the workload's directory.
type rootlessLayout struct {
	prefix  []string
	dirUID  int
	dirMode os.FileMode
}

// subIDWorkloadUID is the host uid of uid 1000 under rootlessSubIDs.
const subIDWorkloadUID = subIDFirst + 999

var (
	// root inside a user namespace of its own (unshare -r -i)
	rootlessOwnUID = rootlessLayout{[]string{"unshare", "-r", "-i"}, testUID, 0o755}
	// uid and gid 1000 in a namespace that maps 0 to the user and 1-65535
	// to its subordinate ids 100000-165534 (newuidmap writes the map), so
	// that the workload runs under host ids 100999, in a directory of its
	// own that cryo's user may not enter
	rootlessSubIDs = rootlessLayout{[]string{"unshare", "--map-user=0", "--map-group=0", "--map-users=100000,1,65535", "--map-groups=100000,1,65535", "-i",
		"setpriv", "--reuid=1000", "--regid=1000", "--clear-groups"}, subIDWorkloadUID, 0o700}
	// the same in a sticky directory of root's, as /tmp
	rootlessSubIDsSticky = rootlessLayout{rootlessSubIDs.prefix, 0, os.ModeSticky | 0o777}
)

func runRootlessWorkload(t *testing.T, how rootlessLayout, name string, args ...string) {
	w := rootlessDump(t, how, name, args...)
	if noCR {
		return
	}
	old := w.Pid
	w.rst, w.rstOut, w.rstErr = usernsRestoreAs(t, testUserCred(), w.ImgDir)
	// The root, at its old PID inside a new pid namespace, running and
	// untraced.
	w.Pid = -1
	for deadline := time.Now().Add(bound(t, restoreReadyTimeout)); w.Pid < 0; time.Sleep(pollInterval) {
		if w.rst.Exited() || time.Now().After(deadline) {
			w.logAll()
			t.Fatalf("no restored process of %s is pid %d inside its pid namespace (cryo restore exited: %v)", name, old, w.rst.Exited())
		}
		for _, pid := range allPids() {
			st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == w.Bin && pid != old && nsInnerPid(pid) == old &&
				st["TracerPid"] == "0" && st["State"] != "" && strings.ContainsAny(st["State"][:1], "RS") {
				w.Pid = pid
			}
		}
	}
	checkPidnsInit(t, w.Pid)
	// cryo restore waits for the tree through the init, and exits as its
	// root did.
	if err := unix.Kill(w.Pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !w.rst.Wait(bound(t, finishTimeout)) {
		w.logAll()
		t.Fatalf("cryo restore did not exit within %v of the SIGTERM to the restored root %d", finishTimeout, w.Pid)
	}
	w.verdict(w.rst.ExitCode(), true)
}

// rootlessDump starts workload name as the test user under how (a command
// prefix that execs it: rootlessOwnUID, rootlessSubIDs), waits for READY
// and dumps it as that user into w.ImgDir; the original is gone then.
// With noCR it only checks the workload's own verdict.
func rootlessDump(t *testing.T, how rootlessLayout, name string, args ...string) *Workload {
	requireRoot(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	bin, err := filepath.EvalSymlinks(workloadBin(t, name, linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	requireUserCanExec(t, bin)
	w := &Workload{t: t, Name: name, Bin: bin, Args: args, Dir: usernsDir(t, how.dirMode)}
	if err := os.Chown(w.Dir, how.dirUID, how.dirUID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(w.Dir, how.dirMode); err != nil {
		t.Fatal(err)
	}
	w.Out = filepath.Join(filepath.Dir(w.Dir), "output.txt")
	// The user may not enter a directory of the workload's: env, run with
	// the workload's ids, changes into it and execs the workload.
	argv := append(slices.Clone(how.prefix), "env", "--chdir="+w.Dir, bin)
	cmd := userCommand(t, filepath.Dir(w.Dir), w.Out, append(argv, args...)...)
	t.Cleanup(w.cleanup)
	if w.orig, err = startBg(t, "workload "+name, cmd); err != nil {
		t.Fatal(err)
	}
	w.Pid = w.orig.Pid() // unshare (and setpriv) exec the workload
	for deadline := time.Now().Add(bound(t, readyTimeout)); readyRe.FindString(w.Output()) == ""; {
		if w.orig.Exited() || time.Now().After(deadline) {
			t.Fatalf("%s did not print READY (exited %v); output:\n%s", name, w.orig.Exited(), clip(w.Output(), 8000))
		}
		time.Sleep(pollInterval)
	}
	if noCR {
		w.Finish()
		return w
	}
	w.ImgDir = usernsDir(t, 0o700)
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(w.Pid), "-D", w.ImgDir, "-v", "4", "-o", "dump.log")
	if res.ExitCode != 0 {
		w.logAll()
		t.Fatalf("rootless dump: %s", res)
	}
	w.reapOriginal()
	return w
}
