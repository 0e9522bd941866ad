package e2e

// User namespaces: trees started by a normal user (cryotest, uid/gid 4242,
// subordinate ids 100000-165535) inside user namespaces of their own, with
// the IPC, UTS, mount and PID namespaces around them. Root dumps and
// restores them from the initial namespaces (TestE2EUserns*), or the user
// who owns the namespaces does (TestE2EUsernsRootless*). Workload:
// testdata/userns.c; see README.md for what each test checks.

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// The normal user the trees run as. Created by ensureTestUser.
const (
	testUserName = "cryotest"
	testUID      = 4242
	testGID      = 4242
	subIDFirst   = 100000 // /etc/subuid, /etc/subgid: cryotest:100000:65536
	subIDCount   = 65536
)

// The multi-range maps the test (root, as newuidmap would) writes for the
// range, peercred and nested modes: 0 is the user, 1-999 and 2000-2999 come
// from its subordinate ids, 1000-1999 stay unmapped.
const usernsRangeMap = "0 4242 1\n1 100000 999\n2000 101000 1000\n"

// ioctls on namespace files (linux/nsfs.h).
const (
	nsGetParent   = 0xb702
	nsGetOwnerUID = 0xb704
)

var nsTypes = []string{"user", "pid", "ipc", "uts", "mnt", "time"}

// ---------------------------------------------------------------------------
// The test user

var (
	testUserOnce sync.Once
	testUserErr  error
)

// ensureTestUser creates, once and idempotently, the group and user
// cryotest (4242:4242, no home, nologin) and its subordinate id ranges.
// It fails the test if uid or gid 4242 belong to someone else.
func ensureTestUser(t *testing.T) {
	t.Helper()
	requireRoot(t)
	testUserOnce.Do(func() { testUserErr = setupTestUser() })
	if testUserErr != nil {
		t.Fatalf("test user %s (%d:%d): %v", testUserName, testUID, testGID, testUserErr)
	}
}

func setupTestUser() error {
	if g, err := user.LookupGroupId(strconv.Itoa(testGID)); err == nil {
		if g.Name != testUserName {
			return fmt.Errorf("gid %d belongs to group %q", testGID, g.Name)
		}
	} else if g, err := user.LookupGroup(testUserName); err == nil {
		return fmt.Errorf("group %s exists with gid %s", testUserName, g.Gid)
	} else if err := runSbin("groupadd", "-g", strconv.Itoa(testGID), testUserName); err != nil {
		return err
	}
	if u, err := user.LookupId(strconv.Itoa(testUID)); err == nil {
		if u.Username != testUserName || u.Gid != strconv.Itoa(testGID) {
			return fmt.Errorf("uid %d belongs to %q (gid %s)", testUID, u.Username, u.Gid)
		}
	} else if u, err := user.Lookup(testUserName); err == nil {
		return fmt.Errorf("user %s exists with uid %s", testUserName, u.Uid)
	} else if err := runSbin("useradd", "-u", strconv.Itoa(testUID), "-g", strconv.Itoa(testGID), "-M", "-N",
		"-d", "/nonexistent", "-s", "/usr/sbin/nologin", testUserName); err != nil {
		return err
	}
	last := strconv.Itoa(subIDFirst + subIDCount - 1)
	for _, f := range []struct{ file, flag string }{{"/etc/subuid", "--add-subuids"}, {"/etc/subgid", "--add-subgids"}} {
		if hasSubIDs(f.file) {
			continue
		}
		if err := runSbin("usermod", f.flag, strconv.Itoa(subIDFirst)+"-"+last, testUserName); err != nil {
			return err
		}
		if !hasSubIDs(f.file) {
			return fmt.Errorf("%s has no range %d-%s for %s after usermod", f.file, subIDFirst, last, testUserName)
		}
	}
	return nil
}

// hasSubIDs reports whether file (/etc/subuid or /etc/subgid) gives
// cryotest the ids subIDFirst..+subIDCount.
func hasSubIDs(file string) bool {
	return slices.ContainsFunc(subIDRanges(file), func(r [2]int) bool {
		return r[0] <= subIDFirst && r[0]+r[1] >= subIDFirst+subIDCount
	})
}

// subIDRanges lists the ranges (first, count) file (/etc/subuid or
// /etc/subgid) gives cryotest.
func subIDRanges(file string) [][2]int {
	var ranges [][2]int
	data, _ := os.ReadFile(file)
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) != 3 || (f[0] != testUserName && f[0] != strconv.Itoa(testUID)) {
			continue
		}
		start, err1 := strconv.Atoi(f[1])
		n, err2 := strconv.Atoi(f[2])
		if err1 == nil && err2 == nil {
			ranges = append(ranges, [2]int{start, n})
		}
	}
	return ranges
}

