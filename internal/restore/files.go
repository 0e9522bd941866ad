package restore

import (
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/tcprepair"
	"golang.org/x/sys/unix"
)

// filePlan says where each open file of the tree is created. A file (an
// open file description) is opened once, in the lowest common ancestor of
// the processes holding it, at a temporary descriptor above every restored
// one, before that process clones its children: they inherit it, as they
// did when the tree was made. Phase two moves it to its numbers with dup3
// and closes the temporaries. Both ends of a pipe are made together.
type filePlan struct {
	snap *snapshot
	dir  *image.Dir
	base uint64            // first temporary descriptor
	temp map[uint32]uint64 // file id -> temporary descriptor
	// shmTemp: anonymous shared memory object (shmid) -> temporary
	// descriptor of the memfd that stands for it.
	shmTemp map[uint64]uint64
	jobs    map[*process][]fileJob
	// late: files on the tree's own mounts (a tmpfs, a bind mount), which
	// exist only once its mount namespace does: each is opened by the
	// common ancestor of its holders once that entered its namespaces, and
	// the other holders, cloned already, take a copy from it (lateCopies).
	late       map[*process][]fileJob
	lateCopies map[*process][]lateCopy
	// netLate: sockets of the tree's own net namespaces, made by a
	// process once it is in its namespace (see netns.go).
	netLate       map[*process][]uint32
	netLateCopies map[*process][]lateCopy
	// tcpInNets counts the connections of tcpRestored that live in the
	// tree's net namespaces: those were locked in namespaces that died
	// with the dumped tree, not in cryo's.
	tcpInNets int
	// fifosFilled: FIFOs (by inode) whose bytes were queued again.
	fifosFilled map[uint32]bool
	// epollsWatching: epoll instances (file ids) whose watches were added.
	epollsWatching map[uint32]bool
	// anonAddr: where an anonymous shared object is mapped whole while the
	// tree is built (shmid -> address).
	anonAddr map[uint64]uint64
	// repair: restored TCP connections, in repair mode until the end.
	repair tcprepair.Set
	// boundPaths: the socket files Unix sockets of the restore are bound
	// to, which a connection's rendezvous must not take away.
	boundPaths map[string]bool
	// lateBind: Unix sockets named on their holders' own mounts, bound
	// once their maker entered its mount namespace (see unixlate.go).
	lateBind map[uint32]bool
	// ghostPaths: deleted files put back for the restore, by ghost id.
	ghostPaths map[uint32]ghostPath
	// tcpRestored counts them: the dump locked the network for them.
	tcpRestored int
	// tcpClose: established connections come back closed (Options.TCPClose);
	// tcpClosed counts them (the dump locked the network for them too).
	tcpClose  bool
	tcpClosed int
	// madeIn: the process each file was created in (at its temporary
	// descriptor), for what is done to the files once all exist.
	madeIn map[uint32]*process
	// procs: the tree's processes, which saved PIDs name.
	procs []*process
	// oneWay: Unix sockets connected to a peer that is not connected back
	// (a client to a listener, a datagram socket to a bound one): they are
	// connected once every socket exists.
	oneWay []uint32
	// controls: the session leaders whose controlling terminal is a pty
	// of the tree.
	controls map[*process]*ptyPair
	// owners: the process each file moved to the stub is opened for, as
	// whom the stub opens it (see asOwner); by file id.
	owners map[uint32]*process
	// orphanMaster takes the new master of each orphan pty
	// (Options.OrphanPtsMaster).
	orphanMaster func(master *os.File) error
	// inherit: the files given by --inherit-fd, by key, at their number
	// in every process of phase one (see inherit.go).
	inherit map[string]uint64
}

// ownerOf is the restored process file id is opened for when p opens it.
func (fp *filePlan) ownerOf(p *process, id uint32) *process {
	if o := fp.owners[id]; o != nil {
		return o
	}
	return p
}

