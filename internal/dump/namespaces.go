package dump

import (
	"bytes"
	"errors"
	"fmt"
	"sort"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	ipcdesc "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-desc"
	ipcmsg "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-msg"
	ipcsem "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-sem"
	ipcshm "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-shm"
	ipcvar "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-var"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pidns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	usernsimg "github.com/checkpoint-restore/go-criu/v7/crit/images/userns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/utsns"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/sysv"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// nsKinds are the namespaces a process has, as named in /proc/PID/ns.
var nsKinds = []string{"user", "uts", "ipc", "pid", "mnt", "net", "cgroup", "time"}

// supportedNs are the kinds a dumped process may have of its own; the
// others must be cryo's.
var supportedNs = map[string]bool{"user": true, "uts": true, "ipc": true, "pid": true, "mnt": true, "time": true}

func readNamespaces(pid int) (map[string]uint64, error) {
	ns := map[string]uint64{}
	for _, kind := range nsKinds {
		ino, err := proc.NsInode(pid, kind)
		if err != nil {
			if kind == "time" || kind == "cgroup" {
				continue // older kernels
			}
			return nil, fmt.Errorf("process %d: %s namespace: %w", pid, kind, err)
		}
		ns[kind] = ino
	}
	return ns, nil
}

// ownedByOwnUserns refuses p's namespace ino of one kind when it belongs
// to another user namespace than p's own; p is its first process in the
// tree: restore makes it from p, which would then own it.
func ownedByOwnUserns(p *process, kind string, ino uint64) error {
	owner, err := userns.OwnerOf(p.pid, kind)
	if err != nil {
		return fmt.Errorf("process %d: owner of its %s namespace: %w", p.pid, kind, err)
	}
	if owner != p.ns["user"] {
		return fmt.Errorf("process %d: its %s namespace %d is owned by user namespace %d, not by its own (%d): not supported", p.pid, kind, ino, owner, p.ns["user"])
	}
	return nil
}

// nsTable numbers the namespaces of the tree and describes those that are
// not cryo's own.
type nsTable struct {
	own       map[string]uint64            // cryo's namespaces: restore uses its own
	ids       map[string]map[uint64]uint32 // kind -> inode -> id
	next      uint32
	users     map[uint64]*userns.Info
	uts       map[uint64]*utsns.UtsnsEntry
	ipc       map[uint64]*ipcvar.IpcVarEntry
	sysv      map[uint64]*image.SysV
	pids      map[uint64]uint64          // pid namespace -> owning user namespace
	mnts      map[uint64]*mountNamespace // mount namespace -> its mounts
	times     map[uint64]*timens.TimensEntry
	ownMounts []mountns.Mount
	tmpfsDevs map[uint32]uint64 // tmpfs device -> the mount namespace that mounts it
	// emptyNet: a net namespace of the tree's own is left out of the
	// images (Options.EmptyNetNS); emptyNetIno is it, once met.
	emptyNet bool
	// emptyNetOpt is Options.EmptyNetNS itself; extNets are the net
	// namespaces named external (net[INO]:KEY), left out as empty_ns
	// leaves one out, under their keys.
	emptyNetOpt bool
	extNets     map[uint64]string
	emptyNetIno uint64
	// flatUserns: the parent of the root's user namespace, which holds
	// no process of the tree and is not cryo's; the root's is recorded
	// as a child of cryo's (0: none).
	flatUserns uint64
	// netInCryos: with emptyNet, the tree's root is in cryo's own net
	// namespace, to which CRIU's empty_ns does not apply (a rootless
	// runc container shares the host's): the tree is dumped as without
	// the option, and every process must be there too.
	netInCryos bool
	// added counts the processes recorded so far: the first is the
	// tree's root.
	added int
	// pidNsOf: the pid namespace of each live process recorded so far.
	pidNsOf map[int]uint64
	// nets: the tree's own net namespaces (netns.go).
	nets netTable
	// extMounts are the external mounts the caller named
	// (Options.ExtMounts): mount point in the namespace -> key.
	extMounts map[string]string
}

// mountNamespace is a mount namespace of the tree: its mounts and a
// process in it, through whose root the tmpfs contents are read.
type mountNamespace struct {
	entries []*mnt.MntEntry
	steps   []mountns.Step
	pid     int
}

func newNsTable(own map[string]uint64) *nsTable {
	t := &nsTable{own: own, ids: map[string]map[uint64]uint32{}, users: map[uint64]*userns.Info{}, uts: map[uint64]*utsns.UtsnsEntry{},
		ipc: map[uint64]*ipcvar.IpcVarEntry{}, sysv: map[uint64]*image.SysV{},
		pids: map[uint64]uint64{}, mnts: map[uint64]*mountNamespace{}, times: map[uint64]*timens.TimensEntry{},
		tmpfsDevs: map[uint32]uint64{}}
	for _, kind := range nsKinds {
		t.ids[kind] = map[uint64]uint32{}
	}
	return t
}

func (t *nsTable) id(kind string, ino uint64) uint32 {
	if id, ok := t.ids[kind][ino]; ok {
		return id
	}
	t.next++
	t.ids[kind][ino] = t.next
	return t.next
}

// add records the namespaces of a live process, refusing kinds cryo cannot
// restore yet, and sets its id maps.
func (t *nsTable) add(p *process) error {
	ns, err := readNamespaces(p.pid)
	if err != nil {
		return err
	}
	p.ns = ns
	t.added++
	if t.emptyNet {
		if err := t.checkNetShared(p); err != nil {
			return err
		}
	}
	for _, kind := range nsKinds {
		ino, ok := ns[kind]
		if !ok || ino == t.own[kind] {
			continue
		}
		if kind == "net" && t.emptyNet {
			if err := t.leaveNetOut(p, ino); err != nil {
				return err
			}
			continue
		}
		if kind == "net" {
			if err := t.addNet(p, ino); err != nil {
				return err
			}
			continue
		}
		if !supportedNs[kind] {
			return fmt.Errorf("process %d: its own %s namespace (%d) is not supported yet", p.pid, kind, ino)
		}
		if _, seen := t.ids[kind][ino]; !seen && (kind == "uts" || kind == "ipc") {
			if err := ownedByOwnUserns(p, kind, ino); err != nil {
				return err
			}
		}
		t.id(kind, ino)
	}
	if ino := ns["user"]; ino != t.own["user"] {
		info, ok := t.users[ino]
		if !ok {
			if info, err = userns.Read(p.pid); err != nil {
				return err
			}
			if info.Parent != t.own["user"] {
				if _, known := t.users[info.Parent]; !known && t.added > 1 {
					return fmt.Errorf("process %d: user namespace %d is nested in namespace %d, which holds no earlier process of the tree: not supported yet", p.pid, ino, info.Parent)
				} else if !known {
					// The root's namespace hangs below namespaces that
					// hold no process of the tree and none can enter (a
					// restored rootless container below the one its user
					// ran runc restore in). Its maps, as cryo reads
					// them, are relative to cryo's namespace: the
					// restore makes it a child of its own, as the first
					// restore did.
					t.flatUserns = info.Parent
					info.Parent = t.own["user"]
				}
			}
			t.users[ino] = info
		}
		p.uidMap, p.gidMap = info.UIDMap, info.GIDMap
	}
	if ino := ns["pid"]; ino != t.own["pid"] {
		if err := p.innerPids(); err != nil {
			return err
		}
	}
	if err := t.checkPidNsParent(p, ns["pid"]); err != nil {
		return err
	}
	if ino := ns["pid"]; ino != t.own["pid"] {
		if _, ok := t.pids[ino]; !ok {
			owner, err := userns.OwnerOf(p.pid, "pid")
			if err != nil {
				return fmt.Errorf("process %d: owner of its pid namespace: %w", p.pid, err)
			}
			if owner != t.own["user"] && t.users[owner] == nil {
				return fmt.Errorf("process %d: its pid namespace is owned by user namespace %d, which no process of the tree is in: not supported", p.pid, owner)
			}
			if p.nsPid != 1 {
				return fmt.Errorf("process %d is pid %d of its pid namespace, whose init is not in the tree: dump from the init", p.pid, p.nsPid)
			}
			t.pids[ino] = owner
		}
	}
	if ino := ns["mnt"]; ino != t.own["mnt"] {
		if err := t.addMountNs(p, ino); err != nil {
			return err
		}
	}
	if err := t.addTimeNs(p); err != nil {
		return err
	}
	return nil
}

// readInside reads what only a process inside a namespace sees, the
// first time one of the tree's UTS or IPC namespaces comes up: its names,
// limits and System V objects, by calls injected into the process (rp),
// so that cryo never joins the namespace.
func (t *nsTable) readInside(p *process, rp remote.Proc) error {
	if ino := p.ns["uts"]; ino != t.own["uts"] {
		if _, ok := t.uts[ino]; !ok {
			node, domain, err := rp.Uname()
			if err != nil {
				return fmt.Errorf("UTS namespace: %w", err)
			}
			t.uts[ino] = &utsns.UtsnsEntry{Nodename: proto.String(node), Domainname: proto.String(domain)}
		}
	}
	if ino := p.ns["ipc"]; ino != t.own["ipc"] {
		if _, ok := t.ipc[ino]; !ok {
			objs, err := readSysV(rp)
			if err == nil {
				t.ipc[ino], err = ipcVars(rp)
			}
			if err != nil && unreachableProc(err) {
				// Its root is no way to /proc (a sandbox's chroot): a
				// reader in its namespaces reads for it.
				r, rerr := startIPCReader(p.pid)
				if rerr != nil {
					return fmt.Errorf("IPC namespace: %w (%v)", rerr, err)
				}
				objs, err = readSysV(r.rp)
				if err == nil {
					t.ipc[ino], err = ipcVars(r.rp)
				}
				r.stop()
			}
			if err != nil {
				delete(t.ipc, ino)
				return fmt.Errorf("IPC namespace: %w", err)
			}
			t.sysv[ino] = objs
		}
	}
	return nil
}

// setIDs fills the namespace ids of a process's ids entry.
func (t *nsTable) setIDs(p *process, ids *core.TaskKobjIdsEntry) {
	set := func(kind string) *uint32 {
		ino, ok := p.ns[kind]
		if !ok {
			return nil
		}
		return proto.Uint32(t.id(kind, ino))
	}
	ids.UserNsId, ids.UtsNsId, ids.IpcNsId = set("user"), set("uts"), set("ipc")
	ids.PidNsId, ids.MntNsId, ids.NetNsId = set("pid"), set("mnt"), set("net")
	ids.CgroupNsId, ids.TimeNsId = set("cgroup"), set("time")
}

// write saves the user and UTS namespaces that are not cryo's own. Parents
// get lower ids than their children (they were met first).
func (t *nsTable) write(dir *image.Dir) error {
	if err := t.writeEmptyNet(dir); err != nil {
		return err
	}
	if err := t.writeNets(dir); err != nil {
		return err
	}
	var inos []uint64
	for ino := range t.users {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return t.ids["user"][inos[i]] < t.ids["user"][inos[j]] })
	for _, ino := range inos {
		info := t.users[ino]
		e := &usernsimg.UsernsEntry{UidMap: extents(info.UIDMap), GidMap: extents(info.GIDMap)}
		var parent uint32
		if info.Parent != t.own["user"] {
			parent = t.ids["user"][info.Parent]
		}
		image.SetUsernsExt(e, image.UsernsExt{Owner: info.Owner, Parent: parent, SetgroupsDeny: info.Setgroups == "deny"})
		if err := dir.Write(image.UsernsName(t.ids["user"][ino]), "USERNS", e); err != nil {
			return err
		}
	}
	for ino, e := range t.uts {
		if err := dir.Write(image.UtsnsName(t.ids["uts"][ino]), "UTSNS", e); err != nil {
			return err
		}
	}
	for ino, m := range t.mnts {
		if err := dir.Write(image.MountpointsName(t.ids["mnt"][ino]), "MNTS", toMessages(m.entries)...); err != nil {
			return err
		}
		if err := m.writeTmpfs(dir); err != nil {
			return err
		}
	}
	for ino, e := range t.times {
		if err := dir.Write(image.TimensName(t.ids["time"][ino]), "TIMENS", e); err != nil {
			return err
		}
	}
	for ino, owner := range t.pids {
		// The pid namespace's owner: 0 for cryo's user namespace.
		e := &pidns.PidnsEntry{}
		var ownerID uint32
		if owner != t.own["user"] {
			ownerID = t.ids["user"][owner]
		}
		image.SetPidnsOwner(e, ownerID)
		if err := dir.Write(image.PidnsName(t.ids["pid"][ino]), "PIDNS", e); err != nil {
			return err
		}
	}
	for ino, e := range t.ipc {
		if err := dir.Write(image.IpcnsVarName(t.ids["ipc"][ino]), "IPC_VAR", e); err != nil {
			return err
		}
		if err := dir.WriteSysV(t.ids["ipc"][ino], t.sysv[ino]); err != nil {
			return err
		}
	}
	return nil
}

