// Package restore brings a checkpointed process back from CRIU-format
// images: a blank stub is started under ptrace, a clone3 with set_tid
// injected into it creates the process at its old PID, and every piece of
// state is rebuilt by injecting system calls into it before it is let go.
package restore

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"google.golang.org/protobuf/proto"

	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// Options says what to restore and how.
type Options struct {
	Dir      string
	Detach   bool   // return once the process runs (-d)
	PidFile  string // write the restored PID there
	ShellJob bool   // hand terminals to the restoring terminal (-j)
	// StubPath is the executable started as the blank stub; any static-enough
	// binary works since none of its code runs. Default: cryo itself.
	StubPath string
	Logf     func(format string, args ...any)
}

// Process is a restored process that is cryo's child.
type Process struct{ Pid int }

// Wait waits for the restored process to exit and returns its exit status
// the way a shell reports it (128+signal when killed).
func (p *Process) Wait() (int, error) {
	for {
		var ws unix.WaitStatus
		// __WALL: the restored process was created with exit_signal 0.
		_, err := unix.Wait4(p.Pid, &ws, unix.WALL, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("wait for %d: %w", p.Pid, err)
		}
		switch {
		case ws.Exited():
			return ws.ExitStatus(), nil
		case ws.Signaled():
			return 128 + int(ws.Signal()), nil
		}
	}
}

type restorer struct {
	c       *checkpoint
	dir     *image.Dir
	opts    Options
	logf    func(string, ...any)
	tr      *ptrace.Tracer
	stub    *ptrace.Tracee
	leader  *ptrace.Tracee
	threads []*ptrace.Tracee // leader first
	scratch uint64

	forking       time.Duration
	pagesRestored uint64
}

// StatsName is CRIU's name for the restore statistics image.
const StatsName = "stats-restore"

// Restore recreates the process saved in opts.Dir. On error nothing is
// left behind: the stub and any half-built process are killed and reaped.
func Restore(opts Options) (p *Process, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.StubPath == "" {
		opts.StubPath = "/proc/self/exe"
	}
	start := time.Now()
	dir, err := image.Open(opts.Dir)
	if err != nil {
		return nil, err
	}
	c, err := load(dir)
	if err != nil {
		return nil, err
	}
	if err := c.checkVmas(); err != nil {
		return nil, err
	}
	if err := c.checkPidsFree(); err != nil {
		return nil, err
	}
	r := &restorer{c: c, dir: dir, opts: opts, logf: opts.Logf, tr: ptrace.NewTracer()}
	defer r.tr.Close()
	// Whatever goes wrong, even a bug, nothing half-restored may stay.
	defer func() {
		if rec := recover(); rec != nil {
			r.abort()
			p, err = nil, fmt.Errorf("internal error while restoring %d: %v\n%s", c.pid, rec, debug.Stack())
		}
	}()
	if err := r.run(); err != nil {
		r.abort()
		return nil, err
	}
	elapsed := time.Since(start)
	r.logf("restored process %d in %v", c.pid, elapsed)
	st := &stats.StatsEntry{Restore: &stats.RestoreStatsEntry{
		PagesCompared:   proto.Uint64(0),
		PagesSkippedCow: proto.Uint64(0),
		ForkingTime:     proto.Uint32(uint32(r.forking.Microseconds())),
		RestoreTime:     proto.Uint32(uint32(elapsed.Microseconds())),
		PagesRestored:   proto.Uint64(r.pagesRestored),
	}}
	if err := dir.Write(StatsName, "STATS", st); err != nil {
		r.logf("warning: %v", err)
	}
	if opts.PidFile != "" {
		if err := os.WriteFile(opts.PidFile, []byte(strconv.Itoa(c.pid)+"\n"), 0o600); err != nil {
			return &Process{Pid: c.pid}, fmt.Errorf("write pid file: %w", err)
		}
	}
	return &Process{Pid: c.pid}, nil
}

// abort kills and reaps everything created so far; idempotent.
func (r *restorer) abort() {
	if r.stub != nil {
		r.stub.Kill()
		r.stub.WaitExit()
		r.stub = nil
	}
	if r.leader != nil {
		r.leader.Kill()
		for i := len(r.threads) - 1; i >= 0; i-- {
			r.threads[i].WaitExit()
		}
		r.leader, r.threads = nil, nil
	}
}

func (r *restorer) run() error {
	t0 := time.Now()
	if err := r.createProcess(); err != nil {
		return err
	}
	r.forking = time.Since(t0)
	if err := r.buildMemory(); err != nil {
		return err
	}
	if err := r.restoreFiles(); err != nil {
		return err
	}
	if err := r.restoreTask(); err != nil {
		return err
	}
	if err := r.createThreads(); err != nil {
		return err
	}
	for i, t := range r.threads {
		if err := r.restoreThread(t, r.c.cores[i]); err != nil {
			return err
		}
	}
	if err := r.finishTask(); err != nil {
		return err
	}
	if err := r.unmapScratch(); err != nil {
		return err
	}
	for i, t := range r.threads {
		if err := r.setRegisters(t, r.c.cores[i]); err != nil {
			return err
		}
	}
	// Threads first, the leader last, so that the process starts whole.
	for i := len(r.threads) - 1; i >= 0; i-- {
		if err := r.threads[i].Detach(); err != nil {
			return err
		}
	}
	r.leader, r.threads = nil, nil
	return nil
}

