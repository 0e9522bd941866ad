package dump

import (
	"fmt"
	"os"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"google.golang.org/protobuf/proto"
)

// A dump that leaves the tree running (--leave-running, --leave-stopped)
// does not copy memory while the tree is frozen. For each process it
// makes a copy-on-write snapshot of the process's memory, a stopped
// process that is not in the tree and never runs its code (injected
// clones: ptrace.Tracee.Snapshot, which also says why a cryo killed at any
// instant leaves neither a running copy nor a zombie); the tree is
// let go as soon as every image but the pages is written, the pages are
// then read from the snapshot children, and the children are killed and
// reaped. So the freeze no longer grows with memory.
//
// What a fork does not copy as it is, the areas advised MADV_DONTFORK or
// MADV_WIPEONFORK, is copied from the process while it is frozen (runs
// marked frozen). Shared memory (MAP_SHARED anonymous, memfd, System V)
// is saved by its own path during the freeze, and the pages of MAP_SHARED
// files are in the files.
//
// When a snapshot cannot be made (no guarded injection, a pid limit, a
// memory cgroup, seccomp: clone fails), that process is copied while
// frozen as before, and the log says why. CRYO_SNAPSHOT=off turns
// snapshots off (the tests use it to compare).

// snapshotEnv turns snapshots off when set to "off".
const snapshotEnv = "CRYO_SNAPSHOT"

// snapshot is one process's pages still to copy from its snapshot child.
type snapshot struct {
	p      *process
	child  *ptrace.Tracee
	slices []copySlice // the runs not copied while frozen
	f      *os.File    // its pages image, open for writing
	copied int64       // bytes copied while frozen
	// reaped: the child is dead and reaped by cryo.
	reaped bool
}

// wantSnapshots reports whether this dump copies memory from snapshots.
func (d *dumper) wantSnapshots() bool {
	return (d.opts.LeaveRunning || d.opts.LeaveStopped || d.opts.PreDump) && os.Getenv(snapshotEnv) != "off"
}

// takeSnapshot makes p's snapshot child, or returns nil (logged) when p is
// copied while frozen instead. It runs while p's scratch memory is mapped:
// the frames of the snapshot's exit path are written there (p unmaps it
// later; the snapshot keeps its own copy).
func (d *dumper) takeSnapshot(p *process, runs []pageRun) *snapshot {
	if !d.wantSnapshots() || len(runs) == 0 {
		return nil
	}
	if p.nsPid != 0 || !inCryoPidNs(p.pid) {
		// The injected clones return pids of the tree's pid namespace,
		// which ptrace.Tracee.Snapshot would take for cryo's. A
		// pre-dump reads no namespaces (nsPid unset): NSpid says it.
		p.logf("process %d: no snapshot (in a pid namespace of its own): memory copied while frozen", p.pid)
		return nil
	}
	t := p.leader()
	need := ptrace.SnapshotAreaSize(t.XstateSize())
	if need == 0 || need > scratchSize {
		p.logf("process %d: no snapshot (%v): memory copied while frozen", p.pid, ptrace.ErrNoSnapshot)
		return nil
	}
	if err := p.memcgRoomFor(snapshotCharge(runs), "a snapshot"); err != nil {
		p.logf("no snapshot (%v): memory copied while frozen", err)
		return nil
	}
	start := time.Now()
	child, err := t.Snapshot(p.scratch.addr)
	if err != nil {
		p.logf("process %d: no snapshot (%v): memory copied while frozen", p.pid, err)
		return nil
	}
	p.logf("process %d: snapshot child %d made in %v", p.pid, child.Pid, time.Since(start))
	s := &snapshot{p: p, child: child}
	d.snaps = append(d.snaps, s)
	return s
}

// savePages writes p's pagemap, and its pages: all of them now without a
// snapshot child; with one, only the frozen runs now, the rest later
// (finishSnapshots). It returns the bytes written now.
func (d *dumper) savePages(p *process, dir *image.Dir, pagesID uint32, runs []pageRun, s *snapshot) (int64, error) {
	if s == nil {
		return p.writePages(dir, pagesID, runs, &d.bufs)
	}
	f, err := dir.CreatePages(pagesID)
	if err != nil {
		return 0, err
	}
	s.f = f
	var now []copySlice
	for _, sl := range sliceRuns(runs) {
		if sl.parts[0].frozen {
			now = append(now, sl)
		} else {
			s.slices = append(s.slices, sl)
		}
	}
	s.copied, err = copySlices(p.pid, now, f, &d.bufs, d.opts.Progress)
	if err != nil {
		return s.copied, fmt.Errorf("process %d: save memory: %w", p.pid, err)
	}
	return s.copied, dir.WritePagemap(p.pid, pagesID, pagemapEntries(runs))
}

// pagemapEntries are the pagemap entries of runs: saved back to back in
// the pages image, or in the parent's images.
func pagemapEntries(runs []pageRun) []*pagemap.PagemapEntry {
	entries := make([]*pagemap.PagemapEntry, 0, len(runs))
	page := proc.PageSize()
	for _, r := range runs {
		flags := uint32(image.PagePresent)
		if r.parent {
			flags = image.PagemapInParent
		}
		entries = append(entries, &pagemap.PagemapEntry{
			Vaddr:   proto.Uint64(r.addr),
			NrPages: proto.Uint32(uint32(r.size / page)),
			Flags:   proto.Uint32(uint32(flags)),
		})
	}
	return entries
}

// finishSnapshots copies the pages left in the snapshot children, once
// the tree runs again, then drops the children. It returns the bytes
// written.
func (d *dumper) finishSnapshots() (int64, error) {
	var total int64
	var first error
	for _, s := range d.snaps {
		if first != nil {
			break
		}
		// Every page of the snapshot is shared with the process
		// (copy-on-write): process_vm_readv pins what it reads, and the
		// kernel copies a shared anonymous page before pinning it, so the
		// snapshot is read through /proc/PID/mem, which does not pin.
		for i := range s.slices {
			for j := range s.slices[i].parts {
				s.slices[i].parts[j].force = true
			}
		}
		n, err := copySlices(s.child.Pid, s.slices, s.f, &d.bufs, d.opts.Progress)
		total += n
		if err != nil {
			first = fmt.Errorf("process %d: save memory from its snapshot %d: %w", s.p.pid, s.child.Pid, err)
		}
	}
	if err := d.dropSnapshots(); err != nil && first == nil {
		first = err
	}
	return total, first
}

// dropSnapshots kills and reaps every snapshot child and closes the pages
// images; safe to call more than once. A snapshot is not a child of the
// tree (see ptrace.Tracee.Snapshot): reaped by cryo as its tracer, it goes
// to its real parent, a subreaper or init, which reaps it.
func (d *dumper) dropSnapshots() error {
	var first error
	for _, s := range d.snaps {
		if s.f != nil {
			if err := s.f.Close(); err != nil && first == nil {
				first = fmt.Errorf("process %d: pages image: %w", s.p.pid, err)
			}
			s.f = nil
		}
		if s.reaped {
			continue
		}
		s.child.Kill()
		s.child.WaitExit()
		s.reaped = true
	}
	d.snaps = nil
	return first
}

// inCryoPidNs reports whether process pid is in cryo's pid namespace (its
// NSpid has one field); false when that cannot be read.
func inCryoPidNs(pid int) bool {
	st, err := proc.ReadStatus(pid)
	return err == nil && len(st.NSpid) == 1
}