func extents(m userns.Map) []*usernsimg.UidGidExtent {
	var out []*usernsimg.UidGidExtent
	for _, e := range m {
		out = append(out, &usernsimg.UidGidExtent{First: proto.Uint32(e.Inside), LowerFirst: proto.Uint32(e.Outside), Count: proto.Uint32(e.Count)})
	}
	return out
}

// readSysV saves the System V objects of rp's IPC namespace. rp reads
// them, so owners and creators are already as its user namespace sees
// them (unmapped ones as the overflow id).
func readSysV(rp remote.Proc) (*image.SysV, error) {
	out := &image.SysV{}
	desc := func(o sysv.Object) *ipcdesc.IpcDescEntry {
		return &ipcdesc.IpcDescEntry{
			Key: proto.Uint32(uint32(o.Key)), Id: proto.Uint32(uint32(o.ID)), Mode: proto.Uint32(o.Mode),
			Uid: proto.Uint32(o.UID), Gid: proto.Uint32(o.GID), Cuid: proto.Uint32(o.CUID), Cgid: proto.Uint32(o.CGID),
		}
	}
	shms, err := sysv.List(rp, "shm")
	if err != nil {
		return nil, err
	}
	for _, o := range shms {
		data, err := sysv.ReadShm(rp, o.ID, o.Size)
		if err != nil {
			return nil, err
		}
		out.Shm = append(out.Shm, image.ShmSegment{Entry: &ipcshm.IpcShmEntry{Desc: desc(o), Size: proto.Uint64(o.Size)}, Data: data})
	}
	sems, err := sysv.List(rp, "sem")
	if err != nil {
		return nil, err
	}
	for _, o := range sems {
		vals, err := sysv.ReadSem(rp, o.ID, int(o.Size))
		if err != nil {
			return nil, err
		}
		out.Sem = append(out.Sem, image.SemSet{Entry: &ipcsem.IpcSemEntry{Desc: desc(o), Nsems: proto.Uint32(uint32(o.Size))}, Values: vals})
	}
	msgs, err := sysv.List(rp, "msg")
	if err != nil {
		return nil, err
	}
	for _, o := range msgs {
		ms, err := sysv.ReadMsgs(rp, o.ID, int(o.Count))
		if err != nil {
			return nil, err
		}
		qbytes, err := sysv.MsgQbytes(rp, o.ID)
		if err != nil {
			return nil, err
		}
		q := image.MsgQueue{Entry: &ipcmsg.IpcMsgEntry{Desc: desc(o), Qbytes: proto.Uint32(uint32(qbytes)), Qnum: proto.Uint32(uint32(len(ms)))}}
		for _, m := range ms {
			q.Msgs = append(q.Msgs, image.Msg{Type: m.Type, Data: m.Data})
		}
		out.Msg = append(out.Msg, q)
	}
	return out, nil
}

