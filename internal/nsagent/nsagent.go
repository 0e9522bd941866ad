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
	agents map[uint64]*agent // by the user namespace's inode
}

// NewPool returns a pool whose agents run the executable stub.
func NewPool(stub string, logf func(format string, args ...any)) *Pool {
	return &Pool{stub: stub, logf: logf, agents: map[uint64]*agent{}}
}

// Open opens path, a path under /proc/PID/, with flags, from inside the
// user namespace of process PID. It fits proc.SetFallback.
func (p *Pool) Open(path string, flags int) (*os.File, error) {
	pid, err := pidOf(path)
	if err != nil {
		return nil, err
	}
	// Not proc.FileStat: that could come back here.
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/ns/user", pid), &st); err != nil {
		return nil, fmt.Errorf("process %d: user namespace: %w", pid, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.agents[st.Ino]
	if a == nil {
		if a, err = p.start(pid); err != nil {
			return nil, fmt.Errorf("process %d: an agent in its user namespace: %w", pid, err)
		}
		p.agents[st.Ino] = a
		p.logf("agent %d entered the user namespace of process %d (user:[%d])", a.rp.Pid(), pid, st.Ino)
	}
	return a.open(path, flags)
}

// Close stops every agent; idempotent.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
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

// agent is one stub inside one user namespace.
type agent struct {
	rp    remote.Proc
	pidfd int
}

// start makes an agent in the user namespace of process pid.
func (p *Pool) start(pid int) (*agent, error) {
	if p.tr == nil {
		p.tr = ptrace.NewTracer()
	}
	t, err := p.tr.StartStub(p.stub, []string{argv0}, nil)
	if err != nil {
		return nil, err
	}
	a := &agent{rp: remote.Proc{T: t}, pidfd: -1}
	if err := a.enter(pid); err != nil {
		a.stop()
		return nil, err
	}
	return a, nil
}

// enter gives the blank stub a scratch area, a descriptor for taking its
// files, and moves it into process pid's user namespace.
func (a *agent) enter(pid int) error {
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
	// pid is frozen by the dump: its PID, and so this namespace, cannot
	// change under us.
	fd, err := a.rp.Open(fmt.Sprintf("/proc/%d/ns/user", pid), unix.O_RDONLY)
	if err != nil {
		return err
	}
	_, err = a.rp.Call(unix.SYS_SETNS, fd, unix.CLONE_NEWUSER)
	a.rp.Call(unix.SYS_CLOSE, fd)
	if err != nil {
		return fmt.Errorf("agent %d: enter the user namespace: %w", t.Pid, err)
	}
	return nil
}

// open opens path in the agent and takes the descriptor.
func (a *agent) open(path string, flags int) (*os.File, error) {
	fd, err := a.rp.Open(path, uint64(flags))
	if err != nil {
		return nil, err
	}
	defer a.rp.Call(unix.SYS_CLOSE, fd)
	own, err := unix.PidfdGetfd(a.pidfd, int(fd), 0)
	if err != nil {
		return nil, fmt.Errorf("agent %d: take its descriptor for %s: %w", a.rp.Pid(), path, err)
	}
	return os.NewFile(uintptr(own), path), nil
}

// stop kills the agent and reaps it.
func (a *agent) stop() {
	if a.pidfd >= 0 {
		unix.Close(a.pidfd)
		a.pidfd = -1
	}
	a.rp.T.Kill()
	a.rp.T.WaitExit()
}
