// Package check probes the kernel features cryo relies on or can use, for
// `cryo check` and cryo.Check. Probes that need a traced process start the
// program's own binary as a blank stub (ptrace.StubName), and one starts it as
// ProbeName in new namespaces: the program dispatches both (cryo.Init).
package check

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// ProbeName is argv[0] of the copy of the program that probeUserns starts
// in new user and pid namespaces; it must exit 0 at once.
const ProbeName = "cryo-userns-probe"

// Feature is one kernel feature cryo relies on or can use.
type Feature struct {
	// Name names it: in CRIU's words for the CRIU list.
	Name string
	// What says what it is, for the CRIU list.
	What string
	// Essential features make check fail when missing.
	Essential bool
	// Probe returns a detail to print, or why the feature is missing.
	Probe func() (string, error)
}

// Result is a probed feature.
type Result struct {
	Feature
	// Detail is what the probe said of a present feature.
	Detail string
	// Err says why the feature is missing (nil: present).
	Err error
}

// Basic returns the features `cryo check` probes. Without root (rootless),
// PIDs are chosen inside a pid namespace of the tree's user namespace
// (set_tid there is the namespace owner's right), so set_tid in the
// initial one is not essential, and user namespaces are.
func Basic(rootless bool) []Feature {
	fs := []Feature{
		{Name: "ptrace seize and syscall injection", Essential: true, Probe: probeInjection},
		{Name: "PTRACE_GET_RSEQ_CONFIGURATION", Probe: probeRseq},
		{Name: "clone3 with set_tid (CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)", Essential: !rootless, Probe: probeSetTid},
		{Name: "process_vm_readv", Essential: true, Probe: probeVMRead},
		{Name: "MADV_POPULATE_WRITE", Probe: probePopulate},
		{Name: "userfaultfd", Probe: probeUserfaultfd},
		{Name: "seccomp: suspend it in tracees and read filters (root)", Probe: probeSeccomp},
		{Name: "xsave features", Probe: func() (string, error) {
			return fmt.Sprintf("%#x", cpu.SupportedXfeatures()), nil
		}},
	}
	if rootless {
		fs = append(fs,
			Feature{Name: "user namespaces for a normal user (rootless restore)", Essential: true, Probe: probeUserns},
			Feature{Name: "newuidmap and newgidmap (subordinate ids, rootless)", Probe: probeIDHelpers})
	}
	return fs
}

// Run probes each feature in turn.
func Run(fs []Feature) []Result {
	out := make([]Result, len(fs))
	for i, f := range fs {
		out[i].Feature = f
		out[i].Detail, out[i].Err = f.Probe()
	}
	return out
}

// withStub starts a blank traced stub and runs f on it.
func withStub(f func(t *ptrace.Tracee) (string, error)) (string, error) {
	tr := ptrace.NewTracer()
	defer tr.Close()
	t, err := tr.StartStub("/proc/self/exe", []string{ptrace.StubName}, nil)
	if err != nil {
		return "", err
	}
	defer func() { t.Kill(); t.WaitExit() }()
	insn, err := remote.SyscallInsn(t.Pid)
	if err != nil {
		return "", err
	}
	t.SetSyscallAddr(insn)
	return f(t)
}

func probeInjection() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		pid, err := t.Syscall(unix.SYS_GETPID)
		if err != nil {
			return "", err
		}
		if int(pid) != t.Pid {
			return "", fmt.Errorf("injected getpid returned %d, not %d", pid, t.Pid)
		}
		return "", nil
	})
}

func probeRseq() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		_, err := t.Rseq()
		return "", err
	})
}

func probeSetTid() (string, error) {
	st, err := proc.ReadStatus(os.Getpid())
	if err != nil {
		return "", err
	}
	const capSysAdmin, capCheckpointRestore = 21, 40
	if st.CapEff&(1<<capCheckpointRestore|1<<capSysAdmin) == 0 {
		return "", fmt.Errorf("no CAP_CHECKPOINT_RESTORE: same PIDs only inside a new pid namespace")
	}
	return "", nil
}

func probeVMRead() (string, error) {
	b := []byte{1}
	if err := ptrace.ReadMem(os.Getpid(), uint64(uintptrOf(b)), make([]byte, 1)); err != nil {
		return "", err
	}
	return "", nil
}

func probePopulate() (string, error) {
	m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "", err
	}
	defer unix.Munmap(m)
	const madvPopulateWrite = 23
	return "", unix.Madvise(m, madvPopulateWrite)
}

func probeUserfaultfd() (string, error) {
	const uffdUserModeOnly = 1
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|uffdUserModeOnly, 0, 0)
	if e != 0 {
		return "", e
	}
	unix.Close(int(fd))
	return "", nil
}

// probeUserns starts the program itself as ProbeName (which exits 0 at
// once: see cryo.Init) the way a rootless restore
// starts a tree: as pid 1 of a new pid namespace in a new user namespace
// mapping the user's own ids (a restriction such as AppArmor's on
// unprivileged user namespaces shows there, not in a bare CLONE_NEWUSER).
func probeUserns() (string, error) {
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{ProbeName}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	return "", cmd.Run()
}

