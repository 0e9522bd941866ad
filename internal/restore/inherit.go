package restore

import (
	"fmt"
	"sort"

	"github.com/cryo-cr/cryo/internal/fdkind"
	"golang.org/x/sys/unix"
)

// Files given by the caller (CRIU's --inherit-fd fd[N]:KEY): a file of
// the tree that was shared with the world outside it (a service's stdout
// to a logger, a stream to a peer outside, a terminal) is not made again
// but replaced by the caller's descriptor N, as CRIU does. The stub
// starts with each of them at a number above every temporary descriptor
// of the plan, so that every process of the tree holds them in phase one
// (it is cloned from the stub, or from a process cloned from it) and the
// file's maker takes its copy from there; phase two's close_range drops
// them everywhere else.

// inheritKeys are the names --inherit-fd may give the file id: CRIU's
// pipe:[INO] and socket:[INO], and for a file reached through a path
// (a terminal, a FIFO) that path, with or without its leading slash.
func (s *snapshot) inheritKeys(id uint32) []string {
	return fdkind.InheritKeys(s.files[id], s.file)
}

// stubFiles returns the descriptors the stub starts with: cryo's 0-2 and
// each inherited one at its number in the tree's processes (fp.inherit).
// A key no file of the images has is logged and left out, as by CRIU.
func (r *restorer) stubFiles() []uintptr {
	files := []uintptr{0, 1, 2}
	fp := r.files
	if len(r.opts.InheritFds) == 0 {
		return files
	}
	known := map[string]bool{}
	for id := range r.snap.files {
		for _, k := range r.snap.inheritKeys(id) {
			known[k] = true
		}
	}
	keys := make([]string, 0, len(r.opts.InheritFds))
	for k := range r.opts.InheritFds {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	// Above the temporaries and the numbers a pipe's new ends are moved to
	// (fdkind.Pipe, GroupMaker.Spare).
	next := fp.base + uint64(fp.tempCount()) + 8
	fp.inherit = map[string]uint64{}
	for _, k := range keys {
		if k == r.snap.externalNet {
			continue // a net namespace (joinNet), not a file
		}
		if !known[k] {
			r.logf("--inherit-fd fd[%d]:%s: no file of the images is %s: not used", r.opts.InheritFds[k], k, k)
			continue
		}
		for uint64(len(files)) < next {
			files = append(files, ^uintptr(0)) // closed in the stub
		}
		files = append(files, uintptr(r.opts.InheritFds[k]))
		fp.inherit[k] = next
		next++
	}
	return files
}

// inherited returns the number at which p holds the caller's file that
// replaces the job's files, and its key.
func (fp *filePlan) inherited(j fileJob) (uint64, string, bool) {
	if len(fp.inherit) == 0 || j.shmid != 0 || j.pty != nil || j.ctty {
		return 0, "", false
	}
	for _, k := range fp.snap.inheritKeys(j.ids[0]) {
		if n, ok := fp.inherit[k]; ok {
			return n, k, true
		}
	}
	return 0, "", false
}

// useInherited puts the caller's file n at the temporary descriptor of
// every file of the job, with the saved status flags (O_NONBLOCK,
// O_APPEND), and says so in the log: the process writes to whatever the
// caller gave.
func (fp *filePlan) useInherited(p *process, j fileJob, n uint64, key string) error {
	t := p.leader
	for _, id := range j.ids {
		if _, err := t.Syscall(unix.SYS_DUP3, n, fp.temp[id], unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("restore pid %d: %s given by --inherit-fd fd[%d]: %w", p.c.pid, key, p.r.opts.InheritFds[key], err)
		}
		flags, ok := fdkind.InheritFlags(fp.snap.files[id])
		if !ok {
			continue
		}
		// Only O_APPEND, O_NONBLOCK, O_ASYNC, O_DIRECT and O_NOATIME can
		// change: a refusal is logged, the file is the caller's.
		if _, err := t.Syscall(unix.SYS_FCNTL, fp.temp[id], unix.F_SETFL, uint64(flags&^unix.O_ACCMODE)); err != nil {
			p.r.logf("restore pid %d: %s given by --inherit-fd: flags %#o: %v", p.c.pid, key, flags, err)
		}
	}
	p.r.logf("restore pid %d: %s is cryo's fd %d, given by --inherit-fd", p.c.pid, key, p.r.opts.InheritFds[key])
	return nil
}

// givenByCaller tells whether --inherit-fd gives the Unix socket ino: its
// peer outside the tree need not be in the images then.
func givenByCaller(procs []*process, ino uint32) bool {
	if len(procs) == 0 || procs[0].r == nil {
		return false
	}
	_, ok := procs[0].r.opts.InheritFds[fmt.Sprintf("socket:[%d]", ino)]
	return ok
}