// createProcess starts the stub and clones the process at its PID from it.
func (r *restorer) createProcess() error {
	files := []uintptr{0, 1, 2}
	stub, err := r.tr.StartStub(r.opts.StubPath, []string{"cryo-restore-stub"}, files)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", r.c.pid, err)
	}
	r.stub = stub
	// Refuse early a CPU that lacks an XSAVE component the dumped threads
	// ran with: their registers could not be put back.
	template, err := stub.Xstate()
	if err != nil {
		return err
	}
	if have := cpu.Xfeatures(template); have != 0 && r.c.xfeatures&^have != 0 {
		return fmt.Errorf("restore pid %d: the image uses CPU state components %#x this CPU lacks (has %#x)", r.c.pid, r.c.xfeatures&^have, have)
	}
	insn, err := r.syscallInsn(stub.Pid)
	if err != nil {
		return err
	}
	stub.SetSyscallAddr(insn)
	regs, err := stub.Regs()
	if err != nil {
		return err
	}
	// Buffers below the stub's stack pointer: its stack is not in use.
	setTid := uint64(r.c.pid)
	buf := (regs.Rsp - 4096) &^ 15
	args := ptrace.CloneArgs{
		Flags:      unix.CLONE_PARENT, // cryo becomes the parent, not the stub
		ExitSignal: 0,                 // clone3 refuses CLONE_PARENT with a signal
		SetTid:     buf + 128,
		SetTidSize: 1,
	}
	if err := ptrace.WriteMem(stub.Pid, buf, args.Bytes()); err != nil {
		return err
	}
	if err := ptrace.WriteMem(stub.Pid, buf+128, le64bytes(setTid)); err != nil {
		return err
	}
	pid, err := stub.Syscall(unix.SYS_CLONE3, buf, uint64(len(args.Bytes())))
	if err != nil {
		switch {
		case errors.Is(err, unix.EEXIST):
			return fmt.Errorf("restore pid %d: the pid is taken", r.c.pid)
		case errors.Is(err, unix.EPERM):
			return fmt.Errorf("restore pid %d: not allowed to choose the pid (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN over the pid namespace): %w", r.c.pid, err)
		}
		return fmt.Errorf("restore pid %d: clone3: %w", r.c.pid, err)
	}
	if int(pid) != r.c.pid {
		return fmt.Errorf("restore pid %d: clone3 created %d", r.c.pid, pid)
	}
	t, err := r.tr.Adopt(r.c.pid, r.c.pid)
	if err != nil {
		return fmt.Errorf("restore pid %d: %w", r.c.pid, err)
	}
	t.SetSyscallAddr(insn)
	r.leader = t
	r.threads = []*ptrace.Tracee{t}
	// The stub's job is done.
	r.stub.Kill()
	r.stub.WaitExit()
	r.stub = nil
	r.logf("created process %d", r.c.pid)
	return nil
}

func (r *restorer) syscallInsn(pid int) (uint64, error) {
	maps, err := proc.Maps(pid)
	if err != nil {
		return 0, err
	}
	for _, m := range maps {
		if m.Path == "[vdso]" {
			return ptrace.FindSyscallInsn(pid, m.Start, m.End)
		}
	}
	return 0, fmt.Errorf("restore: stub %d has no [vdso]", pid)
}

func le64bytes(v uint64) []byte {
	b := make([]byte, 8)
	for i := range b {
		b[i] = byte(v >> (8 * i))
	}
	return b
}

// mapScratch maps the buffer area for injected calls at addr, a gap in the
// image's layout, so it never collides with a restored mapping.
func (r *restorer) mapScratch(addr uint64) error {
	got, err := r.leader.Syscall(unix.SYS_MMAP, addr, scratchSize, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
	if err != nil {
		return fmt.Errorf("restore pid %d: map scratch memory at %#x: %w", r.c.pid, addr, err)
	}
	if got != addr {
		return fmt.Errorf("restore pid %d: scratch memory landed at %#x, not %#x", r.c.pid, got, addr)
	}
	r.scratch = addr
	return nil
}

func (r *restorer) unmapScratch() error {
	if r.scratch == 0 {
		return nil
	}
	if _, err := r.leader.Syscall(unix.SYS_MUNMAP, r.scratch, scratchSize); err != nil {
		return fmt.Errorf("restore pid %d: unmap scratch memory: %w", r.c.pid, err)
	}
	r.scratch = 0
	return nil
}

// put copies data to the start of the scratch area and returns its address
// in the restored process. Each injected call uses it right away.
func (r *restorer) put(data []byte) (uint64, error) {
	return r.putAt(0, data)
}

func (r *restorer) putAt(off uint64, data []byte) (uint64, error) {
	if off+uint64(len(data)) > scratchSize {
		return 0, fmt.Errorf("restore pid %d: %d bytes do not fit the scratch area", r.c.pid, len(data))
	}
	if err := ptrace.WriteMem(r.c.pid, r.scratch+off, data); err != nil {
		return 0, err
	}
	return r.scratch + off, nil
}

// putString stores a NUL-terminated string.
func (r *restorer) putString(s string) (uint64, error) {
	return r.put(append([]byte(s), 0))
}

// atFdcwd is AT_FDCWD (-100) as a syscall argument.
const atFdcwd = ^uint64(99)

// open opens path in the restored process and returns the descriptor.
func (r *restorer) open(path string, flags uint64) (uint64, error) {
	addr, err := r.putString(path)
	if err != nil {
		return 0, err
	}
	fd, err := r.leader.Syscall(unix.SYS_OPENAT, atFdcwd, addr, flags|unix.O_CLOEXEC|unix.O_NOCTTY, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	return fd, nil
}

func procStatus(pid, tid int) (*proc.Status, error) { return proc.ReadTaskStatus(pid, tid) }
