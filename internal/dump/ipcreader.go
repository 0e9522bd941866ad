package dump

import (
	"errors"
	"fmt"
	"os"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// ipcReaderName is argv[0] of an IPC reader, for ps. It never runs its
// own code: it is killed while still a stopped stub.
const ipcReaderName = "cryo-ipc-reader"

// ipcReader is a blank stub of cryo moved into the user and IPC
// namespaces of a process of the tree, read through like the process
// itself (remote.Proc). It stands in for a process that cannot open
// /proc: a browser sandbox chroots its processes into the fdinfo
// directory of a helper that then exits (Firefox's and Chromium's), a
// dead procfs directory where every lookup fails (ESRCH or ENOENT).
// /proc/sysvipc and the IPC limits show the reader's own IPC namespace,
// and ids as its user namespace maps them, so the stub reads what the
// process would.
type ipcReader struct {
	tr *ptrace.Tracer
	rp remote.Proc
}

// unreachableProc tells whether err is an open of a /proc path failing
// because the process's root leads nowhere.
func unreachableProc(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT)
}

// startIPCReader starts a reader in the user and IPC namespaces of
// process pid: the user namespace first (unless it is cryo's), where the
// stub has every capability, then the IPC namespace, which that user
// namespace owns (or one above it).
func startIPCReader(pid int) (*ipcReader, error) {
	userNs, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
	if err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	defer userNs.Close()
	ipcNs, err := os.Open(fmt.Sprintf("/proc/%d/ns/ipc", pid))
	if err != nil {
		return nil, fmt.Errorf("IPC namespace: %w", err)
	}
	defer ipcNs.Close()
	var its, own unix.Stat_t
	if err := unix.Fstat(int(userNs.Fd()), &its); err != nil {
		return nil, fmt.Errorf("user namespace: %w", err)
	}
	if err := unix.Stat("/proc/self/ns/user", &own); err != nil {
		return nil, fmt.Errorf("cryo's user namespace: %w", err)
	}
	r := &ipcReader{tr: ptrace.NewTracer()}
	t, err := r.tr.StartStub("/proc/self/exe", []string{ipcReaderName}, []uintptr{0, 1, 2, userNs.Fd(), ipcNs.Fd()})
	if err != nil {
		r.tr.Close()
		return nil, fmt.Errorf("IPC reader: %w", err)
	}
	r.rp = remote.Proc{T: t}
	if err := r.enter(its.Ino != own.Ino); err != nil {
		r.stop()
		return nil, fmt.Errorf("IPC reader %d: %w", t.Pid, err)
	}
	return r, nil
}

// enter moves the stub into the namespaces at its descriptors 3 (user,
// if userns) and 4 (IPC) and maps its scratch area.
func (r *ipcReader) enter(userns bool) error {
	t := r.rp.T
	insn, err := remote.SyscallInsn(t.Pid)
	if err != nil {
		return err
	}
	t.SetSyscallAddr(insn)
	if userns {
		if _, err := t.Syscall(unix.SYS_SETNS, 3, unix.CLONE_NEWUSER); err != nil {
			return fmt.Errorf("enter the user namespace: %w", err)
		}
	}
	if _, err := t.Syscall(unix.SYS_SETNS, 4, unix.CLONE_NEWIPC); err != nil {
		return fmt.Errorf("enter the IPC namespace: %w", err)
	}
	addr, err := t.Syscall(unix.SYS_MMAP, 0, scratchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("map scratch memory: %w", err)
	}
	r.rp.Scratch, r.rp.Size = addr, scratchSize
	return nil
}

// stop kills the reader and reaps it.
func (r *ipcReader) stop() {
	r.rp.T.Kill()
	r.rp.T.WaitExit()
	r.tr.Close()
}
