package restore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cpuinfo"
	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	fsimg "github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"github.com/cryo-cr/cryo/internal/dump"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// checkpoint is everything read from an image directory for one process,
// checked for consistency before any process is created.
type checkpoint struct {
	pid       int
	tree      *pstree.PstreeEntry
	cores     []*core.CoreEntry // leader first, in tree.Threads order
	mm        *mm.MmEntry
	pagesID   uint32
	pagemap   []*pagemap.PagemapEntry
	fds       []*fdinfo.FdinfoEntry
	files     map[uint32]*regfile.RegFileEntry
	fs        *fsimg.FsEntry
	xfeatures uint64
}

func load(dir *image.Dir) (*checkpoint, error) {
	var inv inventory.InventoryEntry
	if err := dir.ReadOne(image.InventoryName, "INVENTORY", &inv); err != nil {
		return nil, err
	}
	if inv.GetImgVersion() != dump.ImageVersion || !inv.GetFdinfoPerId() {
		return nil, fmt.Errorf("%s: image version %d (fdinfo per id %v) is not supported", image.InventoryName, inv.GetImgVersion(), inv.GetFdinfoPerId())
	}
	trees, err := image.ReadEntries[*pstree.PstreeEntry](dir, image.PstreeName, "PSTREE")
	if err != nil {
		return nil, err
	}
	if len(trees) != 1 {
		return nil, fmt.Errorf("%s: %d processes: restoring process trees is not supported yet", image.PstreeName, len(trees))
	}
	c := &checkpoint{tree: trees[0], pid: int(trees[0].GetPid()), files: map[uint32]*regfile.RegFileEntry{}}
	if c.pid <= 0 || c.pid > 1<<22 {
		return nil, fmt.Errorf("%s: invalid pid %d", image.PstreeName, c.pid)
	}
	threads := c.tree.GetThreads()
	if len(threads) == 0 || int(threads[0]) != c.pid {
		return nil, fmt.Errorf("%s: process %d: first thread must be the process itself", image.PstreeName, c.pid)
	}
	if len(threads) > 1<<16 {
		return nil, fmt.Errorf("%s: process %d: %d threads", image.PstreeName, c.pid, len(threads))
	}
	seen := map[uint32]bool{}
	for _, tid := range threads {
		if tid == 0 || tid > 1<<22 || seen[tid] {
			return nil, fmt.Errorf("%s: process %d: invalid or repeated thread id %d", image.PstreeName, c.pid, tid)
		}
		seen[tid] = true
		var ce core.CoreEntry
		if err := dir.ReadOne(image.CoreName(int(tid)), "CORE", &ce); err != nil {
			return nil, err
		}
		if ce.GetMtype() != core.CoreEntry_X86_64 || ce.GetThreadInfo() == nil || ce.GetThreadCore() == nil {
			return nil, fmt.Errorf("%s: not an x86-64 thread core", image.CoreName(int(tid)))
		}
		c.cores = append(c.cores, &ce)
	}
	if c.cores[0].GetTc() == nil {
		return nil, fmt.Errorf("%s: no task core", image.CoreName(c.pid))
	}
	if len(c.cores[0].GetTc().GetSigactions()) > 64 || len(c.cores[0].GetTc().GetRlimits().GetRlimits()) > 16 {
		return nil, fmt.Errorf("%s: too many sigactions or rlimits", image.CoreName(c.pid))
	}
	c.mm = &mm.MmEntry{}
	if err := dir.ReadOne(image.MMName(c.pid), "MM", c.mm); err != nil {
		return nil, err
	}
	if c.pagesID, c.pagemap, err = dir.ReadPagemap(c.pid); err != nil {
		return nil, err
	}
	files, err := image.ReadEntries[*fdinfo.FileEntry](dir, image.FilesName, "FILES")
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.GetType() != fdinfo.FdTypes_REG || f.GetReg() == nil {
			return nil, fmt.Errorf("%s: file %d of type %v is not supported yet", image.FilesName, f.GetId(), f.GetType())
		}
		c.files[f.GetId()] = f.GetReg()
	}
	if c.fds, err = image.ReadEntries[*fdinfo.FdinfoEntry](dir, image.FdinfoName(c.cores[0].GetIds().GetFilesId()), "FDINFO"); err != nil {
		return nil, err
	}
	for _, fd := range c.fds {
		if _, ok := c.files[fd.GetId()]; !ok || fd.GetType() != fdinfo.FdTypes_REG {
			return nil, fmt.Errorf("fd %d: refers to unknown file %d", fd.GetFd(), fd.GetId())
		}
		if fd.GetFd() > 1<<20 {
			return nil, fmt.Errorf("fd %d: out of range", fd.GetFd())
		}
	}
	c.fs = &fsimg.FsEntry{}
	if err := dir.ReadOne(image.FSName(c.pid), "FS", c.fs); err != nil {
		return nil, err
	}
	for _, id := range []uint32{c.fs.GetCwdId(), c.fs.GetRootId(), c.mm.GetExeFileId()} {
		if _, ok := c.files[id]; !ok {
			return nil, fmt.Errorf("%s: refers to unknown file %d", image.FSName(c.pid), id)
		}
	}
	var ci cpuinfo.CpuinfoEntry
	if err := dir.ReadOne("cpuinfo.img", "CPUINFO", &ci); err == nil {
		for _, x := range ci.GetX86Entry() {
			c.xfeatures |= x.GetXfeaturesMask()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	return c, c.checkFiles()
}

// checkFiles refuses files that changed since the dump: a mapped library or
// executable with another size or checksum would run foreign code.
func (c *checkpoint) checkFiles() error {
	for id, f := range c.files {
		if f.ChecksumConfig == nil {
			continue
		}
		name := f.GetName()
		st, err := os.Stat(name)
		if err != nil {
			return fmt.Errorf("file %d %s: %w", id, name, err)
		}
		if uint64(st.Size()) != f.GetSize() {
			return fmt.Errorf("file %s changed since the dump: size %d, was %d", name, st.Size(), f.GetSize())
		}
		sum, n, err := dump.Checksum(name)
		if err != nil {
			return fmt.Errorf("file %s: %w", name, err)
		}
		if sum != f.GetChecksum() || n != f.GetChecksumConfig() {
			return fmt.Errorf("file %s changed since the dump: checksum differs", name)
		}
	}
	return nil
}

// checkPidsFree refuses to start when any PID or TID of the image is in use.
func (c *checkpoint) checkPidsFree() error {
	for _, tid := range c.tree.GetThreads() {
		if err := unix.Kill(int(tid), 0); err != unix.ESRCH {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", tid))
			return fmt.Errorf("pid %d is taken by a running process (%s)", tid, trimNL(comm))
		}
	}
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