// probeIDHelpers finds newuidmap and newgidmap.
func probeIDHelpers() (string, error) {
	var paths []string
	for _, k := range []userns.IDKind{userns.UIDs, userns.GIDs} {
		path, err := k.FindHelper()
		if err != nil {
			return "", err
		}
		paths = append(paths, path)
	}
	return strings.Join(paths, ", "), nil
}

// probeKcmpEpoll asks kcmp for the file behind a watch of an epoll set of
// cryo's own: the kernel knows KCMP_EPOLL_TFD from Linux 4.13.
func probeKcmpEpoll() (string, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(ep)
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(ev)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		return "", err
	}
	pid := os.Getpid()
	same, err := kcmpEpollTfd(pid, ev, pid, ep, ev)
	if err != nil {
		return "", err
	}
	if !same {
		return "", fmt.Errorf("kcmp says the watched eventfd is another file")
	}
	return "", nil
}

// kcmpEpollTFD is KCMP_EPOLL_TFD of linux/kcmp.h (x/sys/unix lacks it).
const kcmpEpollTFD = 7

// kcmpEpollTfd tells whether descriptor fd1 of pid1 is the file that the
// epoll set epfd of pid2 watches under number tfd (kcmp KCMP_EPOLL_TFD).
func kcmpEpollTfd(pid1, fd1, pid2, epfd, tfd int) (bool, error) {
	// struct kcmp_epoll_slot { __u32 efd, tfd, toff; }
	slot := make([]byte, 12)
	binary.NativeEndian.PutUint32(slot[0:], uint32(epfd))
	binary.NativeEndian.PutUint32(slot[4:], uint32(tfd))
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpEpollTFD, uintptr(fd1), uintptrOf(slot), 0)
	runtime.KeepAlive(slot)
	if e != 0 {
		return false, e
	}
	return r == 0, nil
}

func probeMntID() (string, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/0")
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "mnt_id:") {
		return "", fmt.Errorf("no mnt_id in fdinfo")
	}
	return "", nil
}

func probeTimerfdInfo() (string, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "it_value:") {
		return "", fmt.Errorf("no it_value in a timerfd's fdinfo")
	}
	return "", nil
}

func probeTimens() (string, error) {
	_, err := os.Stat("/proc/self/ns/time")
	return "", err
}

func probePidfdGetfd() (string, error) {
	pfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	fd, err := unix.PidfdGetfd(pfd, 0, 0)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}

func probeNsPid() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "\nNStgid:") {
		return "", fmt.Errorf("no NStgid in /proc/self/status")
	}
	return "", nil
}

func probeBufLock() (string, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(s)
	_, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
	return "", err
}

func probeIPv6Freebind() (string, error) {
	s, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(s)
	return "", unix.SetsockoptInt(s, unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
}

func probeOpenat2() (string, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}

func probeMemfd() (string, error) {
	fd, err := unix.MemfdCreate("cryo-check", unix.MFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}

// Names lists the names of fs, for messages.
func Names(fs []Feature) string {
	var n []string
	for _, f := range fs {
		n = append(n, f.Name)
	}
	return strings.Join(n, ", ")
}

// CRIU are the features check --feature NAME and check --all probe,
// under CRIU's names (Name) with what each is (What), limited to those
// cryo uses or could use. None is essential.
func CRIU() []Feature {
	return []Feature{
		{Name: "clone3_set_tid", What: "clone3 with set_tid, and the right to use it", Probe: probeSetTid},
		{Name: "get_rseq_conf", What: "PTRACE_GET_RSEQ_CONFIGURATION", Probe: probeRseq},
		{Name: "uffd", What: "userfaultfd", Probe: probeUserfaultfd},
		{Name: "userns", What: "user namespaces for this user", Probe: probeUserns},
		{Name: "kcmp_epoll", What: "kcmp KCMP_EPOLL_TFD, a watch's file behind any number", Probe: probeKcmpEpoll},
		{Name: "mnt_id", What: "mnt_id in /proc/PID/fdinfo", Probe: probeMntID},
		{Name: "timerfd", What: "timerfd state in /proc/PID/fdinfo", Probe: probeTimerfdInfo},
		{Name: "timens", What: "time namespaces", Probe: probeTimens},
		{Name: "pidfd_getfd", What: "pidfd_open and pidfd_getfd", Probe: probePidfdGetfd},
		{Name: "ns_pid", What: "NStgid in /proc/PID/status", Probe: probeNsPid},
		{Name: "sockopt_buf_lock", What: "SO_BUF_LOCK", Probe: probeBufLock},
		{Name: "ipv6_freebind", What: "IPV6_FREEBIND", Probe: probeIPv6Freebind},
		{Name: "openat2", What: "openat2 with RESOLVE_* flags", Probe: probeOpenat2},
		{Name: "memfd", What: "memfd_create", Probe: probeMemfd},
		{Name: "seccomp_suspend", What: "PTRACE_O_SUSPEND_SECCOMP: injected calls skip a thread's seccomp filters", Probe: probeSeccompSuspend},
		{Name: "seccomp_filters", What: "PTRACE_SECCOMP_GET_FILTER and PTRACE_GET_SECCOMP_METADATA", Probe: probeSeccompFilters},
	}
}