func runSbin(name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		path = "/usr/sbin/" + name
	}
	out, err := exec.Command(path, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func testUserCred() *syscall.Credential {
	return &syscall.Credential{Uid: testUID, Gid: testGID, Groups: []uint32{testGID}}
}

// usernsDir makes a directory the test user can reach (its parents are
// 0755), owned by the user with mode perm, removed after the test.
func usernsDir(t *testing.T, perm os.FileMode) string {
	t.Helper()
	base, err := os.MkdirTemp("", "cryo-userns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(base, "d")
	if err := os.Mkdir(dir, perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, testUID, testGID); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
	return dir
}

// userCommand is argv run as the test user in dir, in its own session,
// with stdin /dev/null and stdout and stderr appended to out, a file the
// user owns as in a real session (a rootless restore opens it again as
// that user).
func userCommand(t *testing.T, dir, out string, argv ...string) *exec.Cmd {
	t.Helper()
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	if err := f.Chown(testUID, testGID); err != nil {
		t.Fatal(err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: testUserCred()}
	return cmd
}

// requireUserCanExec fails the test if the test user cannot execute path
// (every directory above it and the file need the "other" x bit).
func requireUserCanExec(t *testing.T, path string) {
	t.Helper()
	for p := path; ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			t.Fatalf("%s (uid %d) cannot execute %s: %s is mode %v; put the binary where others can run it (%s=...)",
				testUserName, testUID, path, p, fi.Mode(), envCryoBin)
		}
		if p == "/" {
			return
		}
	}
}

// ---------------------------------------------------------------------------
// Scenarios

// nsProcWant is what the test expects to see of a process from outside
// before the dump (the kernel's behaviour; "" = not checked). Maps are
// normalised: one space between fields, "\n" after each line.
type nsProcWant struct {
	uidMap, gidMap, setgroups string
	uid, gid, groups          string // /proc/PID/status fields, blanks collapsed
}

// nsFileWant is the owner of a file in the start directory as seen from
// outside after the workload finished.
type nsFileWant struct {
	name     string
	uid, gid int
}

type usernsScenario struct {
	bin       string   // the workload (testdata/BIN.c); "" is userns
	mode      string   // workload mode ("inherit" under unshare)
	unshare   []string // if set: `unshare ARGS... userns inherit`
	writeMaps bool     // the test writes usernsRangeMap when the workload prints MAP
	env       []string // added to the workload's environment
	mounts    bool     // the tree mounts a tmpfs and binds (mnt mode, WL_MOUNTS)
	pidns     bool     // the tree root is pid 1 of its pid namespace, the launcher's child
	procs     int      // processes in the tree
	want      []nsProcWant
	files     []nsFileWant
	// the tree lives in the initial pid namespace: a rootless restore
	// cannot choose its PID there (see usernsRunRootless)
	initPidNS bool
}

var (
	usernsWantOwn  = nsProcWant{"4242 4242 1\n", "4242 4242 1\n", "deny", "4242 4242 4242 4242", "4242 4242 4242 4242", "4242"}
	usernsWantRoot = nsProcWant{"0 4242 1\n", "0 4242 1\n", "deny", "4242 4242 4242 4242", "4242 4242 4242 4242", "4242"}
	// range mode: uids 2002/2001/0, gids 2003/2002/5, groups {1,2002,2005}
	usernsWantRange = nsProcWant{usernsRangeMap, usernsRangeMap, "allow", "101002 101001 4242 101001", "101003 101002 100004 101002",
		"100000 101002 101005"}
	usernsPlainFile = nsFileWant{"plain", testUID, testGID}
)

var usernsScenarioNestedWant = []nsProcWant{
	{usernsRangeMap, usernsRangeMap, "allow", "4242 4242 4242 4242", "4242 4242 4242 4242", "4242"},
	// ns2's map seen from the initial namespace: composed with ns1's
	{"0 101000 10\n10 4242 1\n", "0 101000 10\n10 4242 1\n", "deny", "101004 101005 4242 101005",
		"101001 101002 101003 101002", "4242"},
}

var usernsScenarios = map[string]usernsScenario{
	// unshare -c -i, done by the workload itself
	"own": {mode: "own", procs: 1, initPidNS: true, want: []nsProcWant{usernsWantOwn}, files: []nsFileWant{usernsPlainFile}},
	// unshare -r -i, done by the workload itself
	"root": {mode: "root", procs: 1, initPidNS: true, want: []nsProcWant{usernsWantRoot}, files: []nsFileWant{usernsPlainFile}},
	// unshare --map-users: a multi-range map, written by root
	"range": {mode: "range", writeMaps: true, procs: 1, initPidNS: true, want: []nsProcWant{usernsWantRange},
		files: []nsFileWant{usernsPlainFile, {"chowned", 101004, 101005}}},
	"peercred": {mode: "peercred", writeMaps: true, procs: 1, initPidNS: true, want: []nsProcWant{usernsWantRange},
		files: []nsFileWant{usernsPlainFile, {"chowned", 101004, 101005}}},
	// ns1 (range map) holds the root; its child is in ns2, nested in ns1
	"nested": {mode: "nested", writeMaps: true, procs: 2, initPidNS: true,
		want: usernsScenarioNestedWant,
		files: []nsFileWant{{"ns1-plain", testUID, testGID}, {"ns1-chowned", 101004, 101005},
			{"ns2-plain", testUID, testGID}, {"ns2-chowned", 101007, 101008}}},
	// nested, with a mount namespace owned by ns1 and its mounts, which
	// the child in ns2 shares
	"nested-mnt": {mode: "nested", env: []string{"WL_MOUNTS=1"}, mounts: true, writeMaps: true, procs: 2, initPidNS: true,
		want: usernsScenarioNestedWant,
		files: []nsFileWant{{"ns1-plain", testUID, testGID}, {"ns1-chowned", 101004, 101005},
			{"ns2-plain", testUID, testGID}, {"ns2-chowned", 101007, 101008}, {"src/new", testUID, testGID}}},
	"mnt": {mode: "mnt", mounts: true, procs: 1, initPidNS: true, want: []nsProcWant{usernsWantRoot},
		files: []nsFileWant{usernsPlainFile, {"src/new", testUID, testGID}}},

	// the real unshare(1)
	"unshare-c-i": {mode: "inherit", unshare: []string{"-c", "-i"}, procs: 1, initPidNS: true,
		want: []nsProcWant{usernsWantOwn}, files: []nsFileWant{usernsPlainFile}},
	"unshare-r-i": {mode: "inherit", unshare: []string{"-r", "-i"}, procs: 1, initPidNS: true,
		want: []nsProcWant{usernsWantRoot}, files: []nsFileWant{usernsPlainFile}},
	// newuidmap/newgidmap (package uidmap) write these maps
	"unshare-map-users": {mode: "inherit", procs: 1, initPidNS: true,
		unshare: []string{"--map-user=0", "--map-group=0", "--map-users=100000,1,65535", "--map-groups=100000,1,65535", "-i", "-u"},
		want: []nsProcWant{{"0 4242 1\n1 100000 65535\n", "0 4242 1\n1 100000 65535\n", "allow",
			"102001 102000 4242 102000", "102002 102001 100004 102001", "100000 102001 102004"}},
		files: []nsFileWant{usernsPlainFile, {"chowned", 102003, 102004}}},
	// pid 1 of its own pid namespace with its own /proc, two children and
	// a grandchild
	"unshare-Urpf": {mode: "inherit", unshare: []string{"-U", "-r", "-p", "-f", "--mount-proc", "-i", "-u"}, pidns: true, procs: 4,
		want: []nsProcWant{usernsWantRoot, usernsWantRoot, usernsWantRoot, usernsWantRoot}, files: []nsFileWant{usernsPlainFile}},
	// the same with the workload's tmpfs and bind mounts, made by pid 1
	// before it forks (the children share them)
	"unshare-Urmpf-mounts": {mode: "inherit", unshare: []string{"-U", "-r", "-m", "-p", "-f", "--mount-proc", "-i", "-u"},
		env: []string{"WL_MOUNTS=1"}, mounts: true, pidns: true, procs: 4,
		want:  []nsProcWant{usernsWantRoot, usernsWantRoot, usernsWantRoot, usernsWantRoot},
		files: []nsFileWant{usernsPlainFile, {"src/new", testUID, testGID}}},
	// the same with the descriptor on tmpfs/data opened before the forks:
	// shared by the four processes
	"unshare-Urmpf-shared": {mode: "inherit", unshare: []string{"-U", "-r", "-m", "-p", "-f", "--mount-proc", "-i", "-u"},
		env: []string{"WL_MOUNTS=1", "WL_MOUNTS_SHARED=1"}, mounts: true, pidns: true, procs: 4,
		want:  []nsProcWant{usernsWantRoot, usernsWantRoot, usernsWantRoot, usernsWantRoot},
		files: []nsFileWant{usernsPlainFile, {"src/new", testUID, testGID}}},
	// pid 1 of its pid namespace, with its children, in a time namespace
	"unshare-UrmpfT": {mode: "inherit", unshare: []string{"-U", "-r", "-m", "-p", "-f", "--mount-proc", "-T", "--monotonic=8640000",
		"--boottime=17280000", "-i", "-u"}, pidns: true, procs: 4,
		want: []nsProcWant{usernsWantRoot, usernsWantRoot, usernsWantRoot, usernsWantRoot}, files: []nsFileWant{usernsPlainFile}},
	// a time namespace with clock offsets (100 and 200 days), owned by the
	// user namespace, with a mount namespace that only inherits
	"unshare-UrmT": {mode: "inherit", unshare: []string{"-U", "-r", "-m", "-T", "--monotonic=8640000", "--boottime=17280000", "-i"},
		procs: 1, initPidNS: true, want: []nsProcWant{usernsWantRoot}, files: []nsFileWant{usernsPlainFile}},
}

// ---------------------------------------------------------------------------
// Starting a tree as the test user

// nsRun is one started tree: the Workload (whose Pid is the tree's root as
// seen from outside) plus what the userns tests need.
type nsRun struct {
	*Workload
	sc       usernsScenario
	launcher *bgProc // w.orig: the workload itself, or unshare(1)
	innerPid int     // the root's pid in its own pid namespace
	before   nsTreeView
}

var (
	nsMapRe   = regexp.MustCompile(`(?m)^MAP pid=(\d+)$`)
	nsSpaceRe = regexp.MustCompile(`\s+`)
)

// nsOuterEnv is CRYO_E2E_OUTER_NS: the test's own namespaces, which the
// workload's must not be.
func nsOuterEnv(t *testing.T) string {
	t.Helper()
	var parts []string
	for _, ns := range nsTypes {
		ino, err := nsInodeOf("self", ns)
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s:%d", ns, ino))
	}
	return strings.Join(parts, " ")
}

func nsInodeOf(pid, ns string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%s/ns/%s", pid, ns), &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// startUserns starts the scenario's tree as the test user and waits for
// READY (writing the maps first if the scenario asks for it), then records
// the outside view and checks it against sc.want.
func startUserns(t *testing.T, sc usernsScenario) *nsRun {
	t.Helper()
	ensureTestUser(t)
	name := "userns"
	if sc.bin != "" {
		name = sc.bin
	}
	bin := workloadBin(t, name, linkDynamic)
	requireUserCanExec(t, bin)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{real}, strings.Fields(sc.mode)...)
	if sc.unshare != nil {
		unsharePath, err := exec.LookPath("unshare")
		if err != nil {
			t.Fatalf("unshare(1) (util-linux) is needed: %v", err)
		}
		if slices.ContainsFunc(sc.unshare, func(a string) bool { return strings.HasPrefix(a, "--map-users") }) {
			for _, helper := range []string{"newuidmap", "newgidmap"} {
				if _, err := exec.LookPath(helper); err != nil {
					t.Fatalf("unshare --map-users needs %s (Debian package uidmap; scripts/install-test-deps.sh): %v", helper, err)
				}
			}
		}
		argv = append(append([]string{unsharePath}, sc.unshare...), argv...)
	}
	w := &Workload{t: t, Name: "userns", Bin: real, Args: argv[1:], Dir: usernsDir(t, 0o755)}
	w.Out = filepath.Join(filepath.Dir(w.Dir), "output.txt")
	cmd := userCommand(t, w.Dir, w.Out, argv...)
	cmd.Env = append(os.Environ(), "CRYO_E2E_MARKER=environ-of-userns", "CRYO_E2E_OUTER_NS="+nsOuterEnv(t))
	cmd.Env = append(cmd.Env, sc.env...)
	if corrupt {
		cmd.Env = append(cmd.Env, "WL_CORRUPT=1")
	}
	t.Cleanup(w.cleanup)
	w.orig, err = startBg(t, "userns "+sc.mode, cmd)
	if err != nil {
		t.Fatalf("cannot start %v: %v", argv, err)
	}
	r := &nsRun{Workload: w, sc: sc, launcher: w.orig}
	launcherPid := w.orig.Pid()
	// Runs before w.cleanup (which kills the root): the root's descendants
	// go first, so that a test failing halfway leaves no tree behind.
	t.Cleanup(func() { nsKillDescendants(w.Pid, w.Bin) })

	mapped := false
	deadline := time.Now().Add(bound(t, readyTimeout))
	var m []string
	for {
		text := readString(w.Out)
		if mm := nsMapRe.FindStringSubmatch(text); mm != nil && sc.writeMaps && !mapped {
			if mm[1] != strconv.Itoa(launcherPid) {
				t.Fatalf("workload asks for maps of pid %s, it is %d", mm[1], launcherPid)
			}
			nsWriteIDMaps(t, launcherPid, usernsRangeMap, usernsRangeMap)
			mapped = true
		}
		if m = readyRe.FindStringSubmatch(text); m != nil {
			break
		}
		if line := findLine(text, "SKIP: "); line != "" {
			w.orig.Wait(killTimeout)
			t.Skipf("userns: %s", line)
		}
		if w.orig.Exited() {
			t.Fatalf("%v exited (status %d) before READY; output:\n%s", argv, w.orig.ExitCode(), clip(text, 8000))
		}
		if time.Now().After(deadline) {
			hung()
			t.Fatalf("%v did not print READY in time; output:\n%s", argv, clip(text, 8000))
		}
		time.Sleep(pollInterval)
	}
	r.innerPid, _ = strconv.Atoi(m[1])
	if sc.pidns {
		if r.innerPid != 1 {
			t.Fatalf("the workload is pid %d in its pid namespace, want 1", r.innerPid)
		}
		w.Pid = nsFindChild(launcherPid, real)
		if w.Pid <= 0 {
			t.Fatalf("no child of %d runs %s", launcherPid, real)
		}
	} else {
		if r.innerPid != launcherPid {
			t.Fatalf("the workload says pid %d, it is %d", r.innerPid, launcherPid)
		}
		w.Pid = launcherPid
	}
	w.Tids = procTids(w.Pid)
	if n := len(strings.Split(m[2], ",")); n != len(w.Tids) {
		t.Fatalf("READY lists %d threads, /proc/%d/task %d", n, w.Pid, len(w.Tids))
	}
	t.Logf("%s: READY, root pid %d (inner %d)", strings.Join(argv, " "), w.Pid, r.innerPid)
	r.before = r.view(t, "before the dump")
	r.checkWant(t)
	return r
}

// nsWriteIDMaps writes uid_map, then gid_map, of pid (each in one write).
func nsWriteIDMaps(t *testing.T, pid int, uidMap, gidMap string) {
	t.Helper()
	for _, f := range []struct{ name, text string }{{"uid_map", uidMap}, {"gid_map", gidMap}} {
		path := fmt.Sprintf("/proc/%d/%s", pid, f.name)
		fd, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = fd.Write([]byte(f.text))
		fd.Close()
		if err != nil {
			t.Fatalf("write %q to %s: %v", f.text, path, err)
		}
	}
}

// nsFindChild returns the child of ppid whose exe is bin, or -1.
func nsFindChild(ppid int, bin string) int {
	for _, pid := range nsChildren(ppid) {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == bin {
			return pid
		}
	}
	return -1
}

// nsKillDescendants SIGKILLs the processes of bin below pid (bounded wait);
// our zombie children among them are reaped later by the harness.
func nsKillDescendants(pid int, bin string) {
	var all []int
	var walk func(p, depth int)
	walk = func(p, depth int) {
		for _, k := range nsChildren(p) {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", k)); exe == bin && depth < 16 {
				all = append(all, k)
				walk(k, depth+1)
			}
		}
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != bin {
		return
	}
	walk(pid, 0)
	for _, k := range all {
		_ = unix.Kill(k, unix.SIGKILL)
	}
	deadline := time.Now().Add(killTimeout)
	for _, k := range all {
		for pidAlive(k) && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
	}
}

func nsChildren(pid int) []int {
	var kids []int
	for _, tid := range procTids(pid) {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, tid))
		for _, f := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(f); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// ---------------------------------------------------------------------------
// The outside view

// nsProcView is one process of the tree as the test (initial namespaces)
// sees it.
type nsProcView struct {
	Pid                       int
	NSpid                     []int // outermost first; the last is the pid inside
	UIDMap, GIDMap, Setgroups string
	UID, GID, Groups          string
	NewNS                     map[string]bool // not the test's namespace
	UsernsOwners              []int           // NS_GET_OWNER_UID from its userns up to the test's
	PidnsOwnedByOwnUserns     bool
}

// nsTreeView is the tree in pre-order (children ordered by their inner pid)
// and, per namespace type, which processes share one (the index of the
// first process in the same namespace).
type nsTreeView struct {
	Procs []nsProcView
	Share map[string][]int
}

func (r *nsRun) view(t *testing.T, when string) nsTreeView {
	t.Helper()
	var tv nsTreeView
	var walk func(pid int)
	walk = func(pid int) {
		tv.Procs = append(tv.Procs, nsProcViewOf(t, pid))
		kids := nsChildren(pid)
		slices.SortFunc(kids, func(a, b int) int { return nsInnerPid(a) - nsInnerPid(b) })
		for _, k := range kids {
			walk(k)
		}
	}
	walk(r.Pid)
	if len(tv.Procs) != r.sc.procs {
		t.Fatalf("%s: the tree of %d has %d processes, want %d", when, r.Pid, len(tv.Procs), r.sc.procs)
	}
	tv.Share = map[string][]int{}
	for _, ns := range nsTypes {
		first := map[uint64]int{}
		for i, p := range tv.Procs {
			ino, err := nsInodeOf(strconv.Itoa(p.Pid), ns)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if _, ok := first[ino]; !ok {
				first[ino] = i
			}
			tv.Share[ns] = append(tv.Share[ns], first[ino])
		}
	}
	return tv
}

func nsInnerPid(pid int) int {
	f := nsSpaceRe.Split(strings.TrimSpace(procStatus(fmt.Sprintf("/proc/%d/status", pid))["NSpid"]), -1)
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

func nsNormMap(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			b.WriteString(strings.Join(f, " ") + "\n")
		}
	}
	return b.String()
}

