package dump

import (
	"fmt"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cpuinfo"
	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ImageVersion is CRIU's img_version for images with per-id fdinfo files.
const ImageVersion = 2

// checkpoint collects everything and writes the images. It does not let
// the process go: the caller kills or releases it.
func (p *process) checkpoint(dir *image.Dir) error {
	start := time.Now()
	// Checked while frozen: no child can appear any more.
	children, err := proc.ChildrenOf(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: children: %w", p.pid, err)
	}
	if len(children) > 0 {
		return fmt.Errorf("process %d has children %v: dumping process trees is not supported yet", p.pid, children)
	}
	maps, err := proc.Maps(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: memory map: %w", p.pid, err)
	}
	var vdso *proc.Mapping
	for i := range maps {
		if maps[i].Path == "[vdso]" {
			vdso = &maps[i]
		}
	}
	if vdso == nil {
		return fmt.Errorf("process %d: %w", p.pid, errNoVdso)
	}
	insn, err := ptrace.FindSyscallInsn(p.pid, vdso.Start, vdso.End)
	if err != nil {
		return err
	}
	for _, t := range p.threads {
		t.SetSyscallAddr(insn)
	}
	// Mapped after reading the memory map, so it is not in the image.
	if err := p.scratch.mapIn(p.leader()); err != nil {
		return err
	}

	cores := make([]*core.CoreEntry, len(p.threads))
	var xfeatures uint64
	for i, t := range p.threads {
		c, xf, err := p.threadCore(t)
		if err != nil {
			return err
		}
		cores[i] = c
		xfeatures |= xf
	}
	tc, err := p.taskCore(cores[0])
	if err != nil {
		return err
	}
	cores[0].Tc = tc
	mmEntry, err := p.mmEntry()
	if err != nil {
		return err
	}
	if err := p.scratch.unmap(); err != nil {
		return err
	}

	ft := newFileTable()
	fds, err := p.dumpFds(ft)
	if err != nil {
		return err
	}
	fsEntry, err := p.fsEntry(ft)
	if err != nil {
		return err
	}
	exe, err := proc.Exe(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: executable: %w", p.pid, err)
	}
	exeID, err := ft.pathFile(exe, unix.O_RDONLY, true)
	if err != nil {
		return fmt.Errorf("process %d: executable: %w", p.pid, err)
	}
	mmEntry.ExeFileId = proto.Uint32(exeID)
	scanStart := time.Now()
	vmas, runs, err := p.vmaEntries(maps, ft)
	if err != nil {
		return err
	}
	p.stats.memdump = time.Since(scanStart)
	mmEntry.Vmas = vmas
	p.logf("collected state of %d threads, %d mappings, %d page runs in %v", len(p.threads), len(vmas), len(runs), time.Since(start))

	const pagesID = 1
	copyStart := time.Now()
	n, err := p.writePages(dir, pagesID, runs)
	if err != nil {
		return err
	}
	p.stats.memwrite = time.Since(copyStart)
	p.stats.pagesSaved = uint64(n) / proc.PageSize()
	for _, m := range maps {
		p.stats.pagesScanned += m.Size() / proc.PageSize()
	}
	p.logf("saved %d bytes of memory in %v", n, p.stats.memwrite)

	ids := &core.TaskKobjIdsEntry{
		VmId: proto.Uint32(1), FilesId: proto.Uint32(1), FsId: proto.Uint32(1), SighandId: proto.Uint32(1),
	}
	cores[0].Ids = ids
	stat, err := proc.ReadStat(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: %w", p.pid, err)
	}
	var tids []uint32
	for _, t := range p.threads {
		tids = append(tids, uint32(t.Tid))
	}
	pst := &pstree.PstreeEntry{
		Pid:     proto.Uint32(uint32(p.pid)),
		Ppid:    proto.Uint32(0), // the root of the dumped tree
		Pgid:    proto.Uint32(uint32(stat.Pgrp)),
		Sid:     proto.Uint32(uint32(stat.Session)),
		Threads: tids,
	}
	var uptime unix.Sysinfo_t
	_ = unix.Sysinfo(&uptime)
	inv := &inventory.InventoryEntry{
		ImgVersion:  proto.Uint32(ImageVersion),
		FdinfoPerId: proto.Bool(true),
		RootIds:     ids,
		NsPerId:     proto.Bool(true),
		Lsmtype:     inventory.Lsmtype_NO_LSM.Enum(),
		DumpUptime:  proto.Uint64(uint64(uptime.Uptime) * 1e6),
	}

	writes := []struct {
		name, magic string
		entries     []proto.Message
	}{
		{image.MMName(p.pid), "MM", []proto.Message{mmEntry}},
		{image.IDsName(p.pid), "IDS", []proto.Message{ids}},
		{image.FSName(p.pid), "FS", []proto.Message{fsEntry}},
		{image.FdinfoName(1), "FDINFO", toMessages(fds)},
		{image.FilesName, "FILES", toMessages(ft.entries)},
		{image.PstreeName, "PSTREE", []proto.Message{pst}},
		{cpuinfoName, "CPUINFO", []proto.Message{cpuInfo(xfeatures)}},
	}
	for i, t := range p.threads {
		writes = append(writes, struct {
			name, magic string
			entries     []proto.Message
		}{image.CoreName(t.Tid), "CORE", []proto.Message{cores[i]}})
	}
	for _, w := range writes {
		if err := dir.Write(w.name, w.magic, w.entries...); err != nil {
			return err
		}
	}
	// The inventory goes last: an image directory without one is
	// recognisably incomplete.
	if err := dir.Write(image.InventoryName, "INVENTORY", inv); err != nil {
		return err
	}
	p.logf("dump of %d done in %v", p.pid, time.Since(start))
	return nil
}

const cpuinfoName = "cpuinfo.img"

func toMessages[T proto.Message](in []T) []proto.Message {
	out := make([]proto.Message, len(in))
	for i, m := range in {
		out[i] = m
	}
	return out
}

// cpuInfo records the XSAVE features the dumped threads were running with,
// so that restore can refuse a CPU that lacks one.
func cpuInfo(xfeatures uint64) *cpuinfo.CpuinfoEntry {
	return &cpuinfo.CpuinfoEntry{X86Entry: []*cpuinfo.CpuinfoX86Entry{{
		VendorId:      cpuinfo.CpuinfoX86Entry_UNKNOWN.Enum(),
		CpuFamily:     proto.Uint32(0),
		Model:         proto.Uint32(0),
		Stepping:      proto.Uint32(0),
		CapabilityVer: proto.Uint32(0),
		XfeaturesMask: proto.Uint64(xfeatures),
	}}}
}

// mmEntry collects the mm fields; VMAs and the executable are added later.
func (p *process) mmEntry() (*mm.MmEntry, error) {
	stat, err := proc.ReadStat(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	auxv, err := proc.Auxv(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: auxv: %w", p.pid, err)
	}
	// brk(0) is the only way to read the current program break.
	brk, err := p.leader().Syscall(unix.SYS_BRK, 0)
	if err != nil {
		return nil, fmt.Errorf("process %d: brk: %w", p.pid, err)
	}
	dumpable, err := p.leader().Syscall(unix.SYS_PRCTL, unix.PR_GET_DUMPABLE)
	if err != nil {
		return nil, fmt.Errorf("process %d: dumpable: %w", p.pid, err)
	}
	thp, err := p.leader().Syscall(unix.SYS_PRCTL, unix.PR_GET_THP_DISABLE)
	if err != nil {
		return nil, fmt.Errorf("process %d: thp_disable: %w", p.pid, err)
	}
	return &mm.MmEntry{
		MmStartCode:  proto.Uint64(stat.StartCode),
		MmEndCode:    proto.Uint64(stat.EndCode),
		MmStartData:  proto.Uint64(stat.StartData),
		MmEndData:    proto.Uint64(stat.EndData),
		MmStartStack: proto.Uint64(stat.StartStack),
		MmStartBrk:   proto.Uint64(stat.StartBrk),
		MmBrk:        proto.Uint64(brk),
		MmArgStart:   proto.Uint64(stat.ArgStart),
		MmArgEnd:     proto.Uint64(stat.ArgEnd),
		MmEnvStart:   proto.Uint64(stat.EnvStart),
		MmEnvEnd:     proto.Uint64(stat.EnvEnd),
		ExeFileId:    proto.Uint32(0),
		MmSavedAuxv:  auxv,
		Dumpable:     proto.Int32(int32(dumpable)),
		ThpDisabled:  proto.Bool(thp != 0),
	}, nil
}

// fsEntry records cwd, root and umask.
func (p *process) fsEntry(ft *fileTable) (*fs.FsEntry, error) {
	cwd, err := proc.Cwd(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: cwd: %w", p.pid, err)
	}
	root, err := proc.Root(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: root: %w", p.pid, err)
	}
	cwdID, err := ft.pathFile(cwd, unix.O_RDONLY|unix.O_DIRECTORY, false)
	if err != nil {
		return nil, fmt.Errorf("process %d: cwd: %w", p.pid, err)
	}
	rootID, err := ft.pathFile(root, unix.O_RDONLY|unix.O_DIRECTORY, false)
	if err != nil {
		return nil, fmt.Errorf("process %d: root: %w", p.pid, err)
	}
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	return &fs.FsEntry{CwdId: proto.Uint32(cwdID), RootId: proto.Uint32(rootID), Umask: proto.Uint32(st.Umask)}, nil
}
