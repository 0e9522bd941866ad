package dump

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/memtrack"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// Incremental dumps (CRIU's pre-dump, --prev-images-dir, --track-mem).
//
// `cryo pre-dump -t PID -D DIR1` freezes the tree, saves the memory of each
// process (pagemap and pages images, an inventory, nothing else), starts
// tracking writes and lets the tree run on. `cryo dump ... -D DIR2
// --prev-images-dir ../DIR1 --track-mem` (or a further pre-dump) links
// DIR2/parent to DIR1 and saves only the pages written since: the others
// are pagemap entries flagged in_parent, which restore reads from DIR1
// (and its own parents).
//
// Tracking (package memtrack): a userfaultfd injected into each process
// (UFFD_USER_MODE_ONLY), taken with pidfd_getfd and closed in the process,
// set to WP_ASYNC, registered in write-protect mode over the private
// areas; their present pages are write-protected while the tree is frozen,
// before they are copied. A write after that clears a page's protection;
// PAGEMAP_SCAN on /proc/PID/pagemap lists the written pages. A keeper
// process holds the userfaultfds from one pre-dump to the next dump.
//
// A page is taken from the parent only if all hold: the parent's pagemap
// of that pid has it, the process is the one the keeper tracked (pid and
// start time), its area is still registered (VmFlags "uw"), and the scan
// does not report it written. Otherwise it is copied: a new area, a new
// process, a lost keeper ("tracking lost" in the log) all mean a full copy
// of what they cover, never a wrong page.

// tracking is what a dump knows of the writes since its parent.
type tracking struct {
	// fds are the userfaultfds the keeper held, by pid (process checked).
	fds map[int]int
	// parent is the previous dump's images directory, and have the pages
	// its pagemap lists, by pid.
	parent *image.Dir
	have   map[int][]span
	// started are the userfaultfds a pre-dump hands to the next keeper.
	started []int
	procs   []memtrack.Proc
}

// span is a range of addresses [start, end).
type span struct{ start, end uint64 }