// tempCount is how many temporary descriptors the plan uses.
func (fp *filePlan) tempCount() int { return len(fp.temp) + len(fp.shmTemp) }

// fileJob is one file, or one pipe (both ends), to create in a process.
type fileJob struct {
	ids      []uint32       // one file id, or a group's (a pipe's read and write ends)
	group    fdkind.Planner // the kind that makes ids together, with key
	key      uint32
	shmid    uint64   // or an anonymous shared memory object
	unixPair bool     // or two connected Unix sockets
	pty      *ptyPair // or a pseudo-terminal pair, all its files
	ctty     bool     // or a file of /dev/tty
}

func planFiles(s *snapshot, procs []*process) (*filePlan, error) {
	fp := &filePlan{snap: s, procs: procs, temp: map[uint32]uint64{}, shmTemp: map[uint64]uint64{}, jobs: map[*process][]fileJob{},
		madeIn: map[uint32]*process{}, late: map[*process][]fileJob{}, lateCopies: map[*process][]lateCopy{}}
	holders := map[uint32][]*process{}
	base := uint64(3)
	for _, p := range procs {
		for _, fd := range p.c.fds {
			holders[fd.GetId()] = append(holders[fd.GetId()], p)
			base = max(base, uint64(fd.GetFd())+1)
		}
	}
	// Files in flight (sent with SCM_RIGHTS, not received yet) that no
	// process holds are made by the root, and sent again from there.
	for _, msgs := range s.skQueues {
		for _, m := range msgs {
			for _, id := range m.fds {
				if len(holders[id]) == 0 {
					holders[id] = []*process{procs[0]}
				}
			}
		}
	}
	if err := addEpollHolders(s, procs, holders); err != nil {
		return nil, err
	}
	fp.base = base
	ids := make([]uint32, 0, len(holders))
	for id := range holders {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	// Files of a kind made in groups (pipe ends), planned by their kind.
	grouped := map[fdinfo.FdTypes][]*fdinfo.FileEntry{}
	var planners []fdkind.Planner
	// Unix sockets connected to each other are made together (socketpair).
	byIno := map[uint32]uint32{}
	for id, f := range s.files {
		if u := f.GetUsk(); u != nil {
			byIno[u.GetIno()] = id
		}
	}
	paired := map[uint32]bool{}
	for i, id := range ids {
		fp.temp[id] = base + uint64(i)
		f := s.files[id]
		if f.GetType() == fdinfo.FdTypes_TTY {
			continue // by pair, below
		}
		if u := f.GetUsk(); u != nil {
			if paired[id] {
				continue
			}
			peer, ok := byIno[u.GetPeer()]
			external := ok && s.files[peer].GetUsk().GetUflags()&uskExtern != 0
			if ok && u.GetPeer() != 0 && !external {
				if s.files[peer].GetUsk().GetPeer() != u.GetIno() {
					if err := checkOneWay(u, s.files[peer].GetUsk()); err != nil {
						return nil, err
					}
					fp.oneWay = append(fp.oneWay, id)
					lca := commonAncestor(holders[id])
					fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id}})
					continue
				}
				paired[id], paired[peer] = true, true
				lca := commonAncestor(append(append([]*process(nil), holders[id]...), holders[peer]...))
				fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id, peer}, unixPair: true})
				continue
			}
			if u.GetPeer() != 0 && !ok && !givenByCaller(procs, u.GetIno()) {
				return nil, fmt.Errorf("Unix socket %d: its peer %d is not in the image (a peer outside the tree, dumped with --external unix[%d]?): restore with --inherit-fd fd[N]:socket:[%d]", u.GetIno(), u.GetPeer(), u.GetIno(), u.GetIno())
			}
			if u.GetUflags()&uskExtern != 0 {
				return nil, fmt.Errorf("Unix socket %d: an external socket is held by the tree", u.GetIno())
			}
		}
		if k, ok := fdkind.Lookup(f.GetType()).(fdkind.Planner); ok {
			if len(grouped[f.GetType()]) == 0 {
				planners = append(planners, k)
			}
			grouped[f.GetType()] = append(grouped[f.GetType()], f)
			continue
		}
		lca := commonAncestor(holders[id])
		if late, err := fp.planNetLate(id, lca, holders[id]); err != nil {
			return nil, err
		} else if late {
			continue
		}
		if late, err := fp.onOwnMount(id, holders[id]); err != nil {
			return nil, err
		} else if late {
			fp.late[lca] = append(fp.late[lca], fileJob{ids: []uint32{id}})
			for _, h := range holders[id] {
				if cs := fp.lateCopies[h]; h != lca && (len(cs) == 0 || cs[len(cs)-1].id != id) {
					fp.lateCopies[h] = append(cs, lateCopy{id: id, from: lca})
				}
			}
			continue
		}
		fp.jobs[lca] = append(fp.jobs[lca], fileJob{ids: []uint32{id}})
	}
	if err := fp.planGroups(planners, grouped, holders); err != nil {
		return nil, err
	}
	if err := fp.planPtys(procs, holders); err != nil {
		return nil, err
	}
	if err := fp.planLateBinds(holders); err != nil {
		return nil, err
	}
	// Anonymous shared memory: a memfd made by the common ancestor of the
	// processes mapping the object, which each maps from it.
	shmHolders := map[uint64][]*process{}
	var shmOrder []uint64
	for _, p := range procs {
		if p.c.zombie {
			continue
		}
		for _, fd := range p.c.fds {
			if id, ok := fdkind.MemfdInode(s.files[fd.GetId()]); ok {
				if len(shmHolders[id]) == 0 {
					shmOrder = append(shmOrder, id)
				}
				shmHolders[id] = append(shmHolders[id], p)
			}
		}
		for _, v := range p.c.mm.GetVmas() {
			if v.GetStatus()&image.VmaAnonShared == 0 {
				continue
			}
			id := v.GetShmid()
			if len(shmHolders[id]) == 0 {
				shmOrder = append(shmOrder, id)
			}
			if hs := shmHolders[id]; len(hs) == 0 || hs[len(hs)-1] != p {
				shmHolders[id] = append(hs, p)
			}
		}
	}
	// An anonymous object (not a memfd) is made as real MAP_SHARED|
	// MAP_ANONYMOUS memory, so that it is /dev/zero's again: the common
	// ancestor maps it whole at an address free in every process, the
	// processes below inherit it and move pieces of it into place.
	var used []span
	for _, p := range procs {
		if !p.c.zombie {
			for _, v := range p.c.mm.GetVmas() {
				used = append(used, span{v.GetStart(), v.GetEnd()})
			}
		}
	}
	fp.anonAddr = map[uint64]uint64{}
	for i, id := range shmOrder {
		fp.shmTemp[id] = base + uint64(len(ids)+i)
		lca := commonAncestor(shmHolders[id])
		fp.jobs[lca] = append(fp.jobs[lca], fileJob{shmid: id})
		if s.memfds[id] == nil {
			size := (s.shmem[id].size + pageSize - 1) &^ (pageSize - 1)
			addr, err := findGap(used, size+pageSize)
			if err != nil {
				return nil, fmt.Errorf("shared memory %d: %w", id, err)
			}
			fp.anonAddr[id] = addr
			used = append(used, span{addr, addr + size + pageSize})
		}
	}
	return fp, nil
}

