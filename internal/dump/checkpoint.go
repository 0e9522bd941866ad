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

// checkpoint collects one live process and writes its own images (cores,
// mm, pagemap and pages, ids, fs, fdinfo); the tree-wide ones are the
// dumper's. It does not let the process go.
func (p *process) checkpoint(d *dumper, dir *image.Dir, index int) (xfeatures uint64, err error) {
	start := time.Now()
	maps, err := proc.Maps(p.pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: memory map: %w", p.pid, err)
	}
	var vdso *proc.Mapping
	for i := range maps {
		if maps[i].Path == "[vdso]" {
			vdso = &maps[i]
		}
	}
	if vdso == nil {
		return 0, fmt.Errorf("process %d: %w", p.pid, errNoVdso)
	}
	insn, err := ptrace.FindSyscallInsn(p.pid, vdso.Start, vdso.End)
	if err != nil {
		return 0, err
	}
	for _, t := range p.threads {
		t.SetSyscallAddr(insn)
	}
	if err := p.scratch.guardThreads(p, maps); err != nil {
		return 0, err
	}
	if err := p.step("checkpoint: guarded"); err != nil {
		return 0, err
	}
	// Mapped after reading the memory map, so it is not in the image.
	if err := p.mapScratch(); err != nil {
		return 0, err
	}
	if err := p.step("checkpoint: scratch mapped"); err != nil {
		return 0, err
	}
	if err := d.ns.readInside(p, p.scratch.remote()); err != nil {
		return 0, fmt.Errorf("process %d: %w", p.pid, err)
	}

	cores := make([]*core.CoreEntry, len(p.threads))
	for i, t := range p.threads {
		c, xf, err := p.threadCore(t)
		if err != nil {
			return 0, err
		}
		cores[i] = c
		xfeatures |= xf
		if err := p.step("checkpoint: thread collected"); err != nil {
			return 0, err
		}
	}
	if err := p.collectSeccomp(&d.seccomp, cores); err != nil {
		return 0, err
	}
	tc, err := p.taskCore(cores[0])
	if err != nil {
		return 0, err
	}
	cores[0].Tc = tc
	mmEntry, err := p.mmEntry()
	if err != nil {
		return 0, err
	}
	ft := d.files
	fds, err := p.dumpFds(ft)
	if err != nil {
		return 0, err
	}
	p.fdIDs = map[int]uint32{}
	for _, e := range fds {
		p.fdIDs[int(e.GetFd())] = e.GetId()
	}
	fsEntry, err := p.fsEntry(ft)
	if err != nil {
		return 0, err
	}
	exe, err := proc.Exe(p.pid)
	if err != nil {
		return 0, fmt.Errorf("process %d: executable: %w", p.pid, err)
	}
	exeID, err := ft.pathFile(exe, fmt.Sprintf("/proc/%d/exe", p.pid), unix.O_RDONLY, true)
	if err != nil {
		return 0, fmt.Errorf("process %d: executable: %w", p.pid, err)
	}
	mmEntry.ExeFileId = proto.Uint32(exeID)
	scanStart := time.Now()
	vmas, runs, err := p.vmaEntries(maps, ft)
	if err != nil {
		return 0, err
	}
	// Pages unchanged since the previous dump stay in its images.
	if runs, err = d.parentRuns(p, maps, runs); err != nil {
		return 0, err
	}
	for _, r := range runs {
		if !r.parent { // nothing to copy: in the parent's images
			d.opts.Progress.Expect(int64(r.size))
		}
	}
	// The snapshot's exit frame goes in the scratch memory.
	snap := d.takeSnapshot(p, runs)
	// Kept until here for shared memory read from inside (addResident).
	if err := p.scratch.unmap(); err != nil {
		return 0, err
	}
	if err := p.step("checkpoint: scratch unmapped"); err != nil {
		return 0, err
	}
	d.stats.memdump += time.Since(scanStart)
	mmEntry.Vmas = vmas
	p.logf("process %d: collected %d threads, %d mappings, %d page runs in %v", p.pid, len(p.threads), len(vmas), len(runs), time.Since(start))

	pagesID := uint32(index + 1)
	copyStart := time.Now()
	if err := p.step("memory: copy"); err != nil {
		return 0, err
	}
	n, err := d.savePages(p, dir, pagesID, runs, snap)
	if err != nil {
		return 0, err
	}
	if err := p.step("memory: copied"); err != nil {
		return 0, err
	}
	d.stats.memwrite += time.Since(copyStart)
	d.stats.pagesSaved += uint64(n) / proc.PageSize()
	for _, m := range maps {
		d.stats.pagesScanned += m.Size() / proc.PageSize()
	}
	p.logf("process %d: saved %d bytes of memory in %v", p.pid, n, time.Since(copyStart))

	// One mm, fd table, fs and signal table per process: ids by index.
	id := proto.Uint32(uint32(index + 1))
	p.ids = &core.TaskKobjIdsEntry{VmId: id, FilesId: id, FsId: id, SighandId: id}
	d.ns.setIDs(p, p.ids)
	cores[0].Ids = p.ids

	writes := []struct {
		name, magic string
		entries     []proto.Message
	}{
		{image.MMName(p.pid), "MM", []proto.Message{mmEntry}},
		{image.IDsName(p.pid), "IDS", []proto.Message{p.ids}},
		{image.FSName(p.pid), "FS", []proto.Message{fsEntry}},
		{image.FdinfoName(uint32(index + 1)), "FDINFO", toMessages(fds)},
	}
	for i, t := range p.threads {
		writes = append(writes, struct {
			name, magic string
			entries     []proto.Message
		}{image.CoreName(t.Tid), "CORE", []proto.Message{cores[i]}})
	}
	for _, w := range writes {
		if err := p.step("images: write " + w.name); err != nil {
			return 0, err
		}
		if err := dir.Write(w.name, w.magic, w.entries...); err != nil {
			return 0, err
		}
	}
	return xfeatures, nil
}

