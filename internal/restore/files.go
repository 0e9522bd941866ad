package restore

import (
	"fmt"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"golang.org/x/sys/unix"
)

// isTerminalPath tells whether a dumped descriptor named a terminal, which
// with -j is replaced by the restoring terminal, as CRIU does.
func isTerminalPath(name string, mode uint32) bool {
	if mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	return strings.HasPrefix(name, "/dev/pts/") || strings.HasPrefix(name, "/dev/tty") ||
		name == "/dev/console" || name == "/dev/ptmx"
}

// filePlan says where each open file of the tree is created. A file (an
// open file description) is opened once, in the lowest common ancestor of
// the processes holding it, at a temporary descriptor above every restored
// one, before that process clones its children: they inherit it, as they
// did when the tree was made. Phase two moves it to its numbers with dup3
// and closes the temporaries. Both ends of a pipe are made together.
type filePlan struct {
	snap *snapshot
	base uint64            // first temporary descriptor
	temp map[uint32]uint64 // file id -> temporary descriptor
	jobs map[*process][]fileJob
}

// fileJob is one file, or one pipe (both ends), to create in a process.
type fileJob struct {
	ids    []uint32 // one file id, or a pipe's read and write ends
	pipeID uint32
}

func planFiles(s *snapshot, procs []*process) (*filePlan, error) {
	fp := &filePlan{snap: s, temp: map[uint32]uint64{}, jobs: map[*process][]fileJob{}}
	holders := map[uint32][]*process{}
	base := uint64(3)
	for _, p := range procs {
		for _, fd := range p.c.fds {
			holders[fd.GetId()] = append(holders[fd.GetId()], p)
			base = max(base, uint64(fd.GetFd())+1)
		}
	}
	fp.base = base
	ids := make([]uint32, 0, len(holders))
	for id := range holders {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	pipes := map[uint32]*fileJob{}
	var pipeOrder []uint32
	for i, id := range ids {
		fp.temp[id] = base + uint64(i)
		f := s.files[id]
		if f.GetType() == fdinfo.FdTypes_PIPE {
			pid := f.GetPipe().GetPipeId()
			j, ok := pipes[pid]
			if !ok {
				j = &fileJob{pipeID: pid}
				pipes[pid] = j
				pipeOrder = append(pipeOrder, pid)
			}
			j.ids = append(j.ids, id)
			continue
		}
		lca := commonAncestor(holders[id])
		fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id}})
	}
	for _, pid := range pipeOrder {
		j := pipes[pid]
		var readers, writers int
		var all []*process
		for _, id := range j.ids {
			if s.files[id].GetPipe().GetFlags()&unix.O_ACCMODE == unix.O_RDONLY {
				readers++
			} else {
				writers++
			}
			all = append(all, holders[id]...)
		}
		if readers > 1 || writers > 1 {
			return nil, fmt.Errorf("pipe %d: %d read and %d write open files: reopened pipes are not supported yet", pid, readers, writers)
		}
		lca := commonAncestor(all)
		fp.jobs[lca] = append(fp.jobs[lca], *j)
	}
	return fp, nil
}

// commonAncestor returns the lowest process that is an ancestor of (or is)
// every process in ps.
func commonAncestor(ps []*process) *process {
	depth := func(p *process) int {
		d := 0
		for ; p.parent != nil; p = p.parent {
			d++
		}
		return d
	}
	a := ps[0]
	for _, b := range ps[1:] {
		da, db := depth(a), depth(b)
		for ; da > db; da-- {
			a = a.parent
		}
		for ; db > da; db-- {
			b = b.parent
		}
		for a != b {
			a, b = a.parent, b.parent
		}
	}
	return a
}