// makeShmem creates the memfd standing for an anonymous shared memory
// object, at its temporary descriptor, sized and filled by cryo through
// /proc/PID/fd/N.
func (fp *filePlan) makeShmem(p *process, shmid uint64) error {
	if addr, ok := fp.anonAddr[shmid]; ok {
		return fp.makeAnonShared(p, shmid, addr)
	}
	t := p.leader
	obj := fp.snap.shmem[shmid]
	name, flags := "cryo-shmem", uint64(1) // MFD_CLOEXEC
	mi := fp.snap.memfds[shmid]
	if mi != nil {
		name = mi.GetName()
		if mi.GetSeals() != 0 {
			flags |= 2 // MFD_ALLOW_SEALING
		}
	}
	addr, err := p.putString(name)
	if err != nil {
		return err
	}
	fd, err := t.Syscall(unix.SYS_MEMFD_CREATE, addr, flags)
	if err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: memfd_create: %w", p.c.pid, shmid, err)
	}
	temp := fp.shmTemp[shmid]
	if err := fp.moveTo(p, fd, temp); err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: %w", p.c.pid, shmid, err)
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/%d", p.pid, temp), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: %w", p.c.pid, shmid, err)
	}
	defer f.Close()
	if err := f.Truncate(int64(obj.size)); err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: size %d: %w", p.c.pid, shmid, obj.size, err)
	}
	if mi != nil && mi.GetSeals() != 0 {
		// Sealed once filled: a write seal would forbid filling it.
		defer func() {
			if _, err := t.Syscall(unix.SYS_FCNTL, temp, unix.F_ADD_SEALS, uint64(mi.GetSeals())); err != nil {
				p.r.logf("restore pid %d: memfd %s: seals %#x: %v", p.c.pid, name, mi.GetSeals(), err)
			}
		}()
	}
	// A memfd's last page may pass its size: written whole, then cut back.
	if err := fp.copyObject(obj, f, (obj.size+pageSize-1)&^(pageSize-1)); err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: %w", p.c.pid, shmid, err)
	}
	if err := f.Truncate(int64(obj.size)); err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: size %d: %w", p.c.pid, shmid, obj.size, err)
	}
	return nil
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
// Shared memory objects come first: memfd descriptors are made from them.
// Pseudo-terminal pairs come next, so that a session leader can take its
// terminal before /dev/tty is opened.
func (fp *filePlan) openIn(p *process) error {
	for _, j := range fp.jobs[p] {
		var err error
		if j.shmid != 0 {
			err = fp.makeShmem(p, j.shmid)
		} else if j.pty != nil {
			err = fp.makePty(p, j.pty)
		}
		if err != nil {
			return err
		}
	}
	if err := fp.takeTerminal(p); err != nil {
		return err
	}
	for _, j := range fp.jobs[p] {
		var err error
		if j.shmid != 0 || j.pty != nil {
			continue
		} else if n, key, ok := fp.inherited(j); ok {
			err = fp.useInherited(p, j, n, key)
		} else if j.ctty {
			err = fp.openCtty(p, j.ids[0])
		} else if j.unixPair {
			err = fp.makeUnixPair(p, j.ids)
		} else if fp.snap.files[j.ids[0]].GetType() == fdinfo.FdTypes_UNIXSK {
			err = fp.makeUnix(p, j.ids[0])
		} else if k := fdkind.SocketOf(fp.snap.files[j.ids[0]].GetType()); k != nil {
			err = fp.makeSocket(p, j.ids[0], k)
		} else if k := fdkind.OpenedOf(fp.snap.files[j.ids[0]].GetType()); k != nil {
			err = fp.openKind(p, j.ids[0], k)
		} else if k := fdkind.CreatorOf(fp.snap.files[j.ids[0]].GetType()); k != nil {
			err = fp.makeKind(p, j.ids[0], k)
		} else if j.group != nil {
			err = fp.makeGroup(p, j)
		} else {
			err = fmt.Errorf("restore pid %d: file %d of type %v: no kind opens it", p.c.pid, j.ids[0], fp.snap.files[j.ids[0]].GetType())
		}
		if err != nil {
			return err
		}
		for _, id := range j.ids {
			fp.madeIn[id] = p
		}
	}
	return nil
}

