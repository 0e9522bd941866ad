// Package dump checkpoints a running process: it freezes every thread with
// ptrace, collects the process state from /proc, ptrace and injected system
// calls, copies memory, writes CRIU-format images, and then kills the
// process or lets it run on.
package dump

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"sort"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"google.golang.org/protobuf/proto"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// Options says what to dump and how.
type Options struct {
	Pid          int
	Dir          string
	LeaveRunning bool // resume the process after the dump instead of killing it
	ShellJob     bool // the process may hold the caller's terminal (-j)
	Logf         func(format string, args ...any)
}

// Dump checkpoints opts.Pid into opts.Dir. On any error the process is left
// running as it was: registers restored, scratch memory unmapped, detached.
func Dump(opts Options) (err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	pid := opts.Pid
	if pid <= 0 {
		return fmt.Errorf("invalid pid %d", pid)
	}
	st, err := proc.ReadStatus(pid)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("process %d does not exist", pid)
		}
		return fmt.Errorf("process %d: %w", pid, err)
	}
	if st.Tgid != pid {
		return fmt.Errorf("%d is a thread of process %d: dump the process", pid, st.Tgid)
	}
	if pid == os.Getpid() {
		return fmt.Errorf("process %d is cryo itself", pid)
	}
	dir, err := image.Create(opts.Dir)
	if err != nil {
		return err
	}

	tr := ptrace.NewTracer()
	defer tr.Close()
	p := &process{pid: pid, tr: tr, opts: opts, logf: opts.Logf}
	// Whatever goes wrong, even a bug, the process must run on as it was.
	defer func() {
		if r := recover(); r != nil {
			p.release()
			err = fmt.Errorf("internal error while dumping %d (process left running): %v\n%s", pid, r, debug.Stack())
		}
	}()
	p.stats.frozenAt = time.Now()
	if err := p.seize(); err != nil {
		p.release()
		return err
	}
	p.stats.freezing = time.Since(p.stats.frozenAt)
	opts.Logf("seized process %d: %d threads", pid, len(p.threads))
	if err := p.checkpoint(dir); err != nil {
		p.release()
		return err
	}
	if opts.LeaveRunning {
		if err := p.release(); err != nil {
			return fmt.Errorf("resume process %d: %w", pid, err)
		}
		opts.Logf("process %d left running", pid)
	} else {
		p.kill()
		opts.Logf("process %d killed", pid)
	}
	p.stats.frozen = time.Since(p.stats.frozenAt)
	opts.Logf("frozen for %v", p.stats.frozen)
	if err := dir.Write(StatsName, "STATS", p.stats.entry()); err != nil {
		opts.Logf("warning: %v", err)
	}
	return nil
}

// StatsName is CRIU's name for the dump statistics image.
const StatsName = "stats-dump"

// dumpStats are the figures CRIU's stats-dump image holds (microseconds).
type dumpStats struct {
	frozenAt                 time.Time
	freezing, frozen         time.Duration
	memdump, memwrite        time.Duration
	pagesScanned, pagesSaved uint64
}

func usec(d time.Duration) *uint32 { return proto.Uint32(uint32(d.Microseconds())) }

func (s *dumpStats) entry() *stats.StatsEntry {
	return &stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime:       usec(s.freezing),
		FrozenTime:         usec(s.frozen),
		MemdumpTime:        usec(s.memdump),
		MemwriteTime:       usec(s.memwrite),
		PagesScanned:       proto.Uint64(s.pagesScanned),
		PagesSkippedParent: proto.Uint64(0),
		PagesWritten:       proto.Uint64(s.pagesSaved),
		PagesLazy:          proto.Uint64(0),
	}}
}

// process is one process being dumped.
type process struct {
	pid     int
	tr      *ptrace.Tracer
	opts    Options
	logf    func(string, ...any)
	threads []*ptrace.Tracee // leader first
	scratch scratch
	stats   dumpStats
}

// seize attaches to every thread, looping until no new thread appears.
func (p *process) seize() error {
	seen := map[int]bool{}
	for {
		tids, err := proc.Tasks(p.pid)
		if err != nil {
			return fmt.Errorf("process %d: list threads: %w", p.pid, err)
		}
		added := false
		for _, tid := range tids {
			if seen[tid] {
				continue
			}
			seen[tid] = true
			t, err := p.tr.Seize(p.pid, tid)
			if err != nil {
				if errors.Is(err, unix.ESRCH) && tid != p.pid {
					continue // the thread exited meanwhile
				}
				if errors.Is(err, unix.EPERM) {
					return fmt.Errorf("process %d: thread %d: not allowed to trace it (already traced, or not ours): %w", p.pid, tid, err)
				}
				return fmt.Errorf("process %d: %w", p.pid, err)
			}
			p.threads = append(p.threads, t)
			added = true
		}
		if !added {
			break
		}
	}
	sort.Slice(p.threads, func(i, j int) bool {
		a, b := p.threads[i], p.threads[j]
		if (a.Tid == p.pid) != (b.Tid == p.pid) {
			return a.Tid == p.pid
		}
		return a.Tid < b.Tid
	})
	if len(p.threads) == 0 || p.threads[0].Tid != p.pid {
		return fmt.Errorf("process %d: could not seize its main thread", p.pid)
	}
	return nil
}

func (p *process) leader() *ptrace.Tracee { return p.threads[0] }

// release undoes everything done to the process and detaches from it.
// It is safe to call more than once.
func (p *process) release() error {
	var first error
	if err := p.scratch.unmap(); err != nil {
		first = err
	}
	for _, t := range p.threads {
		if err := t.Detach(); err != nil && first == nil {
			first = err
		}
	}
	p.threads = nil
	return first
}

// kill kills the dumped process and waits until every thread is gone, so
// that its parent sees it exit as soon as cryo lets go.
func (p *process) kill() {
	if len(p.threads) == 0 {
		return
	}
	p.leader().Kill()
	// Non-leader threads first: a leader is reported only after them.
	for i := len(p.threads) - 1; i >= 0; i-- {
		p.threads[i].WaitExit()
	}
	p.threads = nil
}
