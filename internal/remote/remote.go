// Package remote makes system calls inside a traced process on cryo's
// behalf, with their buffers in a scratch area of that process's memory.
//
// It is how cryo acts in a process's namespaces (IPC, UTS, ...) without
// joining them: a multithreaded program such as cryo cannot enter a user
// namespace with setns, and a cryo run by a normal user may not join the
// IPC or UTS namespace of a tree even when it owns the tree's user
// namespace. The traced process is already there, with the right
// credentials and capabilities.
package remote

import (
	"errors"
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// Proc is a stopped tracee and a scratch area mapped read-write in it.
type Proc struct {
	T       *ptrace.Tracee
	Scratch uint64 // address of the scratch area in the tracee
	Size    uint64 // its length in bytes
}

// Pid is the tracee's PID as cryo sees it.
func (p Proc) Pid() int { return p.T.Pid }

// Call injects system call nr.
func (p Proc) Call(nr uintptr, args ...uint64) (uint64, error) {
	return p.T.Syscall(nr, args...)
}

// Put copies b into the scratch area at off and returns its address.
func (p Proc) Put(off uint64, b []byte) (uint64, error) {
	if off > p.Size || uint64(len(b)) > p.Size-off {
		return 0, fmt.Errorf("process %d: %d bytes at offset %d do not fit its %d-byte scratch area", p.Pid(), len(b), off, p.Size)
	}
	if err := ptrace.WriteMem(p.Pid(), p.Scratch+off, b); err != nil {
		return 0, err
	}
	return p.Scratch + off, nil
}

// Get reads n bytes of the scratch area at off.
func (p Proc) Get(off uint64, n int) ([]byte, error) {
	if off > p.Size || uint64(n) > p.Size-off {
		return nil, fmt.Errorf("process %d: %d bytes at offset %d are beyond its %d-byte scratch area", p.Pid(), n, off, p.Size)
	}
	b := make([]byte, n)
	if err := ptrace.ReadMem(p.Pid(), p.Scratch+off, b); err != nil {
		return nil, err
	}
	return b, nil
}

// AtFdcwd is AT_FDCWD (-100) as a system call argument.
const AtFdcwd = ^uint64(99)

// Open opens path in the tracee (close-on-exec, never as its controlling
// terminal) and returns the descriptor; the name sits at the start of the
// scratch area, which the caller may reuse once this returns.
func (p Proc) Open(path string, flags uint64) (uint64, error) {
	addr, err := p.Put(0, append([]byte(path), 0))
	if err != nil {
		return 0, err
	}
	fd, err := p.Call(unix.SYS_OPENAT, AtFdcwd, addr, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, fmt.Errorf("process %d: open %s: %w", p.Pid(), path, err)
	}
	return fd, nil
}

// maxFileSize bounds ReadFile: the files read this way are small /proc
// tables, and a tracee must not make cryo read forever.
const maxFileSize = 64 << 20

// ReadFile reads a whole file as the tracee sees it: /proc files that
// depend on the reader's namespaces (/proc/sysvipc/*, /proc/sys/kernel/*).
func (p Proc) ReadFile(path string) ([]byte, error) {
	fd, err := p.Open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer p.Call(unix.SYS_CLOSE, fd)
	var out []byte
	for {
		n, err := p.Call(unix.SYS_READ, fd, p.Scratch, p.Size)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("process %d: read %s: %w", p.Pid(), path, err)
		}
		if n == 0 {
			return out, nil
		}
		b, err := p.Get(0, int(min(n, p.Size)))
		if err != nil {
			return nil, err
		}
		if out = append(out, b...); len(out) > maxFileSize {
			return nil, fmt.Errorf("process %d: %s is larger than %d bytes", p.Pid(), path, maxFileSize)
		}
	}
}

// WriteFile writes data to an existing file in one write, as the tracee:
// a /proc/sys setting of the tracee's namespaces.
func (p Proc) WriteFile(path string, data []byte) error {
	fd, err := p.Open(path, unix.O_WRONLY)
	if err != nil {
		return err
	}
	defer p.Call(unix.SYS_CLOSE, fd)
	addr, err := p.Put(0, data)
	if err != nil {
		return err
	}
	n, err := p.Call(unix.SYS_WRITE, fd, addr, uint64(len(data)))
	if err != nil {
		return fmt.Errorf("process %d: write %s: %w", p.Pid(), path, err)
	}
	if n != uint64(len(data)) {
		return fmt.Errorf("process %d: write %s: %d of %d bytes", p.Pid(), path, n, len(data))
	}
	return nil
}

