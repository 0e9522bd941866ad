// Package nsagent opens files on cryo's behalf from inside the user
// namespace of a process, for a cryo run by the user who owns that
// namespace.
//
// Owning a user namespace gives every capability in it, but only to a
// process that is inside: seen from the initial namespace, the /proc files
// of a process that switched to one of the user's subordinate ids (its
// 0500 fd directory, its 0400 pagemap and personality) and the files it
// opened (a 0600 pipe reopened through /proc/PID/fd/N) belong to another
// user. cryo cannot enter the namespace itself (setns into a user
// namespace refuses a multithreaded caller), but a blank stub can: an
// agent is a stub cryo starts and traces, moved into the namespace by an
// injected setns. cryo then injects an openat for each path and takes the
// descriptor with pidfd_getfd, which checks cryo's ptrace access to the
// agent, its own child, and not the file's permissions again.
package nsagent

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
)

// scratchSize holds a path for an injected openat.
const scratchSize = 2 * unix.PathMax

// argv0 names agents in ps.
const argv0 = "cryo-ns-agent"

// Pool starts one agent per user namespace, when a path of a process in
// it first needs one, and stops them all on Close.
type Pool struct {
	stub string // the executable agents run: cryo's own
	logf func(format string, args ...any)

	mu     sync.Mutex
	tr     *ptrace.Tracer
	agents map[uint64]*Agent // by the user namespace's inode
	closed bool
}

// NewPool returns a pool whose agents run the executable stub.
func NewPool(stub string, logf func(format string, args ...any)) *Pool {
	return &Pool{stub: stub, logf: logf, agents: map[uint64]*Agent{}}
}

// Open opens path, a path under /proc/PID/, with flags, from inside the
// user namespace of process PID. It fits proc.SetFallback.
func (p *Pool) Open(path string, flags int) (*os.File, error) {
	pid, err := pidOf(path)
	if err != nil {
		return nil, err
	}
	a, err := p.For(pid)
	if err != nil {
		return nil, err
	}
	return a.Open(path, flags)
}

// For returns the agent in the user namespace process pid is in now,
// started if there is none yet. It stays there, also once pid is gone.
func (p *Pool) For(pid int) (*Agent, error) {
	// Not proc.FileStat: that could come back here.
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st); err != nil {
		return nil, fmt.Errorf("process %d: user namespace: %w", pid, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fmt.Errorf("process %d: the user namespace agents are stopped", pid)
	}
	for _, a := range p.agents {
		if a.rp.Pid() == pid {
			// An agent's own /proc files are cryo's to open: a refusal
			// there is not one an agent can get past.
			return nil, fmt.Errorf("process %d is an agent", pid)
		}
	}
	a := p.agents[st.Ino]
	if a == nil {
		var err error
		if a, err = p.start(pid, st.Ino); err != nil {
			return nil, fmt.Errorf("process %d: an agent in its user namespace: %w", pid, err)
		}
		p.agents[st.Ino] = a
		p.logf("agent %d entered the user namespace of process %d (user:[%d])", a.rp.Pid(), pid, st.Ino)
	}
	return a, nil
}

// Close stops every agent; idempotent. Open fails afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for ino, a := range p.agents {
		a.stop()
		delete(p.agents, ino)
	}
	if p.tr != nil {
		p.tr.Close()
		p.tr = nil
	}
}

