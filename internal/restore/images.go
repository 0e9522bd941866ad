package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cpuinfo"
	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	filelock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	fsimg "github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	pipedata "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	seccompimg "github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	skpacket "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// snapshot is everything read from an image directory, checked for
// consistency before any process is created.
type snapshot struct {
	// externalNet is the key of the tree's net namespace when the dump
	// left it out as external (--external net[INO]:KEY): the restore
	// joins the one the caller gives with --inherit-fd fd[N]:KEY.
	externalNet string
	procs       []*checkpoint // pstree order: parents before children
	files       map[uint32]*fdinfo.FileEntry
	pipes       map[uint32]*pipedata.PipeDataEntry // by pipe id
	pipeBytes   map[uint32][]byte
	fifos       map[uint32]*pipedata.PipeDataEntry // by FIFO inode
	fifoBytes   map[uint32][]byte
	skQueues    map[uint32][]queuedMsg            // to read, by socket file id: stream bytes or messages
	ghosts      map[uint32]*ghost                 // deleted-while-open files, by file id
	shmem       map[uint64]*shmemImage            // anonymous shared memory, by shmid
	memfds      map[uint64]*memfd.MemfdInodeEntry // memfd inodes (also shmem objects)
	ptys        map[uint32]*ptyPair               // pseudo-terminal pairs, by index
	// uncheckedFiles are mapped files cryo's user may not read, by file
	// id: checked through the descriptor of the process that maps them
	// (checkMapped).
	uncheckedFiles map[uint32]bool
	ns             *namespaces
	xfeatures      uint64
	// seccomp is the seccomp image (checked), nil without one.
	seccomp *seccompimg.SeccompEntry
}

// shmemImage is one MAP_SHARED|MAP_ANONYMOUS object: its size and pages.
type shmemImage struct {
	size    uint64
	pagesID uint32
	pages   []*pagemap.PagemapEntry // vaddr is the offset in the object
}

// checkpoint is one process of the snapshot.
type checkpoint struct {
	pid     int
	tree    *pstree.PstreeEntry
	cores   []*core.CoreEntry // leader first, in tree.Threads order
	zombie  bool              // dead but not reaped: only cores[0].Tc matters
	nsPids  []uint32          // ids in its own pid namespace, thread by thread (nil: cryo's)
	helper  bool              // (with zombie) stands for a group whose leader is gone
	stopSig unix.Signal       // a stopped process's stop signal, sent again before it goes (0: running)
	mm      *mm.MmEntry
	pagesID uint32
	pagemap []*pagemap.PagemapEntry
	fds     []*fdinfo.FdinfoEntry
	fs      *fsimg.FsEntry
	// locks are the file locks the process takes again (filelocks.img).
	locks []*filelock.FileLockEntry
	// nestedPids: for a process of a pid namespace nested in the tree's
	// (made below the root, as sandboxes do) when the tree moves to a new
	// pid namespace (a rootless restore: see mustMovePids), its ids in the
	// nested namespace; nsPids are then those one level up, in the new one.
	nestedPids []uint32
}

// CRIU's task states.
const (
	taskAlive   = 1
	taskDead    = 2
	taskStopped = 3 // alive, in a group stop (SIGSTOP, SIGTSTP...)
	taskHelper  = 4
)