// moveTo moves a just-opened descriptor to its temporary number.
func (fp *filePlan) moveTo(p *process, fd, temp uint64) error {
	if fd == temp {
		return nil
	}
	_, err := p.leader.Syscall(unix.SYS_DUP3, fd, temp, unix.O_CLOEXEC)
	p.leader.Syscall(unix.SYS_CLOSE, fd)
	if err != nil {
		return fmt.Errorf("dup3 %d to %d: %w", fd, temp, err)
	}
	return nil
}

// makeAnonShared maps an anonymous shared object whole at addr in p and
// fills it from the pages image (process_vm_writev).
func (fp *filePlan) makeAnonShared(p *process, shmid, addr uint64) error {
	obj := fp.snap.shmem[shmid]
	size := (obj.size + pageSize - 1) &^ (pageSize - 1)
	got, err := p.leader.Syscall(unix.SYS_MMAP, addr, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_SHARED|unix.MAP_ANONYMOUS|unix.MAP_FIXED_NOREPLACE, ^uint64(0), 0)
	if err == nil && got != addr {
		err = fmt.Errorf("mapped at %#x", got)
	}
	if err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d at %#x: %w", p.c.pid, shmid, addr, err)
	}
	if err := fp.copyObject(obj, memAt{p.pid, addr}, size); err != nil {
		return fmt.Errorf("restore pid %d: shared memory %d: %w", p.c.pid, shmid, err)
	}
	return nil
}