func nsProcViewOf(t *testing.T, pid int) nsProcView {
	t.Helper()
	p := nsProcView{Pid: pid, NewNS: map[string]bool{}}
	st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
	if st["NSpid"] == "" {
		t.Fatalf("no /proc/%d/status", pid)
	}
	for _, f := range strings.Fields(st["NSpid"]) {
		n, _ := strconv.Atoi(f)
		p.NSpid = append(p.NSpid, n)
	}
	p.UID = strings.Join(strings.Fields(st["Uid"]), " ")
	p.GID = strings.Join(strings.Fields(st["Gid"]), " ")
	p.Groups = strings.Join(strings.Fields(st["Groups"]), " ")
	p.UIDMap = nsNormMap(readString(fmt.Sprintf("/proc/%d/uid_map", pid)))
	p.GIDMap = nsNormMap(readString(fmt.Sprintf("/proc/%d/gid_map", pid)))
	p.Setgroups = strings.TrimSpace(readString(fmt.Sprintf("/proc/%d/setgroups", pid)))
	for _, ns := range nsTypes {
		mine, err1 := nsInodeOf("self", ns)
		its, err2 := nsInodeOf(strconv.Itoa(pid), ns)
		if err1 != nil || err2 != nil {
			t.Fatalf("namespaces of %d: %v %v", pid, err1, err2)
		}
		p.NewNS[ns] = mine != its
	}
	owners, err := nsUsernsOwners(pid)
	if err != nil {
		t.Fatalf("user namespaces of %d: %v", pid, err)
	}
	p.UsernsOwners = owners
	p.PidnsOwnedByOwnUserns, err = nsPidnsOwnedByOwnUserns(pid)
	if err != nil {
		t.Fatalf("pid namespace of %d: %v", pid, err)
	}
	return p
}