// utsnameSize is sizeof(struct new_utsname): six 65-byte fields.
const (
	utsFieldLen = 65
	utsnameSize = 6 * utsFieldLen
)

// Uname returns the host and domain names of the tracee's UTS namespace.
func (p Proc) Uname() (nodename, domainname string, err error) {
	if _, err := p.Call(unix.SYS_UNAME, p.Scratch); err != nil {
		return "", "", fmt.Errorf("process %d: uname: %w", p.Pid(), err)
	}
	b, err := p.Get(0, utsnameSize)
	if err != nil {
		return "", "", err
	}
	field := func(i int) string {
		f := b[i*utsFieldLen : (i+1)*utsFieldLen]
		for j, c := range f {
			if c == 0 {
				return string(f[:j])
			}
		}
		return string(f)
	}
	return field(1), field(5), nil
}

// SyscallInsn returns the address of a syscall instruction in the [vdso]
// of process pid: the one piece of code a blank stub or a frozen process
// is sure to have, for Tracee.SetSyscallAddr.
func SyscallInsn(pid int) (uint64, error) {
	maps, err := proc.Maps(pid)
	if err != nil {
		return 0, err
	}
	for _, m := range maps {
		if m.Path == "[vdso]" {
			return ptrace.FindSyscallInsn(pid, m.Start, m.End)
		}
	}
	return 0, fmt.Errorf("process %d has no [vdso]", pid)
}

// KeepID (-1) leaves an id unchanged in setresuid and setresgid.
const KeepID = ^uint64(0)

// overflowID is how an id its user namespace does not map reads inside.
const overflowID = 65534

// AsEffective runs fn with the tracee's effective uid and gid made uid and
// gid (KeepID: unchanged), ids as its user namespace sees them, then gives
// it back its own. Real and saved ids stay: a tracee whose saved uid is 0
// gets its capabilities back with its euid.
func (p Proc) AsEffective(uid, gid uint64, fn func() error) error {
	euid, err := p.Call(unix.SYS_GETEUID)
	if err != nil {
		return fmt.Errorf("geteuid in process %d: %w", p.Pid(), err)
	}
	egid, err := p.Call(unix.SYS_GETEGID)
	if err != nil {
		return fmt.Errorf("getegid in process %d: %w", p.Pid(), err)
	}
	if _, err := p.Call(unix.SYS_SETRESGID, KeepID, gid, KeepID); err != nil {
		return fmt.Errorf("become gid %d: %w", int64(gid), err)
	}
	if _, err := p.Call(unix.SYS_SETRESUID, KeepID, uid, KeepID); err != nil {
		p.Call(unix.SYS_SETRESGID, KeepID, egid, KeepID)
		p.Call(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1)
		return fmt.Errorf("become uid %d: %w", int64(uid), err)
	}
	fnErr := fn()
	// An id of its own that its namespace does not map reads as the
	// overflow id: it cannot be named to take it back (and 65534 may be
	// another, mapped id there), so the borrowed one stays until the
	// process's credentials are set. Its real and saved ids did not change,
	// nor did its capabilities (none of its ids was 0 there).
	back := func(nr uintptr, id uint64) error {
		if id == overflowID {
			return nil
		}
		_, err := p.Call(nr, KeepID, id, KeepID)
		return err
	}
	errU, errG := back(unix.SYS_SETRESUID, euid), back(unix.SYS_SETRESGID, egid)
	// Changing ids made the tracee non-dumpable, which makes its /proc
	// files root's and, without root, its memory out of cryo's reach.
	if _, err := p.Call(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil && errU == nil {
		errU = err
	}
	if fnErr != nil {
		return fnErr
	}
	if err := errors.Join(errU, errG); err != nil {
		return fmt.Errorf("process %d: take back its ids %d/%d: %w", p.Pid(), euid, egid, err)
	}
	return nil
}