// pidOf is the PID in a path /proc/PID/...
func pidOf(path string) (int, error) {
	rest, ok := strings.CutPrefix(path, "/proc/")
	if ok {
		rest, _, _ = strings.Cut(rest, "/")
		if pid, err := strconv.Atoi(rest); err == nil && pid > 0 {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("%s is not a path under /proc/PID", path)
}

// Agent is one stub inside one user namespace, root there if the
// namespace maps 0 (see becomeRoot).
type Agent struct {
	mu    sync.Mutex
	rp    remote.Proc
	pidfd int
}

// start makes an agent in the user namespace of process pid, whose
// inode is ino.
func (p *Pool) start(pid int, ino uint64) (*Agent, error) {
	if p.tr == nil {
		p.tr = ptrace.NewTracer()
	}
	t, err := p.tr.StartStub(p.stub, []string{argv0}, nil)
	if err != nil {
		return nil, err
	}
	a := &Agent{rp: remote.Proc{T: t}, pidfd: -1}
	if err := a.enter(pid, ino); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

// enter gives the blank stub a scratch area, a descriptor for taking its
// files, and moves it into process pid's user namespace, inode ino.
func (a *Agent) enter(pid int, ino uint64) error {
	t := a.rp.T
	insn, err := remote.SyscallInsn(t.Pid)
	if err != nil {
		return err
	}
	t.SetSyscallAddr(insn)
	addr, err := t.Syscall(unix.SYS_MMAP, 0, scratchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("agent %d: map scratch memory: %w", t.Pid, err)
	}
	a.rp.Scratch, a.rp.Size = addr, scratchSize
	if a.pidfd, err = unix.PidfdOpen(t.Pid, 0); err != nil {
		return fmt.Errorf("agent %d: pidfd: %w", t.Pid, err)
	}
	// The namespace the agent enters must be the one it is kept for:
	// pid may have moved to another since cryo looked. The descriptor
	// checked (through cryo's copy) is the one entered.
	path := fmt.Sprintf("/proc/%d/ns/user", pid)
	fd, err := a.rp.Open(path, unix.O_RDONLY)
	if err != nil {
		return err
	}
	defer a.rp.Call(unix.SYS_CLOSE, fd)
	ns, err := a.take(fd, path)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(ns.Fd()), &st)
	ns.Close()
	if err != nil {
		return err
	}
	if st.Ino != ino {
		return fmt.Errorf("process %d changed user namespace (user:[%d], was user:[%d])", pid, st.Ino, ino)
	}
	if _, err = a.rp.Call(unix.SYS_SETNS, fd, unix.CLONE_NEWUSER); err != nil {
		return fmt.Errorf("agent %d: enter the user namespace: %w", t.Pid, err)
	}
	return a.becomeRoot()
}

// becomeRoot makes the agent root of its namespace, with ids of the
// namespace: else it keeps the host ids of cryo's user, and a process of
// the namespace that may ptrace it (CAP_SYS_PTRACE there) could borrow
// them, reaching files the namespace does not map. Where 0 is not mapped
// (unshare -c), cryo's user must be, and the agent keeps its ids, which
// the namespace's processes may have anyway. It stays dumpable, so that
// cryo, the owner of the namespace, can take its descriptors.
func (a *Agent) becomeRoot() error {
	if _, err := a.rp.Call(unix.SYS_SETRESGID, 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("agent %d: become gid 0 of the namespace: %w", a.rp.Pid(), err)
	}
	if _, err := a.rp.Call(unix.SYS_SETRESUID, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		if uid, err := a.rp.Call(unix.SYS_GETUID); err != nil || uint32(uid) == overflowID {
			return fmt.Errorf("agent %d: neither root nor cryo's user is mapped in the namespace", a.rp.Pid())
		}
	} else if err != nil {
		return fmt.Errorf("agent %d: become uid 0 of the namespace: %w", a.rp.Pid(), err)
	}
	// Without supplementary groups where the namespace allows dropping
	// them (it may deny setgroups: then they are the user's, as the
	// namespace's first process had them).
	a.rp.Call(unix.SYS_SETGROUPS, 0, 0)
	if _, err := a.rp.Call(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil {
		return fmt.Errorf("agent %d: dumpable: %w", a.rp.Pid(), err)
	}
	return nil
}

// overflowID is how an id the namespace does not map reads inside.
const overflowID = 65534

// Open opens path with flags in the agent and takes the descriptor.
func (a *Agent) Open(path string, flags int) (*os.File, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.open(path, flags)
}

func (a *Agent) open(path string, flags int) (*os.File, error) {
	fd, err := a.rp.Open(path, uint64(flags))
	if err != nil {
		return nil, err
	}
	defer a.rp.Call(unix.SYS_CLOSE, fd)
	return a.take(fd, path)
}

// take copies the agent's descriptor fd, open on path, into cryo.
func (a *Agent) take(fd uint64, path string) (*os.File, error) {
	own, err := unix.PidfdGetfd(a.pidfd, int(fd), 0)
	if err != nil {
		return nil, fmt.Errorf("agent %d: take its descriptor for %s: %w", a.rp.Pid(), path, err)
	}
	return os.NewFile(uintptr(own), path), nil
}

// stop kills the agent and reaps it.
func (a *Agent) stop() {
	if a.pidfd >= 0 {
		unix.Close(a.pidfd)
		a.pidfd = -1
	}
	a.rp.T.Kill()
	a.rp.T.WaitExit()
}

// CreateFile makes a new file at path (O_EXCL, not following a link at
// the end) with contents data, then gives it owner uid:gid, ids as the
// agent's namespace sees them, and mode perm, in that order so that chown
// does not clear set-id bits. On error nothing is left at path.
func (a *Agent) CreateFile(path string, data []byte, perm, uid, gid uint32) (err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fd, err := a.rp.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW)
	if err != nil {
		return err
	}
	defer a.rp.Call(unix.SYS_CLOSE, fd)
	defer func() {
		if err != nil {
			a.unlink(path)
		}
	}()
	own, err := a.take(fd, path)
	if err != nil {
		return err
	}
	_, err = own.Write(data)
	if cerr := own.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := a.rp.Call(unix.SYS_FCHOWN, fd, uint64(uid), uint64(gid)); err != nil {
		return fmt.Errorf("agent %d: chown %s to %d:%d: %w", a.rp.Pid(), path, uid, gid, err)
	}
	if _, err := a.rp.Call(unix.SYS_FCHMOD, fd, uint64(perm)); err != nil {
		return fmt.Errorf("agent %d: chmod %s to %#o: %w", a.rp.Pid(), path, perm, err)
	}
	return nil
}

// Remove unlinks the file at path.
func (a *Agent) Remove(path string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.unlink(path)
}

func (a *Agent) unlink(path string) error {
	addr, err := a.rp.Put(0, append([]byte(path), 0))
	if err != nil {
		return err
	}
	if _, err := a.rp.Call(unix.SYS_UNLINKAT, remote.AtFdcwd, addr, 0); err != nil {
		return fmt.Errorf("agent %d: remove %s: %w", a.rp.Pid(), path, err)
	}
	return nil
}