func load(dir *image.Dir) (*snapshot, error) {
	var inv inventory.InventoryEntry
	if err := dir.ReadOne(image.InventoryName, "INVENTORY", &inv); err != nil {
		return nil, err
	}
	if inv.GetImgVersion() != image.ImageVersion || !inv.GetFdinfoPerId() {
		return nil, fmt.Errorf("%s: image version %d (fdinfo per id %v) is not supported", image.InventoryName, inv.GetImgVersion(), inv.GetFdinfoPerId())
	}
	trees, err := image.ReadEntries[*pstree.PstreeEntry](dir, image.PstreeName, "PSTREE")
	if err != nil {
		return nil, err
	}
	if len(trees) == 0 || len(trees) > 1<<15 {
		return nil, fmt.Errorf("%s: %d processes", image.PstreeName, len(trees))
	}
	s := &snapshot{files: map[uint32]*fdinfo.FileEntry{}}
	files, err := image.ReadEntries[*fdinfo.FileEntry](dir, image.FilesName, "FILES")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := fdkind.CheckFile(f); err != nil {
			return nil, fmt.Errorf("%s: %w", image.FilesName, err)
		}
		if _, dup := s.files[f.GetId()]; dup {
			return nil, fmt.Errorf("%s: file id %d appears twice", image.FilesName, f.GetId())
		}
		s.files[f.GetId()] = f
	}
	for _, f := range s.files {
		if err := fdkind.CheckRefs(f, s.file); err != nil {
			return nil, fmt.Errorf("%s: %w", image.FilesName, err)
		}
	}
	seen := map[uint32]bool{}
	for i, t := range trees {
		c, err := loadProcess(dir, s, t, seen)
		if err != nil {
			return nil, err
		}
		if i == 0 && c.zombie {
			return nil, fmt.Errorf("%s: the root process %d is a zombie", image.PstreeName, c.pid)
		}
		s.procs = append(s.procs, c)
	}
	// Every parent comes before its children and is in the tree.
	index := map[uint32]int{}
	for i, c := range s.procs {
		index[uint32(c.pid)] = i
		if i == 0 {
			continue
		}
		pi, ok := index[c.tree.GetPpid()]
		if !ok || s.procs[pi].zombie {
			return nil, fmt.Errorf("%s: process %d: parent %d is not an earlier live process of the tree", image.PstreeName, c.pid, c.tree.GetPpid())
		}
	}
	if err := s.checkTreeRefs(); err != nil {
		return nil, err
	}
	if err := s.loadPipeData(dir); err != nil {
		return nil, err
	}
	if err := s.loadShmem(dir); err != nil {
		return nil, err
	}
	if err := s.loadPtys(dir); err != nil {
		return nil, err
	}
	if err := s.loadLocks(dir); err != nil {
		return nil, err
	}
	if err := s.loadGhosts(dir); err != nil {
		return nil, err
	}
	if err := s.loadNamespaces(dir); err != nil {
		return nil, err
	}
	if err := s.loadSeccomp(dir); err != nil {
		return nil, err
	}
	if err := s.checkUsernsIDs(inv.GetRootIds().GetUserNsId()); err != nil {
		return nil, err
	}
	var ci cpuinfo.CpuinfoEntry
	if err := dir.ReadOne("cpuinfo.img", "CPUINFO", &ci); err == nil {
		for _, x := range ci.GetX86Entry() {
			s.xfeatures |= x.GetXfeaturesMask()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return s, s.checkFiles()
}

// loadProcess reads one process's images.
func loadProcess(dir *image.Dir, s *snapshot, t *pstree.PstreeEntry, seen map[uint32]bool) (*checkpoint, error) {
	c := &checkpoint{tree: t, pid: int(t.GetPid())}
	if c.pid <= 0 || c.pid > 1<<22 {
		return nil, fmt.Errorf("%s: invalid pid %d", image.PstreeName, c.pid)
	}
	threads := t.GetThreads()
	if len(threads) == 0 || int(threads[0]) != c.pid {
		return nil, fmt.Errorf("%s: process %d: first thread must be the process itself", image.PstreeName, c.pid)
	}
	if len(threads) > 1<<16 {
		return nil, fmt.Errorf("%s: process %d: %d threads", image.PstreeName, c.pid, len(threads))
	}
	var err error
	if c.nsPids, err = image.NsPids(t); err != nil {
		return nil, fmt.Errorf("%s: process %d: %w", image.PstreeName, c.pid, err)
	}
	if c.nsPids != nil && len(c.nsPids) != len(threads) {
		return nil, fmt.Errorf("%s: process %d: %d namespace ids for %d threads", image.PstreeName, c.pid, len(c.nsPids), len(threads))
	}
	for _, tid := range threads {
		if tid == 0 || tid > 1<<22 || seen[tid] {
			return nil, fmt.Errorf("%s: process %d: invalid or repeated thread id %d", image.PstreeName, c.pid, tid)
		}
		seen[tid] = true
		var ce core.CoreEntry
		if err := dir.ReadOne(image.CoreName(int(tid)), "CORE", &ce); err != nil {
			return nil, err
		}
		if ce.GetMtype() != core.CoreEntry_X86_64 {
			return nil, fmt.Errorf("%s: not an x86-64 core", image.CoreName(int(tid)))
		}
		c.cores = append(c.cores, &ce)
	}
	tc := c.cores[0].GetTc()
	if tc == nil {
		return nil, fmt.Errorf("%s: no task core", image.CoreName(c.pid))
	}
	switch tc.GetTaskState() {
	case taskDead, taskHelper:
		if len(threads) != 1 {
			return nil, fmt.Errorf("%s: zombie %d with %d threads", image.PstreeName, c.pid, len(threads))
		}
		c.zombie, c.helper = true, tc.GetTaskState() == taskHelper
		return c, nil
	case taskAlive, taskStopped:
		var err error
		if c.stopSig, err = stopSignal(tc); err != nil {
			return nil, fmt.Errorf("%s: %w", image.CoreName(c.pid), err)
		}
	default:
		return nil, fmt.Errorf("%s: task state %d is not supported", image.CoreName(c.pid), tc.GetTaskState())
	}
	for _, ce := range c.cores {
		if ce.GetThreadInfo() == nil || ce.GetThreadCore() == nil {
			return nil, fmt.Errorf("core of process %d: a thread has no registers", c.pid)
		}
	}
	if len(tc.GetSigactions()) > 64 || len(tc.GetRlimits().GetRlimits()) > 16 {
		return nil, fmt.Errorf("%s: too many sigactions or rlimits", image.CoreName(c.pid))
	}
	c.mm = &mm.MmEntry{}
	if err := dir.ReadOne(image.MMName(c.pid), "MM", c.mm); err != nil {
		return nil, err
	}
	if c.pagesID, c.pagemap, err = dir.ReadPagemap(c.pid); err != nil {
		return nil, err
	}
	if c.fds, err = image.ReadEntries[*fdinfo.FdinfoEntry](dir, image.FdinfoName(c.cores[0].GetIds().GetFilesId()), "FDINFO"); err != nil {
		return nil, err
	}
	for _, fd := range c.fds {
		f, ok := s.files[fd.GetId()]
		if !ok || f.GetType() != fd.GetType() {
			return nil, fmt.Errorf("process %d fd %d: refers to unknown file %d", c.pid, fd.GetFd(), fd.GetId())
		}
		if fd.GetFd() > 1<<20 {
			return nil, fmt.Errorf("process %d fd %d: out of range", c.pid, fd.GetFd())
		}
	}
	c.fs = &fsimg.FsEntry{}
	if err := dir.ReadOne(image.FSName(c.pid), "FS", c.fs); err != nil {
		return nil, err
	}
	if _, err := image.DeadProcRoot(c.fs); err != nil {
		return nil, fmt.Errorf("%s: %w", image.FSName(c.pid), err)
	}
	for _, id := range []uint32{c.fs.GetCwdId(), c.fs.GetRootId(), c.mm.GetExeFileId()} {
		if f, ok := s.files[id]; !ok || f.GetReg() == nil {
			return nil, fmt.Errorf("%s: refers to unknown file %d", image.FSName(c.pid), id)
		}
	}
	return c, nil
}

// loadPipeData reads pipes-data.img and fifo-data.img, if there are.
func (s *snapshot) loadPipeData(dir *image.Dir) error {
	var err error
	if s.pipes, s.pipeBytes, err = loadQueues(dir, image.PipesDataName, "PIPES_DATA"); err != nil {
		return err
	}
	if s.fifos, s.fifoBytes, err = loadQueues(dir, image.FifoDataName, "FIFO_DATA"); err != nil {
		return err
	}
	s.skQueues = map[uint32][]queuedMsg{}
	entries, payloads, err := dir.ReadPayloads(image.SkQueuesName, "SK_QUEUES")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i, m := range entries {
		e, ok := m.(*skpacket.SkPacketEntry)
		if !ok || s.files[e.GetIdFor()].GetUsk() == nil {
			return fmt.Errorf("%s: entry %d is not for a Unix socket of the tree", image.SkQueuesName, i)
		}
		msg, err := s.queuedMsg(e, payloads[i])
		if err != nil {
			return fmt.Errorf("%s: entry %d: %w", image.SkQueuesName, i, err)
		}
		s.skQueues[e.GetIdFor()] = append(s.skQueues[e.GetIdFor()], msg)
	}
	return nil
}

// queuedMsg is one message (or run of a stream's bytes) to queue again,
// with the files in flight with it and the socket it came from.
type queuedMsg struct {
	data   []byte
	fds    []uint32 // file ids, sent with SCM_RIGHTS
	sender uint32   // file id of the sending socket, 0 if unnamed or the peer
	// cred: the sender's credentials (SCM_CREDENTIALS), if it had any.
	cred *unix.Ucred
}

// maxRights is SCM_MAX_FD: the most descriptors one message carries.
const maxRights = 253

// queuedMsg checks what an sk-queues entry refers to: files of kinds that
// can be in flight, and a sending Unix socket.
func (s *snapshot) queuedMsg(e *skpacket.SkPacketEntry, data []byte) (queuedMsg, error) {
	m := queuedMsg{data: data}
	var err error
	if m.sender, err = image.PacketSender(e); err != nil {
		return m, err
	}
	if m.sender != 0 && s.files[m.sender].GetUsk() == nil {
		return m, fmt.Errorf("sender %d is not a Unix socket of the image", m.sender)
	}
	c, ok, err := image.PacketCred(e)
	if err != nil {
		return m, err
	}
	if ok {
		m.cred = &unix.Ucred{Pid: int32(c.Pid), Uid: c.UID, Gid: c.GID}
	}
	if len(e.GetScm()) > 1 {
		return m, fmt.Errorf("%d control messages", len(e.GetScm()))
	}
	for _, scm := range e.GetScm() {
		if scm.GetType() != unix.SCM_RIGHTS {
			return m, fmt.Errorf("control message of type %d is not supported", scm.GetType())
		}
		if len(scm.GetRights()) == 0 || len(scm.GetRights()) > maxRights {
			return m, fmt.Errorf("%d descriptors in flight", len(scm.GetRights()))
		}
		for _, id := range scm.GetRights() {
			if s.files[id] == nil {
				return m, fmt.Errorf("file %d in flight is not in the image", id)
			}
			switch s.files[id].GetType() {
			case fdinfo.FdTypes_REG, fdinfo.FdTypes_PIPE, fdinfo.FdTypes_UNIXSK:
			default:
				return m, fmt.Errorf("file %d in flight: type %v is not supported", id, s.files[id].GetType())
			}
		}
		m.fds = scm.GetRights()
	}
	return m, nil
}

func loadQueues(dir *image.Dir, name, magic string) (map[uint32]*pipedata.PipeDataEntry, map[uint32][]byte, error) {
	pipes, data := map[uint32]*pipedata.PipeDataEntry{}, map[uint32][]byte{}
	entries, payloads, err := dir.ReadPayloads(name, magic)
	if errors.Is(err, fs.ErrNotExist) {
		return pipes, data, nil
	}
	if err != nil {
		return nil, nil, err
	}
	for i, m := range entries {
		e, ok := m.(*pipedata.PipeDataEntry)
		if !ok {
			return nil, nil, fmt.Errorf("%s: entry %d is not pipe data", name, i)
		}
		if e.GetSize() > 1<<30 || uint32(len(payloads[i])) > max(e.GetSize(), 1<<20) {
			return nil, nil, fmt.Errorf("%s: pipe %d: %d bytes queued in a pipe of %d", name, e.GetPipeId(), len(payloads[i]), e.GetSize())
		}
		pipes[e.GetPipeId()] = e
		data[e.GetPipeId()] = payloads[i]
	}
	return pipes, data, nil
}

// loadShmem reads the shared anonymous objects the VMAs and memfds refer
// to.
func (s *snapshot) loadShmem(dir *image.Dir) error {
	s.shmem = map[uint64]*shmemImage{}
	s.memfds = map[uint64]*memfd.MemfdInodeEntry{}
	inodes, err := image.ReadEntries[*memfd.MemfdInodeEntry](dir, image.MemfdInodeName, "MEMFD_INODE")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range inodes {
		if e.GetSize() > 1<<40 || len(e.GetName()) > 249 {
			return fmt.Errorf("%s: memfd %d: size %d, name of %d bytes", image.MemfdInodeName, e.GetInodeId(), e.GetSize(), len(e.GetName()))
		}
		s.memfds[e.GetInodeId()] = e
		obj := &shmemImage{size: e.GetSize()}
		if obj.pagesID, obj.pages, err = dir.ReadPagemapNamed(image.ShmemPagemapName(e.GetInodeId())); err != nil {
			return err
		}
		s.shmem[e.GetInodeId()] = obj
	}
	for _, f := range s.files {
		if ino, ok := fdkind.MemfdInode(f); ok && s.memfds[ino] == nil {
			return fmt.Errorf("%s: memfd file %d refers to unknown inode %d", image.FilesName, f.GetId(), ino)
		}
	}
	for _, c := range s.procs {
		if c.zombie {
			continue
		}
		for _, v := range c.mm.GetVmas() {
			if v.GetStatus()&image.VmaAnonShared == 0 {
				continue
			}
			obj, ok := s.shmem[v.GetShmid()]
			if !ok {
				obj = &shmemImage{}
				var err error
				if obj.pagesID, obj.pages, err = dir.ReadPagemapNamed(image.ShmemPagemapName(v.GetShmid())); err != nil {
					return err
				}
				for _, pe := range obj.pages {
					obj.size = max(obj.size, pe.GetVaddr()+uint64(pe.GetNrPages())*pageSize)
				}
				s.shmem[v.GetShmid()] = obj
			}
			if s.memfds[v.GetShmid()] == nil {
				// Anonymous shared memory is as big as its mappings; a
				// memfd has its own size, which a mapping may pass (it
				// was truncated after mmap: a touch beyond it is SIGBUS).
				obj.size = max(obj.size, v.GetPgoff()+v.GetEnd()-v.GetStart())
			} else if v.GetPgoff() > 1<<40 || v.GetEnd()-v.GetStart() > 1<<40 {
				return fmt.Errorf("%s: memfd mapping at offset %d of %d bytes", image.MMName(c.pid), v.GetPgoff(), v.GetEnd()-v.GetStart())
			}
			if obj.size > 1<<40 {
				return fmt.Errorf("%s: shared memory %d of %d bytes", image.MMName(c.pid), v.GetShmid(), obj.size)
			}
		}
	}
	return nil
}

// ghost is a file that was deleted while open: its saved entry, whose
// contents stay in the images until the file is made again (streamed, see
// makeGhostAsOwner). Every file entry of one deleted inode shares one
// ghost (remap id).
type ghost struct {
	remapID uint32
	entry   *ghostfile.GhostFileEntry
}

// loadGhosts reads remap-fpath.img and the ghost files it names, each once.
func (s *snapshot) loadGhosts(dir *image.Dir) error {
	s.ghosts = map[uint32]*ghost{}
	remaps, err := fdkind.LoadGhostRemaps(dir, s.file)
	if err != nil {
		return err
	}
	byRemap := map[uint32]*ghost{}
	var total uint64
	for _, r := range remaps {
		g, ok := byRemap[r.Ghost]
		if !ok {
			e, data, err := dir.OpenGhost(r.Ghost)
			if err != nil {
				return err
			}
			data.Close()
			// Refused before anything is made: the contents of every
			// ghost take disk space at once.
			if total += e.GetSize(); total > image.MaxGhostTotal {
				return fmt.Errorf("%s: the deleted files to put back total over %d bytes", image.GhostName(r.Ghost), int64(image.MaxGhostTotal))
			}
			if name := s.reg(r.Ghost).GetName(); !safeGhostName(name) {
				return fmt.Errorf("%s: deleted file %q: not an absolute path of plain names (no \".\", \"..\" or empty component)", image.RemapName, name)
			}
			g = &ghost{remapID: r.Ghost, entry: e}
			if g.isDir() != (s.reg(r.Ghost).GetMode()&unix.S_IFMT == unix.S_IFDIR) || (g.isDir() && e.GetSize() != 0) {
				return fmt.Errorf("%s: ghost %d: a directory ghost must be an empty directory of the image", image.GhostName(r.Ghost), r.Ghost)
			}
			byRemap[r.Ghost] = g
		}
		s.ghosts[r.Orig] = g
	}
	return nil
}

// reg returns the regular-file entry of a file id (checked in load).
func (s *snapshot) reg(id uint32) *regfile.RegFileEntry { return s.files[id].GetReg() }

// file is entry id of files.img, nil when there is none.
func (s *snapshot) file(id uint32) *fdinfo.FileEntry { return s.files[id] }

// checkFiles refuses files that changed since the dump: a mapped library or
// executable with another size or checksum would run foreign code.
func (s *snapshot) checkFiles() error {
	for id, fe := range s.files {
		f := fe.GetReg()
		if f == nil || f.ChecksumConfig == nil {
			continue
		}
		name := f.GetName()
		if s.onTreeMount(name) {
			// A tmpfs's file comes back from the image as it was; a bind
			// mount's is not reachable yet by this name.
			continue
		}
		file, err := os.Open(name)
		if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
			// A file of a subordinate id of cryo's user: the process
			// that maps it can read it, inside its user namespace.
			if s.uncheckedFiles == nil {
				s.uncheckedFiles = map[uint32]bool{}
			}
			s.uncheckedFiles[id] = true
			continue
		}
		if err != nil {
			return fmt.Errorf("file %d %s: %w", id, name, err)
		}
		err = checkUnchanged(f, file)
		file.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// checkUnchanged compares the size and checksum of file, opened now, with
// those saved in f at the dump.
func checkUnchanged(f *regfile.RegFileEntry, file *os.File) error {
	name := f.GetName()
	st, err := file.Stat()
	if err != nil {
		return fmt.Errorf("file %s: %w", name, err)
	}
	if uint64(st.Size()) != f.GetSize() {
		return fmt.Errorf("file %s changed since the dump: size %d, was %d", name, st.Size(), f.GetSize())
	}
	sum, n, err := image.ChecksumOf(file)
	if err != nil {
		return fmt.Errorf("file %s: %w", name, err)
	}
	if sum != f.GetChecksum() || n != f.GetChecksumConfig() {
		return fmt.Errorf("file %s changed since the dump: checksum differs", name)
	}
	return nil
}

// checkMapped makes the check of checkFiles on file id, which cryo could
// not open, through descriptor fd of process pid, which opened it to map
// it; once.
func (s *snapshot) checkMapped(id uint32, pid int, fd uint64) error {
	if !s.uncheckedFiles[id] {
		return nil
	}
	own, err := proc.CopyFd(pid, int(fd))
	if err != nil {
		return err
	}
	file := os.NewFile(uintptr(own), s.reg(id).GetName())
	defer file.Close()
	if err := checkUnchanged(s.reg(id), file); err != nil {
		return err
	}
	delete(s.uncheckedFiles, id)
	return nil
}

func trimNL(b []byte) string {
	if n := len(b); n > 0 && b[n-1] == '\n' {
		b = b[:n-1]
	}
	if len(b) == 0 {
		return "?"
	}
	return string(b)
}

func (s *snapshot) allTids() []uint32 {
	var out []uint32
	for _, c := range s.procs {
		out = append(out, c.tree.GetThreads()...)
	}
	return out
}