// pstreeEntry describes the process for pstree.img.
func (p *process) pstreeEntry() *pstree.PstreeEntry {
	tids := []uint32{uint32(p.pid)}
	if !p.zombie && !p.helper {
		tids = tids[:0]
		for _, t := range p.threads {
			tids = append(tids, uint32(t.Tid))
		}
	}
	e := &pstree.PstreeEntry{
		Pid:     proto.Uint32(uint32(p.pid)),
		Ppid:    proto.Uint32(uint32(p.ppid)),
		Pgid:    proto.Uint32(uint32(p.stat.Pgrp)),
		Sid:     proto.Uint32(uint32(p.stat.Session)),
		Threads: tids,
	}
	if p.nsPid != 0 {
		inner := []uint32{}
		for _, t := range p.threads {
			inner = append(inner, p.nsTids[t.Tid])
		}
		if p.zombie {
			inner = []uint32{p.nsPid}
		}
		image.SetNsPids(e, inner)
	}
	return e
}

// zombieCore is the core image of a dead, unreaped process (its exit
// status is all there is) or of a group helper.
func (p *process) zombieCore() *core.CoreEntry {
	z := proto.Uint32(0)
	state := uint32(taskDead)
	if p.helper {
		state = taskHelper
	}
	return &core.CoreEntry{
		Mtype: core.CoreEntry_X86_64.Enum(),
		Tc: &core.TaskCoreEntry{
			TaskState:   proto.Uint32(state),
			ExitCode:    proto.Uint32(uint32(p.stat.ExitCode)),
			Personality: z,
			Flags:       z,
			BlkSigset:   proto.Uint64(0),
			Comm:        proto.String(p.stat.Comm),
		},
	}
}

// writeTree writes the images that describe the whole tree: pstree,
// files, cpuinfo and, last, the inventory (a directory without one is
// recognisably incomplete).
func (d *dumper) writeTree(dir *image.Dir, xfeatures uint64) error {
	var tree []proto.Message
	for _, p := range d.procs {
		tree = append(tree, p.pstreeEntry())
		if p.zombie || p.helper {
			if err := dir.Write(image.CoreName(p.pid), "CORE", p.zombieCore()); err != nil {
				return err
			}
		}
	}
	if err := dir.Write(image.PstreeName, "PSTREE", tree...); err != nil {
		return err
	}
	if err := dir.Write(image.FilesName, "FILES", toMessages(d.files.entries)...); err != nil {
		return err
	}
	if err := dir.Write(cpuinfoName, "CPUINFO", cpuInfo(xfeatures)); err != nil {
		return err
	}
	if len(d.snaps) > 0 {
		// The pages still in snapshot children come first
		// (finishSnapshots), then the inventory.
		return nil
	}
	return d.writeInventory(dir)
}

// writeInventory writes inventory.img, last, once every other image is on
// disk: it is what says the dump is whole.
func (d *dumper) writeInventory(dir *image.Dir) error {
	var uptime unix.Sysinfo_t
	_ = unix.Sysinfo(&uptime)
	inv := &inventory.InventoryEntry{
		ImgVersion:  proto.Uint32(image.ImageVersion),
		FdinfoPerId: proto.Bool(true),
		RootIds:     d.procs[0].ids,
		NsPerId:     proto.Bool(true),
		Lsmtype:     inventory.Lsmtype_NO_LSM.Enum(),
		DumpUptime:  proto.Uint64(uint64(uptime.Uptime) * 1e6),
	}
	// Every other image is on disk before the inventory says the dump is
	// whole, and the inventory is before the tree is killed.
	if err := dir.SyncAll(); err != nil {
		return err
	}
	if err := dir.Write(image.InventoryName, "INVENTORY", inv); err != nil {
		return err
	}
	return dir.SyncAll()
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
	dead, err := deadProcRoot(p.pid, root)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	if dead && cwd != root {
		return nil, fmt.Errorf("process %d: its root is the fdinfo directory of a process that is gone (%s), its working directory %s: not supported", p.pid, root, cwd)
	}
	cwdID, err := ft.dirFile(cwd, fmt.Sprintf("/proc/%d/cwd", p.pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: cwd: %w", p.pid, err)
	}
	rootID, err := ft.dirFile(root, fmt.Sprintf("/proc/%d/root", p.pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: root: %w", p.pid, err)
	}
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return nil, fmt.Errorf("process %d: %w", p.pid, err)
	}
	e := &fs.FsEntry{CwdId: proto.Uint32(cwdID), RootId: proto.Uint32(rootID), Umask: proto.Uint32(st.Umask)}
	if dead {
		image.SetDeadProcRoot(e)
	}
	return e, nil
}