// openIn creates, in p, the files p is the common ancestor of (phase one).
func (fp *filePlan) openIn(p *process) error {
	for _, j := range fp.jobs[p] {
		var err error
		if j.pipeID != 0 || fp.snap.files[j.ids[0]].GetType() == fdinfo.FdTypes_PIPE {
			err = fp.makePipe(p, j)
		} else {
			err = fp.openFile(p, j.ids[0])
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// openFile opens one regular file (or hands over a terminal with -j) at its
// temporary descriptor, at its offset.
func (fp *filePlan) openFile(p *process, id uint32) error {
	t := p.leader
	f := fp.snap.reg(id)
	temp := fp.temp[id]
	where := fmt.Sprintf("restore pid %d file %s", p.c.pid, f.GetName())
	if p.r.opts.ShellJob && isTerminalPath(f.GetName(), f.GetMode()) {
		// Every process still holds cryo's 0-2 in phase one.
		std := uint64(0)
		if f.GetFlags()&unix.O_ACCMODE != unix.O_RDONLY {
			std = 1
		}
		if _, err := t.Syscall(unix.SYS_DUP3, std, temp, unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("%s: hand over the terminal: %w", where, err)
		}
		return nil
	}
	flags := uint64(f.GetFlags()) &^ (unix.O_CREAT | unix.O_TRUNC | unix.O_EXCL)
	n, err := p.open(f.GetName(), flags)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if n != temp {
		_, err := t.Syscall(unix.SYS_DUP3, n, temp, unix.O_CLOEXEC)
		t.Syscall(unix.SYS_CLOSE, n)
		if err != nil {
			return fmt.Errorf("%s: dup3: %w", where, err)
		}
	}
	if pos := f.GetPos(); pos != 0 {
		if _, err := t.Syscall(unix.SYS_LSEEK, temp, pos, 0); err != nil {
			return fmt.Errorf("%s: seek to %d: %w", where, pos, err)
		}
	}
	return nil
}

// makePipe creates a pipe and puts its ends at their temporary descriptors
// with their flags.
func (fp *filePlan) makePipe(p *process, j fileJob) error {
	t := p.leader
	addr, err := p.put(make([]byte, 8))
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_PIPE2, addr, unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("restore pid %d: pipe %d: %w", p.c.pid, j.pipeID, err)
	}
	b := make([]byte, 8)
	if err := readMem(p, addr, b); err != nil {
		return err
	}
	ends := [2]uint64{uint64(uint32(le64(b))), uint64(uint32(le64(b) >> 32))}
	for _, id := range j.ids {
		pe := fp.snap.files[id].GetPipe()
		end := ends[1]
		if pe.GetFlags()&unix.O_ACCMODE == unix.O_RDONLY {
			end = ends[0]
		}
		if _, err := t.Syscall(unix.SYS_DUP3, end, fp.temp[id], unix.O_CLOEXEC); err != nil {
			return fmt.Errorf("restore pid %d: pipe %d: dup3: %w", p.c.pid, j.pipeID, err)
		}
		if _, err := t.Syscall(unix.SYS_FCNTL, fp.temp[id], unix.F_SETFL, uint64(pe.GetFlags()&^unix.O_ACCMODE)); err != nil {
			return fmt.Errorf("restore pid %d: pipe %d: flags: %w", p.c.pid, j.pipeID, err)
		}
	}
	err = fp.fillPipe(p, j.pipeID, ends[1])
	t.Syscall(unix.SYS_CLOSE, ends[0])
	t.Syscall(unix.SYS_CLOSE, ends[1])
	return err
}

// fillPipe gives the new pipe its capacity and queues its saved bytes,
// written by cryo through a write end of its own (/proc/PID/fd/N).
func (fp *filePlan) fillPipe(p *process, pipeID uint32, writeEnd uint64) error {
	pd, ok := fp.snap.pipes[pipeID]
	if !ok {
		return nil
	}
	if size := pd.GetSize(); size != 0 {
		if _, err := p.leader.Syscall(unix.SYS_FCNTL, writeEnd, unix.F_SETPIPE_SZ, uint64(size)); err != nil {
			return fmt.Errorf("restore pid %d: pipe %d: capacity %d: %w", p.c.pid, pipeID, size, err)
		}
	}
	data := fp.snap.pipeBytes[pipeID]
	if len(data) == 0 {
		return nil
	}
	w, err := unix.Open(fmt.Sprintf("/proc/%d/fd/%d", p.c.pid, writeEnd), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("restore pid %d: pipe %d: open a write end: %w", p.c.pid, pipeID, err)
	}
	defer unix.Close(w)
	for len(data) > 0 {
		n, err := unix.Write(w, data)
		if err != nil {
			return fmt.Errorf("restore pid %d: pipe %d: queue %d bytes: %w", p.c.pid, pipeID, len(data), err)
		}
		data = data[n:]
	}
	return nil
}

// restoreFiles moves every descriptor to its number (phase two), closes the
// temporaries and cryo's inherited descriptors, and sets cwd and root.
func (p *process) restoreFiles() error {
	t := p.leader
	fp := p.r.files
	targets := map[uint64]bool{}
	for _, fd := range p.c.fds {
		target := uint64(fd.GetFd())
		targets[target] = true
		var cloexec uint64
		if fd.GetFlags()&unix.FD_CLOEXEC != 0 {
			cloexec = unix.O_CLOEXEC
		}
		if _, err := t.Syscall(unix.SYS_DUP3, fp.temp[fd.GetId()], target, cloexec); err != nil {
			return fmt.Errorf("restore pid %d fd %d: %w", p.c.pid, target, err)
		}
	}
	for fd := uint64(0); fd < 3; fd++ {
		if !targets[fd] {
			t.Syscall(unix.SYS_CLOSE, fd)
		}
	}
	if _, err := t.Syscall(unix.SYS_CLOSE_RANGE, fp.base, uint64(^uint32(0)), 0); err != nil {
		return fmt.Errorf("restore pid %d: close temporary descriptors: %w", p.c.pid, err)
	}
	cwd := p.r.snap.reg(p.c.fs.GetCwdId()).GetName()
	addr, err := p.putString(cwd)
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_CHDIR, addr); err != nil {
		return fmt.Errorf("restore pid %d: chdir %s: %w", p.c.pid, cwd, err)
	}
	if root := p.r.snap.reg(p.c.fs.GetRootId()).GetName(); root != "/" {
		addr, err := p.putString(root)
		if err != nil {
			return err
		}
		if _, err := t.Syscall(unix.SYS_CHROOT, addr); err != nil {
			return fmt.Errorf("restore pid %d: chroot %s: %w", p.c.pid, root, err)
		}
	}
	return nil
}