// ipcVars reads the limits of rp's IPC namespace.
func ipcVars(rp remote.Proc) (*ipcvar.IpcVarEntry, error) {
	var failed error
	read := func(name string) []uint64 {
		b, err := rp.ReadFile("/proc/sys/" + name)
		if err != nil {
			// A limit this kernel lacks reads as 0 and is not restored.
			if !errors.Is(err, unix.ENOENT) && failed == nil {
				failed = fmt.Errorf("limit %s: %w", name, err)
			}
			return []uint64{0}
		}
		var out []uint64
		for _, f := range bytes.Fields(b) {
			var v uint64
			fmt.Sscan(string(f), &v)
			out = append(out, v)
		}
		if len(out) == 0 {
			out = []uint64{0}
		}
		return out
	}
	v := make([]uint64, len(sysv.IPCSysctls))
	for i, name := range sysv.IPCSysctls {
		v[i] = read(name)[0]
	}
	var sem []uint32
	for _, x := range read("kernel/sem") {
		sem = append(sem, uint32(x))
	}
	u32 := func(x uint64) *uint32 { return proto.Uint32(uint32(x)) }
	return &ipcvar.IpcVarEntry{
		SemCtls:          sem,
		MsgCtlmax:        u32(v[0]),
		MsgCtlmnb:        u32(v[1]),
		MsgCtlmni:        u32(v[2]),
		AutoMsgmni:       u32(v[3]),
		ShmCtlmax:        proto.Uint64(v[4]),
		ShmCtlall:        proto.Uint64(v[5]),
		ShmCtlmni:        u32(v[6]),
		ShmRmidForced:    u32(v[7]),
		MqQueuesMax:      u32(v[8]),
		MqMsgMax:         u32(v[9]),
		MqMsgsizeMax:     u32(v[10]),
		MqMsgDefault:     u32(v[11]),
		MqMsgsizeDefault: u32(v[12]),
	}, failed
}