// openTracking takes the keeper's userfaultfds of the tree at pid and
// opens the parent images; a tracker that cannot be used is logged and
// dropped (its pages are then copied).
func (d *dumper) openTracking(pid int) error {
	tr := &tracking{fds: map[int]int{}, have: map[int][]span{}}
	d.track = tr
	if d.opts.ParentDir == "" {
		// A pre-dump that starts a chain: an older tracker of this tree
		// is useless (it counts from another dump), closed.
		if _, fds, err := memtrack.Take(pid); err == nil {
			closeFds(fds)
		}
		return nil
	}
	rel := filepath.Clean(d.opts.ParentDir)
	if filepath.IsAbs(rel) || !strings.HasPrefix(rel, "../") || strings.Contains(strings.TrimPrefix(rel, "../"), "/") {
		return fmt.Errorf("--prev-images-dir %q: give the previous images directory relative to -D, as a sibling (../DIR)", d.opts.ParentDir)
	}
	dir, err := image.Open(d.opts.Dir)
	if err != nil {
		return err
	}
	if err := dir.LinkParent(d.opts.ParentDir); err != nil {
		return err
	}
	parent, err := dir.Parent()
	if err != nil {
		return err
	}
	if err := parent.CheckComplete(); err != nil {
		return fmt.Errorf("--prev-images-dir %s: %w", d.opts.ParentDir, err)
	}
	tr.parent = parent
	m, fds, err := memtrack.Take(pid)
	if err != nil {
		d.logf("memory tracking lost (%v): every page is copied", err)
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(parent.Path(), &st); err != nil || st.Dev != m.DirDev || st.Ino != m.DirIno {
		d.logf("memory tracking counts from %s, not from %s: every page is copied", m.Dir, parent.Path())
		closeFds(fds)
		return nil
	}
	for i, p := range m.Procs {
		if s, err := proc.ReadStat(p.Pid); err == nil && s.StartTime == p.Start {
			tr.fds[p.Pid] = fds[i]
		} else {
			unix.Close(fds[i])
		}
	}
	return nil
}

// closeTracking ends the tracking of a dump (the userfaultfds close, the
// kernel drops every protection), or hands the pre-dump's to a keeper.
func (d *dumper) closeTracking(handOver bool) {
	tr := d.track
	if tr == nil {
		return
	}
	for _, fd := range tr.fds {
		unix.Close(fd)
	}
	tr.fds = nil
	if !handOver || len(tr.started) == 0 {
		closeFds(tr.started)
		tr.started = nil
		return
	}
	var st unix.Stat_t
	abs, _ := filepath.Abs(d.opts.Dir)
	if err := unix.Stat(d.opts.Dir, &st); err != nil {
		d.logf("warning: memory tracking not kept: %v", err)
		closeFds(tr.started)
		tr.started = nil
		return
	}
	m := memtrack.Meta{Dir: abs, DirDev: st.Dev, DirIno: st.Ino, Procs: tr.procs}
	pid, err := memtrack.Hand(d.procs[0].pid, m, tr.started)
	tr.started = nil
	if err != nil {
		d.logf("warning: memory tracking not kept (the next dump copies everything): %v", err)
		return
	}
	d.logf("memory tracking of %d processes kept by process %d", len(m.Procs), pid)
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// parentRuns marks the runs of p whose pages the parent holds unchanged
// (see the rules above); it splits runs where that changes.
func (d *dumper) parentRuns(p *process, maps []proc.Mapping, runs []pageRun) ([]pageRun, error) {
	tr := d.track
	if tr == nil || tr.parent == nil || len(runs) == 0 {
		return runs, nil
	}
	if _, ok := tr.fds[p.pid]; !ok {
		p.logf("process %d: no tracked writes since %s: all its pages are copied", p.pid, tr.parent.Path())
		return runs, nil
	}
	have, err := tr.parentHas(p.pid)
	if err != nil || len(have) == 0 {
		if err != nil {
			p.logf("process %d: parent pagemap: %v: all its pages are copied", p.pid, err)
		}
		return runs, nil
	}
	pm, err := unix.Open(fmt.Sprintf("/proc/%d/pagemap", p.pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("process %d: pagemap: %w", p.pid, err)
	}
	defer unix.Close(pm)
	written, err := memtrack.Written(pm, runs[0].addr, runs[len(runs)-1].addr+runs[len(runs)-1].size)
	if err != nil {
		p.logf("process %d: %v: all its pages are copied", p.pid, err)
		return runs, nil
	}
	var clean []span // tracked areas: registered with the userfaultfd
	for _, m := range maps {
		if m.VmFlags.Has(proc.FlagUffdWP) {
			clean = append(clean, span{m.Start, m.End})
		}
	}
	var dirty []span
	for _, w := range written {
		dirty = append(dirty, span{w.Start, w.End})
	}
	out := markParent(runs, intersect(have, clean), dirty, proc.PageSize())
	var n uint64
	for _, r := range out {
		if r.parent {
			n += r.size
		}
	}
	d.stats.pagesParent += n / proc.PageSize()
	p.logf("process %d: %d of its pages unchanged since %s", p.pid, n/proc.PageSize(), tr.parent.Path())
	return out, nil
}

// parentHas lists the pages the parent's pagemap of pid covers.
func (tr *tracking) parentHas(pid int) ([]span, error) {
	if s, ok := tr.have[pid]; ok {
		return s, nil
	}
	_, entries, err := tr.parent.ReadPagemap(pid)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []span
	page := proc.PageSize()
	for _, e := range entries {
		out = append(out, span{e.GetVaddr(), e.GetVaddr() + uint64(e.GetNrPages())*page})
	}
	tr.have[pid] = out
	return out, nil
}

// intersect returns the parts of a inside b (both sorted, disjoint).
func intersect(a, b []span) []span {
	var out []span
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		s, e := max(a[i].start, b[j].start), min(a[i].end, b[j].end)
		if s < e {
			out = append(out, span{s, e})
		}
		if a[i].end < b[j].end {
			i++
		} else {
			j++
		}
	}
	return out
}

// markParent splits runs into parts inside ok and outside dirty (in the
// parent) and the rest (copied). ok and dirty are sorted and disjoint.
func markParent(runs []pageRun, ok, dirty []span, page uint64) []pageRun {
	inParent := func(addr uint64) bool {
		i := sort.Search(len(ok), func(i int) bool { return ok[i].end > addr })
		if i == len(ok) || ok[i].start > addr {
			return false
		}
		j := sort.Search(len(dirty), func(j int) bool { return dirty[j].end > addr })
		return j == len(dirty) || dirty[j].start > addr
	}
	var out []pageRun
	for _, r := range runs {
		first := len(out) // runs are never merged: each stays in its area
		for a := r.addr; a < r.addr+r.size; a += page {
			pr := inParent(a)
			if k := len(out) - 1; k >= first && out[k].parent == pr {
				out[k].size += page
				continue
			}
			nr := r
			nr.addr, nr.size, nr.parent = a, page, pr
			out = append(out, nr)
		}
	}
	return out
}

// startTracking makes p's writes tracked from now on (p is frozen, its
// pages not yet copied): it takes the userfaultfd the keeper held for it,
// or injects a new one, registers every private area in write-protect mode
// and protects the present pages. A failure is logged: the next dump then
// copies all of p.
func (d *dumper) startTracking(p *process, maps []proc.Mapping) {
	tr := d.track
	if len(tr.procs) >= memtrack.MaxProcs {
		p.logf("process %d: writes not tracked: one keeper holds at most %d processes", p.pid, memtrack.MaxProcs)
		return
	}
	start := time.Now()
	fd, ok := tr.fds[p.pid]
	if ok {
		delete(tr.fds, p.pid)
	} else {
		var err error
		if fd, err = d.newUffd(p); err != nil {
			p.logf("process %d: writes not tracked: %v", p.pid, err)
			return
		}
	}
	pm, err := unix.Open(fmt.Sprintf("/proc/%d/pagemap", p.pid), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		p.logf("process %d: writes not tracked: pagemap: %v", p.pid, err)
		return
	}
	defer unix.Close(pm)
	areas := 0
	for _, m := range maps {
		if m.Shared || m.IsSpecial() || m.Path == "[vsyscall]" || m.Path == "[vdso]" || m.Path == "[vvar]" ||
			m.Path == "[vvar_vclock]" || m.VmFlags.Has(proc.FlagIO) || m.VmFlags.Has(proc.FlagPFNMap) {
			continue
		}
		if err := memtrack.RegisterWP(fd, m.Start, m.End); err != nil {
			p.logf("process %d: %v: that area's pages are copied whole next time", p.pid, err)
			continue
		}
		if err := memtrack.Protect(pm, m.Start, m.End); err != nil {
			p.logf("process %d: %v: that area's pages are copied whole next time", p.pid, err)
			continue
		}
		areas++
	}
	st, err := proc.ReadStat(p.pid)
	if err != nil {
		unix.Close(fd)
		return
	}
	tr.started = append(tr.started, fd)
	tr.procs = append(tr.procs, memtrack.Proc{Pid: p.pid, Start: st.StartTime})
	p.logf("process %d: writes tracked in %d areas (%v)", p.pid, areas, time.Since(start))
}

// newUffd creates a userfaultfd in WP_ASYNC mode bound to p's memory: the
// call is injected (a userfaultfd belongs to the memory of the process
// that made it), the descriptor taken with pidfd_getfd and closed in p.
func (d *dumper) newUffd(p *process) (int, error) {
	t := p.leader()
	rfd, err := t.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|memtrack.UserModeOnly)
	if err != nil {
		return -1, fmt.Errorf("userfaultfd: %w", err)
	}
	pidfd, err := unix.PidfdOpen(p.pid, 0)
	var fd int
	if err == nil {
		fd, err = unix.PidfdGetfd(pidfd, int(rfd), 0)
		unix.Close(pidfd)
	}
	if _, cerr := t.Syscall(unix.SYS_CLOSE, rfd); cerr != nil && err == nil {
		unix.Close(fd)
		return -1, fmt.Errorf("close its userfaultfd: %w", cerr)
	}
	if err != nil {
		return -1, fmt.Errorf("pidfd_getfd: %w", err)
	}
	if err := memtrack.EnableWPAsync(fd); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// preDump saves the memory of every process of the frozen tree into dir
// (pagemap and pages, in_parent where the parent holds a page unchanged),
// with tracking started before the copy, then the inventory.
func (d *dumper) preDump(dir *image.Dir) error {
	if err := dir.Invalidate(); err != nil {
		return err
	}
	for i, p := range d.procs {
		if p.zombie || p.helper {
			continue
		}
		if err := d.step("pre-dump: process"); err != nil {
			return err
		}
		if err := p.preDump(d, dir, i); err != nil {
			return err
		}
	}
	if len(d.snaps) > 0 {
		return nil // the inventory comes after the snapshots' pages
	}
	if err := dir.SyncAll(); err != nil {
		return err
	}
	return d.writeInventory(dir)
}

// preDump saves one frozen process's memory.
func (p *process) preDump(d *dumper, dir *image.Dir, index int) error {
	maps, err := proc.Maps(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: memory map: %w", p.pid, err)
	}
	for _, m := range maps {
		if m.Path == "[vdso]" {
			insn, err := ptrace.FindSyscallInsn(p.pid, m.Start, m.End)
			if err != nil {
				return err
			}
			for _, t := range p.threads {
				t.SetSyscallAddr(insn)
			}
		}
	}
	if err := p.scratch.guardThreads(p, maps); err != nil {
		return err
	}
	if err := p.mapScratch(); err != nil {
		return err
	}
	_, runs, err := p.vmaEntries(maps, d.files)
	if err != nil {
		return err
	}
	// Written pages are read before the areas are protected again.
	if runs, err = d.parentRuns(p, maps, runs); err != nil {
		return err
	}
	if d.opts.TrackMem {
		d.startTracking(p, maps)
	}
	// Protected first, then the snapshot: a write after the tree runs
	// again is tracked, and the snapshot holds the page as it was.
	snap := d.takeSnapshot(p, runs)
	if err := p.scratch.unmap(); err != nil {
		return err
	}
	start := time.Now()
	n, err := d.savePages(p, dir, uint32(index+1), runs, snap)
	if err != nil {
		return err
	}
	d.stats.memwrite += time.Since(start)
	d.stats.pagesSaved += uint64(n) / proc.PageSize()
	for _, m := range maps {
		d.stats.pagesScanned += m.Size() / proc.PageSize()
	}
	p.logf("process %d: pre-dumped %d bytes of memory in %v", p.pid, n, time.Since(start))
	return nil
}

// finishPreDump saves the memory of the seized tree, hands the tracking to
// a keeper and lets the tree run on.
func (d *dumper) finishPreDump(dir *image.Dir) error {
	pid := d.procs[0].pid
	if err := d.preDump(dir); err != nil {
		d.report(err)
		d.release()
		return err
	}
	d.closeTracking(true)
	// Kept out of release, which drops the snapshots of a failed dump.
	snaps := d.snaps
	d.snaps = nil
	err := d.release()
	d.snaps = snaps
	if err != nil {
		d.dropSnapshots()
		return fmt.Errorf("resume process %d: %w", pid, err)
	}
	d.stats.frozen = time.Since(d.stats.frozenAt)
	if len(d.snaps) > 0 {
		d.logf("tree of %d runs again after %v; copying its memory from %d snapshots", pid, d.stats.frozen, len(d.snaps))
		start := time.Now()
		n, err := d.finishSnapshots()
		d.stats.memwrite += time.Since(start)
		d.stats.pagesSaved += uint64(n) / proc.PageSize()
		if err == nil {
			if err = dir.SyncAll(); err == nil {
				err = d.writeInventory(dir)
			}
		}
		if err != nil {
			return fmt.Errorf("process %d (tree left running): %w", pid, err)
		}
	}
	d.logf("pre-dump of %d done; frozen for %v", pid, d.stats.frozen)
	d.logf("stats: %s", d.stats.summary())
	if err := dir.Write(StatsName, "STATS", d.stats.entry()); err != nil {
		d.logf("warning: %v", err)
	}
	return nil
}