// copyObject writes a shared object's saved pages to w at their offsets,
// refusing pages beyond size.
func (fp *filePlan) copyObject(obj *shmemImage, w io.WriterAt, size uint64) error {
	if len(obj.pages) == 0 {
		return nil
	}
	src, err := fp.dir.OpenPages(obj.pagesID)
	if err != nil {
		return err
	}
	defer src.Close()
	for _, pe := range obj.pages {
		n := int64(pe.GetNrPages()) * pageSize
		if pe.GetVaddr()+uint64(n) > size {
			return fmt.Errorf("%s: pages beyond the object's %d bytes", src.Name(), size)
		}
		got, err := io.Copy(io.NewOffsetWriter(w, int64(pe.GetVaddr())), io.LimitReader(src, n))
		if err == nil && got != n {
			err = fmt.Errorf("%s: %d of %d bytes", src.Name(), got, n)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// memAt writes into a process's memory at base+offset.
type memAt struct {
	pid  int
	base uint64
}

func (m memAt) WriteAt(b []byte, off int64) (int, error) {
	if err := ptrace.WriteMem(m.pid, m.base+uint64(off), b); err != nil {
		return 0, err
	}
	return len(b), nil
}

// isAnonStaging tells whether [start, end) is an anonymous shared object
// mapped whole while the tree is built.
func (fp *filePlan) isAnonStaging(start, end uint64) bool {
	for id, addr := range fp.anonAddr {
		size := (fp.snap.shmem[id].size + pageSize - 1) &^ (pageSize - 1)
		if start >= addr && end <= addr+size {
			return true
		}
	}
	return false
}

// chownPath gives the file at path (not following a link) host ids uid
// and gid. p does it, so that path is looked up in p's mount namespace and
// root, where the file is (a container's devpts is not cryo's /dev/pts),
// and, without root, inside p's user namespace, where cryo's user has the
// capability to give a file one of its subordinate ids.
func (p *process) chownPath(path string, uid, gid uint32) error {
	in, gin, err := p.idsInside(uid, gid)
	if err != nil {
		return fmt.Errorf("owner of %s: %w", path, err)
	}
	addr, err := p.putString(path)
	if err != nil {
		return err
	}
	if _, err := p.leader.Syscall(unix.SYS_FCHOWNAT, remote.AtFdcwd, addr, uint64(in), uint64(gin), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("process %d: chown %s to %d:%d (%d:%d inside): %w", p.c.pid, path, uid, gid, in, gin, err)
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
	if err := fp.addEpollWatches(p); err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_CLOSE_RANGE, fp.base, uint64(^uint32(0)), 0); err != nil {
		return fmt.Errorf("restore pid %d: close temporary descriptors: %w", p.c.pid, err)
	}
	return p.restoreCwdRoot()
}
