package proc

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Tests against the live /proc of this process and of children it starts.

// startChild starts argv as a child and stops it when the test ends.
func startChild(t *testing.T, attr *syscall.SysProcAttr, argv ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", argv, err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// waitExec waits until the child has exec'd want and settled in its sleep:
// /proc/PID/exe switches early in execve, before the vDSO, stack layout and
// libraries are set up, so also wait for the task to block (state S).
func waitExec(t *testing.T, pid int, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		exe, err := Exe(pid)
		if err == nil && filepath.Base(exe) == want {
			if st, err := ReadStat(pid); err == nil && st.State == 'S' {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("child %d did not exec %s", pid, want)
}

func startSleep(t *testing.T) int {
	t.Helper()
	cmd := startChild(t, nil, "sleep", "1000")
	waitExec(t, cmd.Process.Pid, "sleep")
	return cmd.Process.Pid
}

func findPath(maps []Mapping, path string) (Mapping, bool) {
	for _, m := range maps {
		if m.Path == path {
			return m, true
		}
	}
	return Mapping{}, false
}

func findStart(maps []Mapping, start uintptr) (Mapping, bool) {
	for _, m := range maps {
		if m.Start == uint64(start) {
			return m, true
		}
	}
	return Mapping{}, false
}

func addrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }

func unsafeStringData(s string) *byte { return unsafe.StringData(s) }

func TestMapsSelf(t *testing.T) {
	ps := int(PageSize())
	ro, err := unix.Mmap(-1, 0, 3*ps, unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(ro)
	rx, err := unix.Mmap(-1, 0, 2*ps, unix.PROT_READ|unix.PROT_EXEC, unix.MAP_SHARED|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(rx)

	// A mapped file that is then unlinked, with a space in its name.
	f, err := os.CreateTemp(t.TempDir(), "mapped file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(int64(2 * ps)); err != nil {
		t.Fatal(err)
	}
	fm, err := unix.Mmap(int(f.Fd()), int64(ps), ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(fm)
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(f.Name()); err != nil {
		t.Fatal(err)
	}

	maps, err := Maps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(maps); i++ {
		if maps[i].Start < maps[i-1].End {
			t.Errorf("mappings out of order: %#x after %#x", maps[i].Start, maps[i-1].End)
		}
	}

	stack, ok := findPath(maps, "[stack]")
	if !ok {
		t.Fatal("no [stack] mapping")
	}
	if !stack.VmFlags.Has(FlagGrowsDown | FlagRead | FlagWrite) {
		t.Errorf("[stack] VmFlags = %q, want gd rd wr", stack.VmFlags)
	}
	if stack.IsSpecial() {
		t.Error("[stack] reported as special")
	}
	vdso, ok := findPath(maps, "[vdso]")
	if !ok {
		t.Fatal("no [vdso] mapping")
	}
	if !vdso.IsSpecial() || vdso.Prot != unix.PROT_READ|unix.PROT_EXEC {
		t.Errorf("[vdso] = %+v", vdso)
	}
	if vvar, ok := findPath(maps, "[vvar]"); ok && !vvar.IsSpecial() {
		t.Error("[vvar] not special")
	}

	m, ok := findStart(maps, addrOf(ro))
	if !ok {
		t.Fatalf("read-only mapping at %#x not found", addrOf(ro))
	}
	if m.End-m.Start != uint64(3*ps) || m.Prot != unix.PROT_READ || m.Shared || m.Path != "" || m.Inode != 0 || m.Deleted {
		t.Errorf("read-only anon mapping = %+v", m)
	}
	if !m.VmFlags.Has(FlagRead|FlagMayWrite) || m.VmFlags.Has(FlagWrite) || m.VmFlags.Has(FlagShared) {
		t.Errorf("read-only anon VmFlags = %q", m.VmFlags)
	}

	m, ok = findStart(maps, addrOf(rx))
	if !ok {
		t.Fatal("shared mapping not found")
	}
	// Shared anonymous memory is backed by an unlinked shmem file.
	if m.Prot != unix.PROT_READ|unix.PROT_EXEC || !m.Shared || m.Path != "/dev/zero" || !m.Deleted {
		t.Errorf("shared anon mapping = %+v", m)
	}
	if !m.VmFlags.Has(FlagShared | FlagMayShare | FlagExec) {
		t.Errorf("shared anon VmFlags = %q", m.VmFlags)
	}

	m, ok = findStart(maps, addrOf(fm))
	if !ok {
		t.Fatal("file mapping not found")
	}
	if m.Path != f.Name() || !m.Deleted || m.Offset != uint64(ps) || m.Inode != st.Ino ||
		m.Major != unix.Major(st.Dev) || m.Minor != unix.Minor(st.Dev) || !m.Shared ||
		m.Prot != unix.PROT_READ|unix.PROT_WRITE {
		t.Errorf("deleted file mapping = %+v, want path %q ino %d dev %d:%d", m, f.Name(), st.Ino, unix.Major(st.Dev), unix.Minor(st.Dev))
	}
}

func TestMapsChild(t *testing.T) {
	pid := startSleep(t)
	maps, err := Maps(pid)
	if err != nil {
		t.Fatal(err)
	}
	exe, err := Exe(pid)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := findPath(maps, exe); !ok {
		t.Errorf("no mapping of %s", exe)
	}
	for _, name := range []string{"[stack]", "[vdso]"} {
		if _, ok := findPath(maps, name); !ok {
			t.Errorf("no %s mapping", name)
		}
	}
	// All mappings of one file share one Path string (interning).
	var first string
	for _, m := range maps {
		if m.Path == exe {
			if first == "" {
				first = m.Path
			} else if unsafeStringData(first) != unsafeStringData(m.Path) {
				t.Error("Path strings of the same file are not shared")
				break
			}
		}
	}
}

func TestPagemap(t *testing.T) {
	ps := int(PageSize())
	const pages = 16
	mem, err := unix.Mmap(-1, 0, pages*ps, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	touched := map[int]bool{0: true, 3: true, 4: true, 15: true}
	for i := range touched {
		mem[i*ps] = 1
	}

	pm, err := OpenPagemap(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	start := uint64(addrOf(mem))
	end := start + uint64(pages*ps)

	check := func(base uint64, entries []PagemapEntry) {
		t.Helper()
		for i, e := range entries {
			page := int((base-start)/uint64(ps)) + i
			if e.Present() != touched[page] {
				t.Errorf("page %d: Present = %v, want %v (entry %#x)", page, e.Present(), touched[page], uint64(e))
			}
			if touched[page] && (!e.Exclusive() || e.FileOrSharedAnon() || e.Swapped()) {
				t.Errorf("page %d: entry %#x, want exclusive private anon in RAM", page, uint64(e))
			}
		}
	}
	entries, err := pm.Read(start, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != pages {
		t.Fatalf("got %d entries, want %d", len(entries), pages)
	}
	check(start, entries)

	// A sub-range, read after the first, reuses the buffer.
	sub, err := pm.Read(start+3*uint64(ps), start+5*uint64(ps))
	if err != nil {
		t.Fatal(err)
	}
	if len(sub) != 2 {
		t.Fatalf("sub-range: %d entries", len(sub))
	}
	check(start+3*uint64(ps), sub)

	var walked int
	if err := pm.Walk(start, end, func(addr uint64, e []PagemapEntry) error {
		check(addr, e)
		walked += len(e)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if walked != pages {
		t.Errorf("Walk visited %d pages, want %d", walked, pages)
	}

	if _, err := pm.Read(start+1, end); err == nil {
		t.Error("unaligned Read succeeded")
	}
	if e, err := pm.Read(start, start); err != nil || len(e) != 0 {
		t.Errorf("empty Read = %v, %v", e, err)
	}
}

func TestPagemapChild(t *testing.T) {
	pid := startSleep(t)
	maps, err := Maps(pid)
	if err != nil {
		t.Fatal(err)
	}
	stack, ok := findPath(maps, "[stack]")
	if !ok {
		t.Fatal("no [stack]")
	}
	pm, err := OpenPagemap(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	entries, err := pm.Read(stack.Start, stack.End)
	if err != nil {
		t.Fatal(err)
	}
	// The top of the stack holds argv and envp, so it is resident.
	if !entries[len(entries)-1].Present() {
		t.Errorf("top stack page not present: %#x", uint64(entries[len(entries)-1]))
	}
	vsys, ok := findPath(maps, "[vsyscall]")
	if ok {
		// Above the task size pagemap returns nothing.
		if _, err := pm.Read(vsys.Start, vsys.End); err == nil {
			t.Error("reading [vsyscall] pagemap succeeded")
		}
	}
}

func TestLimits(t *testing.T) {
	lim, err := Limits(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for res := range NumRlimits {
		var want unix.Rlimit
		if err := unix.Getrlimit(res, &want); err != nil {
			t.Fatal(err)
		}
		if lim[res].Cur != want.Cur || lim[res].Max != want.Max {
			t.Errorf("resource %d: got %+v, want %+v", res, lim[res], want)
		}
	}

	pid := startSleep(t)
	// Keep the hard limit: raising it needs CAP_SYS_RESOURCE, which
	// containers often drop even for root.
	var cur unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, nil, &cur); err != nil {
		t.Fatal(err)
	}
	set := unix.Rlimit{Cur: 123, Max: cur.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_NOFILE, &set, nil); err != nil {
		t.Fatal(err)
	}
	lim, err = Limits(pid)
	if err != nil {
		t.Fatal(err)
	}
	if got := lim[unix.RLIMIT_NOFILE]; got != (Rlimit{123, cur.Max}) {
		t.Errorf("child RLIMIT_NOFILE = %+v", got)
	}
}

func TestStatusSelf(t *testing.T) {
	s, err := ReadStatus(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	uid, euid, gid, egid := uint32(os.Getuid()), uint32(os.Geteuid()), uint32(os.Getgid()), uint32(os.Getegid())
	if s.Uid[0] != uid || s.Uid[1] != euid || s.Gid[0] != gid || s.Gid[1] != egid {
		t.Errorf("Uid %v Gid %v, want %d/%d %d/%d", s.Uid, s.Gid, uid, euid, gid, egid)
	}
	if s.Pid != os.Getpid() || s.Tgid != os.Getpid() || s.PPid != os.Getppid() {
		t.Errorf("Pid %d Tgid %d PPid %d", s.Pid, s.Tgid, s.PPid)
	}
	if s.Threads < 1 || len(s.NSpid) < 1 || s.NSpid[len(s.NSpid)-1] == 0 || len(s.NStgid) < 1 || len(s.NSsid) < 1 || len(s.NSpgid) < 1 {
		t.Errorf("status = %+v", s)
	}
	if want := filepath.Base(os.Args[0]); !strings.HasPrefix(want, s.Name) || s.Name == "" {
		t.Errorf("Name = %q, want prefix of %q", s.Name, want)
	}
	// The leader thread need not be the one reading, so R or S.
	if s.State != 'R' && s.State != 'S' {
		t.Errorf("State = %c, want R or S", s.State)
	}
	groups, err := unix.Getgroups()
	if err != nil {
		t.Fatal(err)
	}
	if len(groups) != len(s.Groups) {
		t.Errorf("Groups = %v, want %v", s.Groups, groups)
	}
	if !s.HasUmask {
		t.Error("no Umask")
	}
	old := unix.Umask(0o027)
	unix.Umask(old)
	if s.Umask != uint32(old) {
		t.Errorf("Umask = %#o, want %#o", s.Umask, old)
	}
	var hdr unix.CapUserHeader
	hdr.Version = unix.LINUX_CAPABILITY_VERSION_3
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		t.Fatal(err)
	}
	if eff := uint64(data[1].Effective)<<32 | uint64(data[0].Effective); s.CapEff != eff {
		t.Errorf("CapEff = %#x, want %#x", s.CapEff, eff)
	}
	nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.NoNewPrivs != (nnp == 1) {
		t.Errorf("NoNewPrivs = %v, prctl says %d", s.NoNewPrivs, nnp)
	}
}

// onLockedThread runs fn on a locked OS thread and passes its tid. fn must
// undo what it changes on the thread: it may be the main thread, which the
// runtime keeps (wedged) rather than discarding.
func onLockedThread(t *testing.T, fn func(tid int)) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		fn(unix.Gettid())
	}()
	<-done
}

func TestTaskStatusAndTasks(t *testing.T) {
	pid := os.Getpid()
	onLockedThread(t, func(tid int) {
		// Block a signal on this thread only and check the per-thread view.
		set := unix.Sigset_t{}
		set.Val[0] = 1 << (unix.SIGUSR2 - 1)
		var old unix.Sigset_t
		if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
			t.Error(err)
			return
		}
		defer unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
		s, err := ReadTaskStatus(pid, tid)
		if err != nil {
			t.Error(err)
			return
		}
		if s.Pid != tid || s.Tgid != pid {
			t.Errorf("task status Pid %d Tgid %d, want %d %d", s.Pid, s.Tgid, tid, pid)
		}
		if s.SigBlk&(1<<(unix.SIGUSR2-1)) == 0 {
			t.Errorf("SigBlk = %#x, want SIGUSR2 blocked", s.SigBlk)
		}
		tids, err := Tasks(pid)
		if err != nil {
			t.Error(err)
			return
		}
		if tids[0] != pid || !slices.Contains(tids, tid) || !slices.IsSorted(tids[1:]) {
			t.Errorf("Tasks = %v (pid %d tid %d)", tids, pid, tid)
		}
	})
}

// weirdComm has everything that breaks naive stat parsing: ") (", spaces,
// and a trailing ')' -- 15 bytes, the comm limit.
const weirdComm = "a) (b c) S 1 )"

func TestStatWeirdCommThread(t *testing.T) {
	pid := os.Getpid()
	onLockedThread(t, func(tid int) {
		commPath := taskPath(pid, tid, "comm")
		old, err := TaskComm(pid, tid)
		if err != nil {
			t.Error(err)
			return
		}
		if err := os.WriteFile(commPath, []byte(weirdComm), 0); err != nil {
			t.Error(err)
			return
		}
		defer os.WriteFile(commPath, []byte(old), 0)
		st, err := ReadTaskStat(pid, tid)
		if err != nil {
			t.Error(err)
			return
		}
		if st.Comm != weirdComm || st.Pid != tid || st.PPid != os.Getppid() || st.State != 'R' {
			t.Errorf("task stat = %+v", st)
		}
		comm, err := TaskComm(pid, tid)
		if err != nil || comm != weirdComm {
			t.Errorf("TaskComm = %q, %v", comm, err)
		}
		s, err := ReadTaskStatus(pid, tid)
		if err != nil || s.Name != weirdComm {
			t.Errorf("task status Name = %q, %v", s.Name, err)
		}
	})
}

// TestStatWeirdCommChild execs sleep through a symlink whose name becomes
// the child's comm (the kernel takes comm from the exec'd path's basename).
func TestStatWeirdCommChild(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip(err)
	}
	link := filepath.Join(t.TempDir(), weirdComm)
	if err := os.Symlink(sleep, link); err != nil {
		t.Fatal(err)
	}
	cmd := startChild(t, nil, link, "1000")
	pid := cmd.Process.Pid
	waitExecComm(t, pid, weirdComm)
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != weirdComm || st.Pid != pid || st.PPid != os.Getpid() || st.NumThreads != 1 {
		t.Errorf("stat = %+v", st)
	}
	if st.State != 'S' && st.State != 'R' {
		t.Errorf("State = %c", st.State)
	}
	if st.StartCode == 0 || st.EndCode <= st.StartCode || st.StartStack == 0 || st.ArgStart == 0 ||
		st.ArgEnd <= st.ArgStart || st.EnvEnd <= st.EnvStart || st.StartBrk == 0 || st.Vsize == 0 {
		t.Errorf("layout fields not filled: %+v", st)
	}
	if st.ExitSignal != int(unix.SIGCHLD) {
		t.Errorf("ExitSignal = %d", st.ExitSignal)
	}
	pgid, _ := unix.Getpgid(0)
	if st.Pgrp != pgid || st.Session != mustGetsid(t) {
		t.Errorf("Pgrp %d Session %d", st.Pgrp, st.Session)
	}
	s, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != weirdComm || s.PPid != os.Getpid() {
		t.Errorf("status = %+v", s)
	}
}

func mustGetsid(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

func waitExecComm(t *testing.T, pid int, comm string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := ReadStat(pid); err == nil && st.Comm == comm && st.State == 'S' {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("child %d never got comm %q", pid, comm)
}

// TestStatPrctlComm compiles a C program that sets a comm containing a
// newline and parens with prctl, which exec cannot produce.
func TestStatPrctlComm(t *testing.T) {
	gcc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("gcc not available")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "comm.c")
	bin := filepath.Join(dir, "comm")
	const prog = `#include <sys/prctl.h>
#include <unistd.h>
int main(void) {
	prctl(PR_SET_NAME, "x) (\n)\\t(y) ", 0, 0, 0);
	write(1, "ok\n", 3);
	pause();
	return 0;
}
`
	const comm = "x) (\n)\\t(y) "
	if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(gcc, "-o", bin, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	cmd := exec.Command(bin)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	buf := make([]byte, 3)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	st, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if st.Comm != comm || st.Pid != pid || st.PPid != os.Getpid() {
		t.Errorf("stat = %+v", st)
	}
	s, err := ReadStatus(pid)
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != comm {
		t.Errorf("status Name = %q, want %q", s.Name, comm)
	}
	raw, _ := os.ReadFile(pidPath(pid, "status"))
	t.Logf("status prints the name as %q", bytes.SplitN(raw, []byte("\n"), 2)[0])
	c, err := TaskComm(pid, pid)
	if err != nil || c != comm {
		t.Errorf("TaskComm = %q, %v", c, err)
	}
}

func TestStatSelf(t *testing.T) {
	st, err := ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.Pid != os.Getpid() || st.PPid != os.Getppid() || st.NumThreads < 1 || (st.State != 'R' && st.State != 'S') {
		t.Errorf("stat = %+v", st)
	}
}

func TestFds(t *testing.T) {
	f, err := os.Open("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Read(make([]byte, 3)); err != nil {
		t.Fatal(err)
	}
	fd := int(f.Fd())
	pid := os.Getpid()
	fds, err := Fds(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fds, fd) || !slices.IsSorted(fds) {
		t.Errorf("Fds = %v, want sorted and containing %d", fds, fd)
	}
	target, err := FdTarget(pid, fd)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(target, "/stat") {
		t.Errorf("FdTarget = %q", target)
	}
	fi, err := ReadFdInfo(pid, fd)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if fi.Pos != 3 || fi.Ino != st.Ino || fi.MntID == 0 {
		t.Errorf("fdinfo = %+v, want pos 3 ino %d", fi, st.Ino)
	}
	if fi.Flags&unix.O_ACCMODE != unix.O_RDONLY || fi.Flags&unix.O_CLOEXEC == 0 {
		t.Errorf("fdinfo flags = %#o", fi.Flags)
	}

	efd, err := unix.Eventfd(42, unix.EFD_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(efd)
	fi, err = ReadFdInfo(pid, efd)
	if err != nil {
		t.Fatal(err)
	}
	// The count is printed in hex, padded: "eventfd-count:               2a".
	if fi.Extra["eventfd-count"] != "2a" {
		t.Errorf("eventfd fdinfo = %+v", fi)
	}
	t.Logf("eventfd fdinfo lines: %q", fi.Lines)
	if target, _ := FdTarget(pid, efd); target != "anon_inode:[eventfd]" {
		t.Errorf("eventfd target = %q", target)
	}

	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ep)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		t.Fatal(err)
	}
	fi, err = ReadFdInfo(pid, ep)
	if err != nil {
		t.Fatal(err)
	}
	var tfds int
	for _, l := range fi.Lines {
		if strings.HasPrefix(l, "tfd:") {
			tfds++
		}
	}
	if tfds != 1 {
		t.Errorf("epoll fdinfo lines = %q, want one tfd line", fi.Lines)
	}
}

func TestAuxv(t *testing.T) {
	words, err := Auxv(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(words) < 2 || len(words)%2 != 0 {
		t.Fatalf("auxv has %d words", len(words))
	}
	var pagesz uint64
	for i := 0; i+1 < len(words); i += 2 {
		if words[i] == 6 { // AT_PAGESZ
			pagesz = words[i+1]
		}
	}
	if pagesz != PageSize() {
		t.Errorf("AT_PAGESZ = %d, want %d", pagesz, PageSize())
	}
	if words[len(words)-2] != 0 {
		t.Errorf("auxv does not end with AT_NULL: %v", words[len(words)-4:])
	}
}

func TestLinksAndSmallFiles(t *testing.T) {
	pid := os.Getpid()
	exe, err := Exe(pid)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := os.Executable()
	if exe != want {
		t.Errorf("Exe = %q, want %q", exe, want)
	}
	cwd, err := Cwd(pid)
	if err != nil {
		t.Fatal(err)
	}
	if wd, _ := os.Getwd(); cwd != wd {
		t.Errorf("Cwd = %q, want %q", cwd, wd)
	}
	if root, err := Root(pid); err != nil || root != "/" {
		t.Errorf("Root = %q, %v", root, err)
	}
	pers, err := Personality(pid)
	if err != nil {
		t.Fatal(err)
	}
	// personality(0xffffffff) queries without changing anything.
	curPers, _, errno := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	if errno != 0 || uint32(curPers) != pers {
		t.Errorf("Personality = %#x, want %#x", pers, curPers)
	}
	if _, err := LoginUID(pid); err != nil {
		t.Error(err)
	}
	if _, err := OOMScoreAdj(pid); err != nil {
		t.Error(err)
	}

	child := startSleep(t)
	cmdline, err := Cmdline(child)
	if err != nil || string(cmdline) != "sleep\x001000\x00" {
		t.Errorf("Cmdline = %q, %v", cmdline, err)
	}
	env, err := Environ(child)
	if err != nil || !bytes.Contains(env, []byte("PATH=")) {
		t.Errorf("Environ = %q, %v", env, err)
	}
	if err := os.WriteFile(pidPath(child, "oom_score_adj"), []byte("567"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := OOMScoreAdj(child); err != nil || v != 567 {
		t.Errorf("OOMScoreAdj = %d, %v", v, err)
	}
	// Only raise: lowering below oom_score_adj_min needs CAP_SYS_RESOURCE.
	if err := os.WriteFile(pidPath(child, "oom_score_adj"), []byte("789"), 0); err != nil {
		t.Fatal(err)
	}
	if v, err := OOMScoreAdj(child); err != nil || v != 789 {
		t.Errorf("OOMScoreAdj = %d, %v", v, err)
	}
	kids, err := ChildrenOf(pid)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(kids, child) {
		t.Errorf("ChildrenOf = %v, want %d in it", kids, child)
	}
}

func TestNamespaces(t *testing.T) {
	pid := os.Getpid()
	for _, ns := range []string{"user", "pid", "mnt", "net", "pid_for_children"} {
		ino, err := NsInode(pid, ns)
		if err != nil {
			t.Fatal(err)
		}
		var st unix.Stat_t
		if err := unix.Stat(pidPath(pid, "ns/"+ns), &st); err != nil {
			t.Fatal(err)
		}
		if ino != st.Ino {
			t.Errorf("NsInode(%s) = %d, want %d", ns, ino, st.Ino)
		}
	}
	if os.Getuid() != 0 {
		t.Skip("user namespace child needs root here")
	}
	cmd := startChild(t, &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 2000, Size: 10}},
	}, "sleep", "1000")
	child := cmd.Process.Pid
	uids, err := UIDMap(child)
	if err != nil {
		t.Fatal(err)
	}
	if want := []IDMapEntry{{0, 1000, 1}, {1, 100000, 65536}}; !slices.Equal(uids, want) {
		t.Errorf("UIDMap = %v, want %v", uids, want)
	}
	gids, err := GIDMap(child)
	if err != nil {
		t.Fatal(err)
	}
	if want := []IDMapEntry{{0, 2000, 10}}; !slices.Equal(gids, want) {
		t.Errorf("GIDMap = %v, want %v", gids, want)
	}
	// Go writes "deny" unless GidMappingsEnableSetgroups is set.
	if pol, err := SetgroupsPolicy(child); err != nil || pol != "deny" {
		t.Errorf("SetgroupsPolicy = %q, %v", pol, err)
	}
	if pol, err := SetgroupsPolicy(pid); err != nil || pol != "allow" {
		t.Errorf("own SetgroupsPolicy = %q, %v", pol, err)
	}
	childNS, err := NsInode(child, "user")
	if err != nil {
		t.Fatal(err)
	}
	if ownNS, _ := NsInode(pid, "user"); ownNS == childNS {
		t.Error("child user namespace inode equals ours")
	}
}

func TestGoneProcess(t *testing.T) {
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid // reaped, and very unlikely to be reused this fast
	checks := map[string]func() error{
		"ReadStat":   func() error { _, err := ReadStat(pid); return err },
		"ReadStatus": func() error { _, err := ReadStatus(pid); return err },
		"Maps":       func() error { _, err := Maps(pid); return err },
		"Limits":     func() error { _, err := Limits(pid); return err },
		"Fds":        func() error { _, err := Fds(pid); return err },
		"Tasks":      func() error { _, err := Tasks(pid); return err },
		"Exe":        func() error { _, err := Exe(pid); return err },
		"NsInode":    func() error { _, err := NsInode(pid, "net"); return err },
		"OpenPagemap": func() error {
			_, err := OpenPagemap(pid)
			return err
		},
	}
	for name, fn := range checks {
		err := fn()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s of reaped pid: %v, want fs.ErrNotExist", name, err)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "proc: ") {
			t.Errorf("%s error lacks prefix: %v", name, err)
		}
	}
}

// TestExitBetweenOpenAndRead covers the ESRCH a seq_file returns once the
// task is reaped after open: it must still look like fs.ErrNotExist.
func TestExitBetweenOpenAndRead(t *testing.T) {
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	f, err := os.Open(pidPath(pid, "status"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Process.Kill()
	cmd.Wait()
	_, rerr := f.Read(make([]byte, 4096))
	t.Logf("read of reaped task's status: %v", rerr)
	if rerr == nil {
		t.Skip("kernel still served the file")
	}
	err = ioError(rerr)
	if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, unix.ESRCH) {
		t.Errorf("ioError(%v) = %v, want fs.ErrNotExist and ESRCH", rerr, err)
	}
}