// nsUsernsOwners walks from pid's user namespace up to the test's and
// returns each one's owner uid (as the test sees it).
func nsUsernsOwners(pid int) ([]int, error) {
	mine, err := nsInodeOf("self", "user")
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	var owners []int
	for i := 0; i < 40; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, err
		}
		if st.Ino == mine {
			unix.Close(fd)
			return owners, nil
		}
		var uid uint32
		if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), nsGetOwnerUID, uintptr(unsafe.Pointer(&uid))); e != 0 {
			unix.Close(fd)
			return nil, fmt.Errorf("NS_GET_OWNER_UID: %v", e)
		}
		owners = append(owners, int(uid))
		parent, err := unix.IoctlRetInt(fd, nsGetParent)
		unix.Close(fd)
		if err != nil {
			return nil, fmt.Errorf("NS_GET_PARENT: %v", err)
		}
		fd = parent
	}
	unix.Close(fd)
	return nil, errors.New("user namespaces nested more than 40 deep")
}

func nsPidnsOwnedByOwnUserns(pid int) (bool, error) {
	owner, err := userns.OwnerOf(pid, "pid")
	if err != nil {
		return false, err
	}
	own, err := nsInodeOf(strconv.Itoa(pid), "user")
	return owner == own, err
}

// checkWant checks the outside view before the dump against what the
// kernel is expected to show for the scenario.
func (r *nsRun) checkWant(t *testing.T) {
	t.Helper()
	for i, want := range r.sc.want {
		p := r.before.Procs[i]
		for _, c := range []struct{ what, got, want string }{
			{"uid_map", p.UIDMap, want.uidMap}, {"gid_map", p.GIDMap, want.gidMap}, {"setgroups", p.Setgroups, want.setgroups},
			{"status Uid", p.UID, want.uid}, {"status Gid", p.GID, want.gid}, {"status Groups", p.Groups, want.groups},
		} {
			if c.want != "" && c.got != c.want {
				t.Errorf("before the dump, process #%d (pid %d): %s is %q, want %q", i, p.Pid, c.what, c.got, c.want)
			}
		}
		if !p.NewNS["user"] {
			t.Errorf("before the dump, process #%d (pid %d) is in the test's user namespace", i, p.Pid)
		}
		if owners := p.UsernsOwners; len(owners) == 0 || owners[len(owners)-1] != testUID {
			t.Errorf("before the dump, process #%d (pid %d): user namespace owners %v, want the outermost owned by %d",
				i, p.Pid, owners, testUID)
		}
		if r.sc.pidns != p.NewNS["pid"] || r.sc.pidns != p.PidnsOwnedByOwnUserns {
			t.Errorf("before the dump, process #%d (pid %d): new pid namespace %v, owned by its user namespace %v; want %v",
				i, p.Pid, p.NewNS["pid"], p.PidnsOwnedByOwnUserns, r.sc.pidns)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// nsCompareViews checks the tree after restore against before. With
// pidMoved (a rootless restore into a new pid namespace) only the inner
// pids must match and the pid namespaces are not compared.
func nsCompareViews(t *testing.T, before, after nsTreeView, pidMoved bool) {
	t.Helper()
	if len(after.Procs) != len(before.Procs) {
		t.Errorf("after restore the tree has %d processes, want %d", len(after.Procs), len(before.Procs))
		return
	}
	for i, b := range before.Procs {
		a := after.Procs[i]
		what := fmt.Sprintf("after restore, process #%d (NSpid %v, was %v)", i, a.NSpid, b.NSpid)
		if pidMoved {
			if a.NSpid[len(a.NSpid)-1] != b.NSpid[len(b.NSpid)-1] {
				t.Errorf("%s: pid inside %d, want %d", what, a.NSpid[len(a.NSpid)-1], b.NSpid[len(b.NSpid)-1])
			}
		} else if !slices.Equal(a.NSpid, b.NSpid) {
			t.Errorf("%s: NSpid differs", what)
		}
		for _, c := range []struct{ name, a, b string }{
			{"uid_map", a.UIDMap, b.UIDMap}, {"gid_map", a.GIDMap, b.GIDMap}, {"setgroups", a.Setgroups, b.Setgroups},
			{"status Uid", a.UID, b.UID}, {"status Gid", a.GID, b.GID}, {"status Groups", a.Groups, b.Groups},
		} {
			if c.a != c.b {
				t.Errorf("%s: %s %q, want %q", what, c.name, c.a, c.b)
			}
		}
		for _, ns := range nsTypes {
			if ns == "pid" && pidMoved {
				continue
			}
			if a.NewNS[ns] != b.NewNS[ns] {
				t.Errorf("%s: %s namespace is new: %v, want %v", what, ns, a.NewNS[ns], b.NewNS[ns])
			}
		}
		if !slices.Equal(a.UsernsOwners, b.UsernsOwners) {
			t.Errorf("%s: user namespace owners (innermost first) %v, want %v", what, a.UsernsOwners, b.UsernsOwners)
		}
		if !pidMoved && a.PidnsOwnedByOwnUserns != b.PidnsOwnedByOwnUserns {
			t.Errorf("%s: pid namespace owned by its user namespace %v, want %v", what, a.PidnsOwnedByOwnUserns, b.PidnsOwnedByOwnUserns)
		}
	}
	for _, ns := range nsTypes {
		if ns == "pid" && pidMoved {
			continue
		}
		if !slices.Equal(after.Share[ns], before.Share[ns]) {
			t.Errorf("after restore, %s namespaces shared as %v (index of the first process in each), want %v", ns, after.Share[ns], before.Share[ns])
		}
	}
}

// checkFiles checks the owners (outside view) of the files the tree made,
// and that nothing mounted inside shows outside.
func (r *nsRun) checkFiles(t *testing.T) {
	t.Helper()
	if corrupt {
		return // the damage may include a chown
	}
	for _, f := range r.sc.files {
		var st unix.Stat_t
		path := filepath.Join(r.Dir, f.name)
		if err := unix.Lstat(path, &st); err != nil {
			t.Errorf("outside: %v", err)
			continue
		}
		if int(st.Uid) != f.uid || int(st.Gid) != f.gid {
			t.Errorf("outside: %s is owned by %d:%d, want %d:%d", f.name, st.Uid, st.Gid, f.uid, f.gid)
		}
	}
	if r.sc.mounts {
		if _, err := os.Lstat(filepath.Join(r.Dir, "tmpfs", "data")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("outside: tmpfs/data is visible (%v): the tmpfs leaked out of the mount namespace", err)
		}
		if mi := readString("/proc/self/mountinfo"); strings.Contains(mi, r.Dir) {
			t.Errorf("outside: the test's mountinfo mentions %s", r.Dir)
		}
	}
}

// ---------------------------------------------------------------------------
// Flows

// reapTree waits, after a dump that killed the tree, for the launcher to
// exit (the workload: killed by SIGKILL; unshare(1): however it reports its
// child's SIGKILL) and for the root's PID to be free.
func (r *nsRun) reapTree() {
	t := r.t
	t.Helper()
	if !r.sc.pidns {
		r.reapOriginal()
	} else {
		if !r.launcher.Wait(bound(t, killTimeout)) {
			t.Fatalf("unshare (pid %d) still runs after cryo dump killed its child %d", r.launcher.Pid(), r.Pid)
		}
		if out := r.Output(); findLine(out, "PASS") != "" || findLine(out, "FAIL") != "" {
			t.Errorf("the original tree ran its checks before dump killed it; output:\n%s", clip(out, 4000))
		}
	}
	// every PID of the tree (children orphaned to the test, a subreaper,
	// are reaped here)
	for _, p := range r.before.Procs {
		if err := waitPidFree(p.Pid, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}
}

// usernsRunAsRoot: start as the test user, dump and restore as root, compare
// the outside view, finish with PASS, check file owners.
func usernsRunAsRoot(t *testing.T, name string) {
	sc := usernsScenarios[name]
	r := startUserns(t, sc)
	if !noCR {
		r.ImgDir = filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(r.ImgDir, 0o700); err != nil {
			t.Fatal(err)
		}
		dump(t, r.Pid, r.ImgDir)
		r.reapTree()
		r.Restore()
		checkRootIdsBySetTid(t, r.ImgDir, r.Pid)
	}
	after := r.view(t, "after restore")
	nsCompareViews(t, r.before, after, false)
	r.Finish()
	r.checkFiles(t)
}

// usernsRunRootless: start as the test user; dump and restore as that user.
//
// What a rootless cryo does where the kernel forbids it something
// (choosing a PID in the initial pid namespace needs CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE there):
//   - a tree with no user namespace of its own: the dump refuses (see
//     TestE2EUsernsRootlessPlainRefused);
//   - otherwise the dump and the restore succeed: in the tree's own pid
//     namespace, or for a tree of the initial one in a new pid namespace
//     under cryo's init, every process has its old PID inside and a new
//     one outside, and cryo restore's stderr is exactly one "cryo: " line
//     naming the pid namespace and the old PID of the root.
//
// A refused restore is not allowed: the dump killed the tree.
func usernsRunRootless(t *testing.T, name string) {
	r := startForUserRestore(t, name)
	if r == nil {
		return
	}
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(r.Pid), "-D", r.ImgDir, "-v", "4", "-o", "dump.log")
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Logf("%s", res)
		logFile(t, filepath.Join(r.ImgDir, "dump.log"))
		t.Fatalf("rootless dump failed (exit %d)", res.ExitCode)
	}
	r.reapTree()
	r.restoreRootless(t)
}

// startForUserRestore starts the scenario's tree for a restore by the
// test user, with r.ImgDir a directory of the user's (mode 0700). Without
// checkpoints (noCR) it lets the tree finish, checks it and returns nil.
func startForUserRestore(t *testing.T, name string) *nsRun {
	t.Helper()
	r := startUserns(t, usernsScenarios[name])
	if noCR {
		r.Finish()
		r.checkFiles(t)
		return nil
	}
	requireUserCanExec(t, cryoBin)
	r.ImgDir = usernsDir(t, 0o700)
	return r
}

// restoreRootless restores r's images (in r.ImgDir, which the test user
// can read) as the test user, then checks the tree as
// usernsRunRootless describes: the view, the workload's verdict, the
// files' owners, the moved-PID notice.
func (r *nsRun) restoreRootless(t *testing.T) {
	t.Helper()
	sc := r.sc
	origPid := r.Pid
	r.rst, r.rstOut, r.rstErr = usernsRestoreAs(t, testUserCred(), r.ImgDir)
	r.detach = false
	pid, err := r.waitRestoredAnywhere(bound(t, restoreReadyTimeout))
	if err != nil {
		r.logAll()
		t.Fatal(err)
	}
	moved := pid != origPid
	r.Pid, r.Tids = pid, procTids(pid)
	if moved {
		t.Logf("rootless restore: the root is pid %d outside (was %d), %d inside", pid, origPid, r.innerPid)
	}
	after := r.view(t, "after restore")
	nsCompareViews(t, r.before, after, moved)
	if moved {
		if !after.Procs[0].NewNS["pid"] {
			t.Errorf("the root moved from pid %d to %d but is in the test's pid namespace", origPid, pid)
		}
		// one new pid namespace for a tree that was in the initial one,
		// none added to a tree that had its own
		extra := 0
		if sc.initPidNS {
			extra = 1
		}
		for i, p := range after.Procs {
			if len(p.NSpid) != len(r.before.Procs[i].NSpid)+extra {
				t.Errorf("after restore, process #%d: NSpid %v (%d levels), was %v: want %d more", i, p.NSpid, len(p.NSpid),
					r.before.Procs[i].NSpid, extra)
			}
		}
		if sc.initPidNS {
			checkPidnsInit(t, pid)
		}
	}
	r.Finish()
	r.checkFiles(t)
	// cryo restore (without -d) waits for the tree, through the init of
	// the new pid namespace if there is one: it must end with the tree.
	if !r.rst.Wait(bound(t, cryoTimeout)) {
		t.Errorf("cryo restore still runs after the restored tree finished")
	}
	checkMovedNotice(t, readString(r.rstErr), moved, origPid, pid)
}

// checkMovedNotice checks what a rootless cryo restore printed on stderr:
// nothing if the root kept its PID orig, else exactly one "cryo: " line
// naming the pid namespace and orig (the root is now pid now).
func checkMovedNotice(t *testing.T, stderr string, moved bool, orig, now int) {
	t.Helper()
	stderr = strings.TrimRight(stderr, "\n")
	switch {
	case !moved && stderr != "":
		t.Errorf("rootless restore with the same PIDs printed on stderr:\n%s", clip(stderr, 4000))
	case moved:
		lines := strings.Split(stderr, "\n")
		if stderr == "" || len(lines) != 1 || !strings.HasPrefix(lines[0], "cryo: ") || !namesPidNS(lines[0], orig) {
			t.Errorf("the root moved from pid %d to %d: cryo restore must say so in one \"cryo: \" line naming the pid namespace and %d; stderr:\n%s",
				orig, now, orig, clip(stderr, 4000))
		}
	}
}

// checkPidnsInit checks that the parent of root is pid 1 of root's pid
// namespace and runs cryo's init (argv[0] cryo-pidns-init).
func checkPidnsInit(t *testing.T, root int) {
	t.Helper()
	// The init execs cryo-pidns-init just after cryo lets the tree run.
	var ppid int
	var argv0 string
	for deadline := time.Now().Add(bound(t, restoreReadyTimeout)); ; time.Sleep(pollInterval) {
		ppid, _ = strconv.Atoi(procStatus(fmt.Sprintf("/proc/%d/status", root))["PPid"])
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
		argv0, _, _ = strings.Cut(string(cmdline), "\x00")
		if (nsInnerPid(ppid) == 1 && argv0 == "cryo-pidns-init") || time.Now().After(deadline) {
			break
		}
	}
	if nsInnerPid(ppid) != 1 || argv0 != "cryo-pidns-init" {
		t.Errorf("the restored root %d: its parent %d is pid %d inside and runs %q, want pid 1 running cryo-pidns-init",
			root, ppid, nsInnerPid(ppid), argv0)
	}
}

// namesPidNS reports whether line names the pid namespace ("pid
// namespace", any case) and pid (as a whole number).
func namesPidNS(line string, pid int) bool {
	return strings.Contains(strings.ToLower(line), "pid namespace") &&
		regexp.MustCompile(`\b`+strconv.Itoa(pid)+`\b`).MatchString(line)
}

// waitRestoredAnywhere polls until a process of the workload binary whose
// pid inside its namespace is the root's runs untraced and unstopped with
// as many threads as dumped (twice in a row), and returns its PID.
func (r *nsRun) waitRestoredAnywhere(d time.Duration) (int, error) {
	deadline := time.Now().Add(d)
	nthreads := len(r.Tids)
	why, last := "", -1
	for time.Now().Before(deadline) {
		if r.rst.Exited() {
			return -1, fmt.Errorf("cryo restore exited (status %d) before the restored tree ran", r.rst.ExitCode())
		}
		found := -1
		for _, pid := range allPids() {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == r.Bin && nsInnerPid(pid) == r.innerPid {
				found = pid
				break
			}
		}
		ok := false
		if found < 0 {
			why = fmt.Sprintf("no process of %s is pid %d inside", r.Bin, r.innerPid)
		} else {
			r.Pid, r.Tids = found, procTids(found)
			why = r.notRunningReason()
			if why == "" && len(r.Tids) != nthreads {
				why = fmt.Sprintf("pid %d has %d threads, want %d", found, len(r.Tids), nthreads)
			}
			ok = why == ""
		}
		if ok && found == last {
			return found, nil
		}
		last = -1
		if ok {
			last = found
		}
		time.Sleep(pollInterval)
	}
	hung()
	return -1, fmt.Errorf("restored tree (root pid %d inside) not running within %v: %s", r.innerPid, d, why)
}

// usernsRunCryoAs is runCryo as another user.
func usernsRunCryoAs(t *testing.T, cred *syscall.Credential, args ...string) cryoResult {
	t.Helper()
	return runCryoAs(t, cred, bound(t, cryoTimeout), args...)
}

// usernsRestoreAs is restore as another user.
func usernsRestoreAs(t *testing.T, cred *syscall.Credential, dir string, extra ...string) (*bgProc, string, string) {
	t.Helper()
	args := append([]string{"restore", "-D", dir, "-v", "4", "-o", "restore.log"}, extra...)
	cmd, stdout, stderr := cryoCommand(t, args...)
	cmd.SysProcAttr.Credential = cred
	p, err := startBg(t, "cryo restore", cmd)
	if err != nil {
		t.Fatalf("cannot start cryo restore as uid %d: %v", cred.Uid, err)
	}
	return p, stdout, stderr
}

// ---------------------------------------------------------------------------
// Tests: dumped and restored by root

// TestE2EUsernsOwnUID: `unshare -c -i` done by the workload: only 4242 is
// mapped (to itself), setgroups deny, root files show as 65534.
func TestE2EUsernsOwnUID(t *testing.T) { usernsRunAsRoot(t, "own") }

// TestE2EUsernsMapRoot: `unshare -r -i` done by the workload: 4242 is 0
// inside.
func TestE2EUsernsMapRoot(t *testing.T) { usernsRunAsRoot(t, "root") }

// TestE2EUsernsMapRange: a multi-range map written by root (as newuidmap
// does for `unshare --map-users`), setgroups allow; the workload switches
// to range ids (groups, real/effective/saved uids and gids differ).
func TestE2EUsernsMapRange(t *testing.T) { usernsRunAsRoot(t, "range") }

// TestE2EUsernsPeerCred: the range scenario plus two unix socketpairs made
// before and after the id switch: SO_PEERCRED pid/uid/gid as seen inside.
func TestE2EUsernsPeerCred(t *testing.T) { usernsRunAsRoot(t, "peercred") }

// TestE2EUsernsNested: the root in ns1 (range map), its child in ns2
// nested in ns1 with its own map and setgroups deny, other ids.
func TestE2EUsernsNested(t *testing.T) { usernsRunAsRoot(t, "nested") }

// TestE2EUsernsNestedMountNS: the nested scenario where ns1 has a mount
// namespace with a tmpfs and bind mounts, shared by the child in ns2: it
// stays owned by ns1 and shared.
func TestE2EUsernsNestedMountNS(t *testing.T) { usernsRunAsRoot(t, "nested-mnt") }

// TestE2EUsernsMountNS: a mount namespace owned by the user namespace:
// rprivate /, a tmpfs with files (one kept open), a bind mount and a
// read-only bind mount.
func TestE2EUsernsMountNS(t *testing.T) { usernsRunAsRoot(t, "mnt") }

// TestE2EUsernsMountNSSharedFile: a file on the tree's tmpfs that pid 1
// opened before forking, so that its children share it: after restore it
// is one open file description in all of them (kcmp), on the restored
// tmpfs.
func TestE2EUsernsMountNSSharedFile(t *testing.T) { usernsRunAsRoot(t, "unshare-Urmpf-shared") }

// TestE2EUsernsTimeNS: `unshare -U -r -m -T --monotonic --boottime`: a time
// namespace with offsets, owned by the user namespace.
func TestE2EUsernsTimeNS(t *testing.T) { usernsRunAsRoot(t, "unshare-UrmT") }

// TestE2EUsernsUnshareCmd: trees made by the real unshare(1) exec'ing the
// workload: -c -i, -r -i, --map-user/--map-users (newuidmap), -Urpf
// --mount-proc (pid 1 of its pid namespace with children), and that with
// -m and the workload's tmpfs and bind mounts, or with -m -T and clock
// offsets.
func TestE2EUsernsUnshareCmd(t *testing.T) {
	for _, name := range []string{"unshare-c-i", "unshare-r-i", "unshare-map-users", "unshare-Urpf", "unshare-Urmpf-mounts", "unshare-UrmpfT"} {
		t.Run(strings.TrimPrefix(name, "unshare-"), func(t *testing.T) { usernsRunAsRoot(t, name) })
	}
}

// ---------------------------------------------------------------------------
// Tests: dumped and restored by the user who owns the namespaces

// TestE2EUsernsRootlessOwnUID: the own-uid scenario, cryo run as 4242.
func TestE2EUsernsRootlessOwnUID(t *testing.T) { usernsRunRootless(t, "own") }

// TestE2EUsernsRootlessMapRoot: the map-root scenario, cryo run as 4242.
func TestE2EUsernsRootlessMapRoot(t *testing.T) { usernsRunRootless(t, "root") }

// TestE2EUsernsRootlessPlainRefused: a process of the test user's without
// namespaces of its own (sleep): no rootless restore could give it its
// PID, so the rootless dump refuses it in one line naming the pid
// namespace and the PID, and it runs on untouched.
func TestE2EUsernsRootlessPlainRefused(t *testing.T) {
	requireRoot(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: testUserCred()}
	p, err := startBg(t, "sleep", cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer p.kill(t)
	dir := usernsDir(t, 0o700)
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(p.Pid()), "-D", dir)
	if res.ExitCode == 0 {
		t.Fatalf("the rootless dump of a process in the initial user and pid namespaces succeeded: no rootless restore could give it its PID")
	}
	assertOneErrorLine(t, res)
	if !namesPidNS(firstLine(res.Stderr), p.Pid()) {
		t.Errorf("the refusal must name the pid namespace and pid %d, in one line; got: %s", p.Pid(), firstLine(res.Stderr))
	}
	if st, ok := waitSleepingUntraced(t, p, p.Pid()); !ok {
		t.Errorf("after the refused dump, sleep %d: exited %v, state %q, tracer %q; want it sleeping untraced", p.Pid(), p.Exited(), st["State"], st["TracerPid"])
	}
}

// TestE2EUsernsRootlessMapRange, ...PeerCred, ...Nested: the multi-range
// scenarios, cryo run as 4242. Their processes switched to subordinate
// ids, whose /proc files and open files the user may open only from
// inside the namespace: the dump reaches them through an agent there.
func TestE2EUsernsRootlessMapRange(t *testing.T) { usernsRunRootless(t, "range") }
func TestE2EUsernsRootlessPeerCred(t *testing.T) { usernsRunRootless(t, "peercred") }
func TestE2EUsernsRootlessNested(t *testing.T)   { usernsRunRootless(t, "nested") }

// TestE2EUsernsRootlessNestedMountNS: the nested scenario (processes
// under subordinate ids) with ns1's mount namespace, its tmpfs and bind
// mounts, shared by the child in ns2, cryo run as 4242.
func TestE2EUsernsRootlessNestedMountNS(t *testing.T) { usernsRunRootless(t, "nested-mnt") }

// TestE2EUsernsRootlessUnshareCmd: unshare -c -i, -r -i, --map-users and
// -Urpf --mount-proc trees, cryo run as 4242.
func TestE2EUsernsRootlessUnshareCmd(t *testing.T) {
	for _, name := range []string{"unshare-c-i", "unshare-r-i", "unshare-map-users", "unshare-Urpf"} {
		t.Run(strings.TrimPrefix(name, "unshare-"), func(t *testing.T) { usernsRunRootless(t, name) })
	}
}

// TestE2EUsernsRootlessRestoreRange: the multi-range scenarios (maps with
// subordinate ids, processes switched to them) dumped by root and restored
// by the test user, who owns the namespaces: cryo writes the top user
// namespace's maps with newuidmap/newgidmap, and the tree comes back as a
// rootless restore brings it (usernsRunRootless): the same maps, setgroups
// policy, ids, groups, owners and pids inside (in a new pid namespace),
// the workload's own checks (peer credentials, SysV owners, files as
// subordinate ids) and the owners of the files it made.
func TestE2EUsernsRootlessRestoreRange(t *testing.T) {
	for _, name := range []string{"range", "peercred", "nested", "unshare-map-users"} {
		t.Run(strings.TrimPrefix(name, "unshare-"), func(t *testing.T) { usernsRunRootDumpUserRestore(t, name) })
	}
}

// TestE2EUsernsRootlessRestoreNoSubIDs: a process of the test user's in a
// user namespace of its own (unshare -U sleep) whose map root wrote with
// ids outside the user's subordinate ranges (1-1000 -> 200000-200999),
// dumped by root and restored by the user: newuidmap refuses the map, and
// cryo restore says so in one line naming the namespace, the map and the
// helper, and leaves no process behind.
func TestE2EUsernsRootlessRestoreNoSubIDs(t *testing.T) {
	requireRoot(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	const idMap = "0 4242 1\n1 200000 1000\n"
	for _, file := range []string{"/etc/subuid", "/etc/subgid"} {
		if subIDsCover(file, 200000, 1000) {
			t.Fatalf("%s gives %s ids 200000-200999: this test needs ids the user does not have", file, testUserName)
		}
	}
	p := startExecingSleep(t, testUserCred(), "unshare", "-U", "--", "sleep", "300")
	defer p.kill(t)
	pid := p.Pid()
	nsWriteIDMaps(t, pid, idMap, idMap)
	dir := usernsDir(t, 0o700)
	dump(t, pid, dir, "-v", "4", "-o", "dump.log")
	p.Wait(bound(t, killTimeout))
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	chownTree(t, dir, testUID, testGID)
	res := usernsRunCryoAs(t, testUserCred(), "restore", "-D", dir, "-v", "4", "-o", "restore.log")
	assertOneErrorLine(t, res, "user namespace", "uid_map", "newuidmap", "1 200000 1000")
	t.Logf("refused: %s", firstLine(res.Stderr))
	checkNoStrayCryo(t, "after the refused restore")
	for _, q := range allPids() {
		if nsInnerPid(q) == pid && procStatus(fmt.Sprintf("/proc/%d/status", q))["Name"] == "sleep" {
			t.Errorf("after the refused restore, pid %d is sleep with the dumped pid %d inside", q, pid)
		}
	}
}

// subIDsCover reports whether file (/etc/subuid or /etc/subgid) gives the
// test user any of the ids first..first+count-1.
func subIDsCover(file string, first, count int) bool {
	return slices.ContainsFunc(subIDRanges(file), func(r [2]int) bool { return r[0] < first+count && first < r[0]+r[1] })
}

// usernsRunRootDumpUserRestore: start as the test user, dump as root, hand
// the images to the user (owner 4242, modes kept), restore as the user.
func usernsRunRootDumpUserRestore(t *testing.T, name string) {
	r := startForUserRestore(t, name)
	if r == nil {
		return
	}
	dump(t, r.Pid, r.ImgDir, "-v", "4", "-o", "dump.log")
	r.reapTree()
	chownTree(t, r.ImgDir, testUID, testGID)
	r.restoreRootless(t)
}

// chownTree gives dir and everything below it to uid:gid (without
// following symlinks); modes stay as they are.
func chownTree(t *testing.T, dir string, uid, gid int) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(path, uid, gid)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestE2EUsernsRootlessNestedOwnUID: a user namespace nested in another,
// every process under the user's own uid (root inside both), each
// namespace with its own IPC or UTS namespace:
//
//	unshare -r -i sh -c 'unshare -r -u sh -c "hostname inner; exec sleep" & exec sleep'
//
// dumped and restored by the user: the same pids inside the new pid
// namespace, the same maps, nesting and owners, the inner hostname. The
// pidns subtests run the tree as pid 1 of its own pid namespace with its
// own /proc (unshare -p -f -m --mount-proc), where the nested namespace's
// maps are written through that /proc; root dumps and restores it too.
func TestE2EUsernsRootlessNestedOwnUID(t *testing.T) {
	t.Run("initial", func(t *testing.T) { nestedOwnUID(t, true, false) })
	t.Run("pidns", func(t *testing.T) { nestedOwnUID(t, true, true) })
	t.Run("pidns-root", func(t *testing.T) { nestedOwnUID(t, false, true) })
}

func nestedOwnUID(t *testing.T, rootless, pidns bool) {
	requireRoot(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	dir := usernsDir(t, 0o755)
	script := `unshare -r -u sh -c "hostname inner; exec sleep 300" & exec sleep 300`
	argv := []string{"setsid", "unshare", "-r", "-i"}
	if pidns {
		argv = append(argv, "-p", "-f", "-m", "--mount-proc")
	}
	cmd := exec.Command(argv[0], append(argv[1:], "sh", "-c", script)...)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testUserCred()}
	launcher, err := startBg(t, "nested sh", cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer launcher.kill(t)
	// The tree: the root (sh, then sleep) and its child (unshare, sh, then
	// sleep) in the nested namespace; with -f the root is unshare's child.
	type view struct {
		inner          int
		uidMap, gidMap string
		owners         []int
		host           string
	}
	look := func(pid int) view {
		owners, _ := nsUsernsOwners(pid)
		return view{nsInnerPid(pid), nsNormMap(readString(fmt.Sprintf("/proc/%d/uid_map", pid))),
			nsNormMap(readString(fmt.Sprintf("/proc/%d/gid_map", pid))), owners, readHostname(pid)}
	}
	children := func(pid int) []int {
		var out []int
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
		for _, f := range strings.Fields(string(kids)) {
			k, _ := strconv.Atoi(f)
			out = append(out, k)
		}
		return out
	}
	tree := func(root int) []int {
		var out []int
		for q := []int{root}; len(q) > 0; q = q[1:] {
			out = append(out, q[0])
			q = append(q, children(q[0])...)
		}
		return out
	}
	root := launcher.Pid()
	var before []int
	deadline := time.Now().Add(bound(t, 10*time.Second))
	settled := func(pids []int) bool {
		for _, pid := range pids {
			if procStatus(fmt.Sprintf("/proc/%d/status", pid))["Name"] != "sleep" {
				return false
			}
		}
		return len(pids) == 2 && readHostname(pids[1]) == "inner"
	}
	for !settled(before) {
		if time.Now().After(deadline) {
			t.Fatalf("the nested tree did not come up: %v", before)
		}
		time.Sleep(pollInterval)
		if pidns {
			if kids := children(launcher.Pid()); len(kids) == 1 {
				root = kids[0]
			}
		}
		before = tree(root)
	}
	var want []view
	for _, pid := range before {
		want = append(want, look(pid))
	}
	if len(want) != 2 || len(want[1].owners) != 2 || len(want[0].owners) != 1 {
		t.Fatalf("want the child two user namespaces deep and the root one: %+v", want)
	}
	cred := testUserCred()
	if !rootless {
		cred = &syscall.Credential{}
	}
	img := usernsDir(t, 0o700)
	res := usernsRunCryoAs(t, cred, "dump", "-t", strconv.Itoa(root), "-D", img, "-v", "4", "-o", "dump.log")
	if res.ExitCode != 0 {
		logFile(t, filepath.Join(img, "dump.log"))
		t.Fatalf("dump: %s", res)
	}
	launcher.Wait(bound(t, 10*time.Second))
	if err := waitPidFree(root, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	args := []string{"restore", "-D", img, "-d", "-v", "4", "-o", "restore.log"}
	if !rootless {
		// The images lie in a directory of the user's, which root trusts
		// only when told (the test made them).
		args = append(args, "--trust-images")
	}
	res = usernsRunCryoAs(t, cred, args...)
	if res.ExitCode != 0 {
		logFile(t, filepath.Join(img, "restore.log"))
		t.Fatalf("restore: %s", res)
	}
	innerRoot := want[0].inner
	newRoot := -1
	for _, pid := range allPids() {
		if nsInnerPid(pid) == innerRoot && procStatus(fmt.Sprintf("/proc/%d/status", pid))["Name"] == "sleep" &&
			(pid != root || !rootless) {
			newRoot = pid
		}
	}
	if newRoot < 0 {
		t.Fatalf("no restored process is pid %d inside", innerRoot)
	}
	defer unix.Kill(newRoot, unix.SIGKILL)
	checkMovedNotice(t, res.Stderr, rootless, root, newRoot)
	if !rootless && newRoot != root {
		t.Errorf("root restored the tree's root at pid %d, not %d", newRoot, root)
	}
	if rootless && !pidns {
		checkPidnsInit(t, newRoot)
	}
	after := tree(newRoot)
	if len(after) != len(before) {
		t.Fatalf("restored tree %v, dumped %v", after, before)
	}
	for i, pid := range after {
		got := look(pid)
		w := want[i]
		if !pidns {
			w.inner = before[i] // the old pid, now inside a new pid namespace
		}
		if got.inner != w.inner || got.uidMap != w.uidMap || got.gidMap != w.gidMap || !slices.Equal(got.owners, w.owners) || got.host != w.host {
			t.Errorf("process #%d (pid %d): %+v, want %+v", i, pid, got, w)
		}
	}
	if !rootless || pidns {
		return
	}
	init := procPPid(newRoot)
	for _, pid := range after {
		unix.Kill(pid, unix.SIGKILL)
	}
	for end := time.Now().Add(bound(t, 10*time.Second)); pidAlive(init) && procStatus(fmt.Sprintf("/proc/%d/status", init))["State"][:1] != "Z"; {
		if time.Now().After(end) {
			t.Fatalf("cryo's init %d still runs after its tree was killed", init)
		}
		time.Sleep(pollInterval)
	}
}

// readHostname is pid's host name, from inside its UTS namespace.
func readHostname(pid int) string {
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(pid), "-u", "hostname").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// TestE2EUsernsForeignOwnerRefused: an IPC namespace that root made, with
// a process in a user namespace made afterwards inside it (unshare -i
// unshare -U -r sleep): restored, the IPC namespace would belong to the
// process's user namespace, so the dump refuses in one line naming the
// namespace, its owner and the process, and sleep runs on untouched.
func TestE2EUsernsForeignOwnerRefused(t *testing.T) {
	requireRoot(t)
	// unshare execs unshare execs sleep: the same PID throughout.
	p := startExecingSleep(t, nil, "unshare", "-i", "--", "unshare", "-U", "-r", "--", "sleep", "300")
	defer p.kill(t)
	pid := p.Pid()
	owner, err := userns.OwnerOf(pid, "ipc")
	if err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, pid, t.TempDir())
	if res.ExitCode == 0 {
		t.Fatalf("the dump of a process whose IPC namespace belongs to another user namespace succeeded")
	}
	assertOneErrorLine(t, res, "ipc namespace", strconv.Itoa(pid), strconv.FormatUint(owner, 10))
	if st, ok := waitSleepingUntraced(t, p, pid); !ok {
		t.Errorf("after the refused dump, sleep %d: exited %v, state %q, tracer %q; want it sleeping untraced", pid, p.Exited(), st["State"], st["TracerPid"])
	}
}

// startExecingSleep starts argv, which ends up exec'ing sleep in the same
// process, in its own session with cred (nil: root), and waits until it
// is sleep.
func startExecingSleep(t *testing.T, cred *syscall.Credential, argv ...string) *bgProc {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: cred}
	p, err := startBg(t, "sleep", cmd)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(bound(t, 10*time.Second)); procStatus(fmt.Sprintf("/proc/%d/status", p.Pid()))["Name"] != "sleep"; {
		if time.Now().After(end) {
			p.kill(t)
			t.Fatalf("%v did not become sleep", argv)
		}
		time.Sleep(pollInterval)
	}
	return p
}

// TestE2EUsernsRootlessMountTime: the mount and time namespace scenarios,
// dumped and restored by the user: the workload's own mount namespace
// (mnt), a tmpfs file shared by pid 1 and its children
// (unshare-Urmpf-shared), clock offsets (unshare-UrmT), and all of it
// with a pid namespace (unshare-UrmpfT).
func TestE2EUsernsRootlessMountTime(t *testing.T) {
	for _, name := range []string{"mnt", "unshare-Urmpf-mounts", "unshare-Urmpf-shared", "unshare-UrmT", "unshare-UrmpfT"} {
		t.Run(strings.TrimPrefix(name, "unshare-"), func(t *testing.T) { usernsRunRootless(t, name) })
	}
}
