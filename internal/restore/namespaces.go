package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	ipcdesc "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-desc"
	ipcvar "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-var"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pidns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	usernsimg "github.com/checkpoint-restore/go-criu/v7/crit/images/userns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/utsns"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/netns"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/sysv"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// usernsImage is a user namespace to recreate. Maps are in the host's view.
type usernsImage struct {
	id             uint32
	uidMap, gidMap userns.Map
	ext            image.UsernsExt
}

// namespaces are the namespaces of the tree that were not the dumper's own;
// a process whose namespace has no image stays in cryo's.
type namespaces struct {
	users map[uint32]*usernsImage
	uts   map[uint32]*utsns.UtsnsEntry
	ipc   map[uint32]*ipcvar.IpcVarEntry
	sysv  map[uint32]*image.SysV
	pids  map[uint32]uint32          // pid namespace id -> owning user namespace id (0: cryo's)
	mnts  map[uint32][]*mnt.MntEntry // mount namespace id -> its mounts
	times map[uint32]*timens.TimensEntry
	nets  map[uint32]*netns.State // the tree's own net namespaces (netns.go)
}

func readMap(ext []*usernsimg.UidGidExtent) userns.Map {
	var m userns.Map
	for _, e := range ext {
		m = append(m, proc.IDMapEntry{Inside: e.GetFirst(), Outside: e.GetLowerFirst(), Count: e.GetCount()})
	}
	return m
}

// loadNamespaces reads the namespace images the processes refer to.
func (s *snapshot) loadNamespaces(dir *image.Dir) error {
	s.ns = &namespaces{users: map[uint32]*usernsImage{}, uts: map[uint32]*utsns.UtsnsEntry{},
		ipc: map[uint32]*ipcvar.IpcVarEntry{}, sysv: map[uint32]*image.SysV{},
		pids: map[uint32]uint32{}, mnts: map[uint32][]*mnt.MntEntry{}, times: map[uint32]*timens.TimensEntry{},
		nets: map[uint32]*netns.State{}}
	missing := func(err error) bool { return errors.Is(err, fs.ErrNotExist) }
	var loadUser func(id uint32, depth int) error
	loadUser = func(id uint32, depth int) error {
		if id == 0 || s.ns.users[id] != nil {
			return nil
		}
		if depth > 32 {
			return fmt.Errorf("%s: user namespaces nested too deep", image.UsernsName(id))
		}
		var e usernsimg.UsernsEntry
		if err := dir.ReadOne(image.UsernsName(id), "USERNS", &e); err != nil {
			if missing(err) {
				return nil
			}
			return err
		}
		ext, err := image.GetUsernsExt(&e)
		if err != nil {
			return fmt.Errorf("%s: %w", image.UsernsName(id), err)
		}
		if len(e.GetUidMap()) == 0 || len(e.GetUidMap()) > 340 || len(e.GetGidMap()) > 340 {
			return fmt.Errorf("%s: %d uid map lines", image.UsernsName(id), len(e.GetUidMap()))
		}
		s.ns.users[id] = &usernsImage{id: id, uidMap: readMap(e.GetUidMap()), gidMap: readMap(e.GetGidMap()), ext: ext}
		if ext.Parent == id {
			return fmt.Errorf("%s: is its own parent", image.UsernsName(id))
		}
		return loadUser(ext.Parent, depth+1)
	}
	for _, c := range s.procs {
		if c.zombie {
			continue
		}
		ids := c.cores[0].GetIds()
		if err := loadUser(ids.GetUserNsId(), 0); err != nil {
			return err
		}
		if err := readOptional(dir, ids.GetUtsNsId(), image.UtsnsName, "UTSNS", s.ns.uts); err != nil {
			return err
		}
		if id := ids.GetPidNsId(); id != 0 {
			if _, ok := s.ns.pids[id]; !ok {
				var e pidns.PidnsEntry
				if err := dir.ReadOne(image.PidnsName(id), "PIDNS", &e); err == nil {
					owner, err := image.PidnsOwner(&e)
					if err != nil {
						return fmt.Errorf("%s: %w", image.PidnsName(id), err)
					}
					if err := loadUser(owner, 0); err != nil {
						return err
					}
					s.ns.pids[id] = owner
				} else if !missing(err) {
					return err
				}
			}
		}
		if id := ids.GetMntNsId(); id != 0 && s.ns.mnts[id] == nil {
			mounts, err := image.ReadEntries[*mnt.MntEntry](dir, image.MountpointsName(id), "MNTS")
			if err == nil {
				s.ns.mnts[id] = mounts
			} else if !missing(err) {
				return err
			}
		}
		if err := readOptional(dir, ids.GetTimeNsId(), image.TimensName, "TIMENS", s.ns.times); err != nil {
			return err
		}
		if err := s.loadNet(dir, ids.GetNetNsId()); err != nil {
			return err
		}
		if id := ids.GetIpcNsId(); id != 0 && s.ns.ipc[id] == nil {
			var e ipcvar.IpcVarEntry
			if err := dir.ReadOne(image.IpcnsVarName(id), "IPC_VAR", &e); err == nil {
				s.ns.ipc[id] = &e
				objs, err := dir.ReadSysV(id)
				if err != nil {
					return err
				}
				s.ns.sysv[id] = objs
			} else if !missing(err) {
				return err
			}
		}
	}
	return nil
}

// readOptional reads into into[id] the one entry of namespace id's image,
// once; a namespace without an image (id 0, or cryo's own) is skipped.
func readOptional[E any, P interface {
	*E
	proto.Message
}](dir *image.Dir, id uint32, name func(uint32) string, magic string, into map[uint32]P) error {
	if id == 0 || into[id] != nil {
		return nil
	}
	e := P(new(E))
	if err := dir.ReadOne(name(id), magic, e); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	into[id] = e
	return nil
}

// enterNamespaces puts every live process in its namespaces (end of phase
// one). The tree was built in cryo's namespaces, where cryo may choose
// PIDs; now the first process of each namespace creates it (a user
// namespace with its owner's uid, maps written from its parent namespace)
// and the others join it with setns.
func (r *restorer) enterNamespaces() error {
	ns := r.snap.ns
	if len(ns.users)+len(ns.uts)+len(ns.ipc)+len(ns.mnts)+len(ns.times)+len(ns.nets) == 0 {
		return nil
	}
	creators := map[string]map[uint32]*process{"user": {}, "uts": {}, "ipc": {}, "mnt": {}, "time": {}, "net": {}}
	defer r.nets.close()
	if r.rootUserns != 0 {
		creators["user"][r.rootUserns] = r.procs[0]
	}
	for _, p := range r.procs {
		if p.c.zombie || r.nested[p] {
			continue // nested ones: made and put in place by buildNested
		}
		if err := r.enterOwn(p, creators); err != nil {
			return err
		}
	}
	if err := r.buildNested(creators); err != nil {
		return err
	}
	return r.finishNets()
}

// enterOwn puts p in its namespaces: it creates those it is the first of
// and joins the others, where creators made them. A namespace p was born
// in (its parent's, once the parent was in place: see buildNested) is
// left as it is.
func (r *restorer) enterOwn(p *process, creators map[string]map[uint32]*process) error {
	ns := r.snap.ns
	{
		// Files on the tree's own mounts it shares with an ancestor, which
		// opened them at the end of its turn.
		if err := r.files.copyLate(p); err != nil {
			return err
		}
		ids := p.c.cores[0].GetIds()
		kinds := []struct {
			name string
			flag uint64
			id   uint32
			has  bool
		}{
			{"user", unix.CLONE_NEWUSER, ids.GetUserNsId(), ns.users[ids.GetUserNsId()] != nil},
			{"uts", unix.CLONE_NEWUTS, ids.GetUtsNsId(), ns.uts[ids.GetUtsNsId()] != nil},
			{"ipc", unix.CLONE_NEWIPC, ids.GetIpcNsId(), ns.ipc[ids.GetIpcNsId()] != nil},
			{"mnt", unix.CLONE_NEWNS, ids.GetMntNsId(), ns.mnts[ids.GetMntNsId()] != nil},
			{"time", unix.CLONE_NEWTIME, ids.GetTimeNsId(), ns.times[ids.GetTimeNsId()] != nil},
			{"net", unix.CLONE_NEWNET, ids.GetNetNsId(), ns.nets[ids.GetNetNsId()] != nil},
		}
		// A process cloned once its parent was in place has its parent's
		// namespaces already; the one of the tree's root, or of a nested
		// pid namespace's init, was born in its user namespace.
		born := p.userns != nil && p.userns.id == ids.GetUserNsId()
		for i, k := range kinds {
			if p.late != nil && k.id == r.nsIDOf(p.late, k.name) {
				kinds[i].has = false
			}
			if k.name == "user" && born {
				kinds[i].has = false
			}
		}
		// Open what p joins while it is still root in cryo's namespaces:
		// once in a user namespace it may no longer reach them.
		fds := map[string]uint64{}
		for _, k := range kinds {
			if c := creators[k.name][k.id]; k.has && c != nil {
				fd, err := p.openNs(c, k.name)
				if err != nil {
					return err
				}
				fds[k.name] = fd
			}
		}
		if u := ns.users[ids.GetUserNsId()]; u != nil && !born {
			if u.ext.SetgroupsDeny && u.id != r.rootUserns {
				if err := p.setHostGroups(u, ns.users[r.rootUserns], p.c.cores[0].GetThreadCore().GetCreds().GetGroups()); err != nil {
					return err
				}
			}
			if u.ext.Parent != 0 && fds["user"] == 0 {
				if c := creators["user"][u.ext.Parent]; c != nil {
					fd, err := p.openNs(c, "user")
					if err != nil {
						return err
					}
					fds["parent-user"] = fd
				}
			}
		}
		// Existing namespaces of other kinds are joined first, while p
		// still has its rights in the user namespace they belong to (once
		// in a nested one it has none there); new ones are made after the
		// user namespace, so that they belong to it.
		for _, k := range kinds {
			if fd, ok := fds[k.name]; ok && k.has && k.name != "user" {
				if err := p.setns(fd, k.name, k.flag); err != nil {
					return err
				}
			}
		}
		for _, k := range kinds {
			if !k.has {
				continue
			}
			if fd, ok := fds[k.name]; ok {
				if k.name == "user" {
					if err := p.setns(fd, k.name, k.flag); err != nil {
						return err
					}
				}
				continue
			}
			var err error
			switch k.name {
			case "user":
				err = r.createUserns(p, ns.users[k.id], fds["parent-user"], creators["user"])
			case "uts":
				err = p.createUts(ns.uts[k.id])
			case "ipc":
				err = p.createIpc(ns.ipc[k.id], ns.sysv[k.id], ns.users[ids.GetUserNsId()])
			case "mnt":
				err = p.createMnt(k.id, ns.mnts[k.id], ns.users[ids.GetUserNsId()])
			case "time":
				err = p.createTime(k.id, ns.times[k.id])
			case "net":
				err = r.createNet(p, k.id)
			}
			if err != nil {
				return err
			}
			creators[k.name][k.id] = p
		}
		for _, fd := range fds {
			p.leader.Syscall(unix.SYS_CLOSE, fd)
		}
		p.userns = ns.users[ids.GetUserNsId()]
		if err := r.files.openLate(p); err != nil {
			return err
		}
	}
	return nil
}

// nsIDOf is the image's id of p's namespace of a kind (as enterOwn names
// them).
func (r *restorer) nsIDOf(p *process, kind string) uint32 {
	if len(p.c.cores) == 0 {
		return 0
	}
	ids := p.c.cores[0].GetIds()
	switch kind {
	case "user":
		return ids.GetUserNsId()
	case "uts":
		return ids.GetUtsNsId()
	case "ipc":
		return ids.GetIpcNsId()
	case "mnt":
		return ids.GetMntNsId()
	case "time":
		return ids.GetTimeNsId()
	case "net":
		return ids.GetNetNsId()
	}
	return 0
}

// createUserns creates user namespace u in p, first entering its parent
// (parentFd, opened beforehand) unless that is cryo's own.
func (r *restorer) createUserns(p *process, u *usernsImage, parentFd uint64, creators map[uint32]*process) error {
	var parent *usernsImage
	if u.ext.Parent != 0 {
		parent = r.snap.ns.users[u.ext.Parent]
		// The tree was born in the root's user namespace: a process is
		// already in it (and setns to one's own namespace fails).
		inParent := u.ext.Parent == r.rootUserns
		if parent == nil || (parentFd == 0 && !inParent) {
			return fmt.Errorf("restore pid %d: user namespace %d: its parent %d has no process of the tree before it", p.c.pid, u.id, u.ext.Parent)
		}
		if !inParent {
			if err := p.setns(parentFd, "user", unix.CLONE_NEWUSER); err != nil {
				return err
			}
		}
	}
	// The namespace's owner is the euid of its creator, and its creator's
	// ids must be mapped where it stands.
	owner, gid := u.ext.Owner, uint32(0)
	if parent != nil {
		owner = parent.uidMap.ToInside(owner)
		if len(parent.gidMap) > 0 {
			gid = parent.gidMap[0].Inside
		}
	}
	t := p.leader
	if parent == nil && os.Geteuid() != 0 {
		// A rootless restore: p has cryo's ids, and only cryo's user can
		// own the namespace it makes.
		if uint32(os.Geteuid()) != owner {
			return fmt.Errorf("restore pid %d: user namespace %d is owned by uid %d: only root or that user can restore it", p.c.pid, u.id, owner)
		}
	} else {
		if _, err := t.Syscall(unix.SYS_SETRESGID, uint64(gid), uint64(gid), uint64(gid)); err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: become gid %d: %w", p.c.pid, u.id, gid, err)
		}
		if _, err := t.Syscall(unix.SYS_SETRESUID, uint64(owner), uint64(owner), uint64(owner)); err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: become its owner %d: %w", p.c.pid, u.id, owner, err)
		}
	}
	// Changing ids made the process non-dumpable, which makes its /proc
	// files root's: the parent namespace's creator could not write its maps.
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil {
		return fmt.Errorf("restore pid %d: dumpable: %w", p.c.pid, err)
	}
	if _, err := t.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWUSER); err != nil {
		return fmt.Errorf("restore pid %d: create user namespace %d (owner %d): %w", p.c.pid, u.id, u.ext.Owner, err)
	}
	return r.writeUsernsMaps(p, u, parent, creators)
}

// writeUsernsMaps writes the setgroups policy and the maps of user
// namespace u, which p has just created (parent: its parent's image, nil
// for cryo's own).
func (r *restorer) writeUsernsMaps(p *process, u, parent *usernsImage, creators map[uint32]*process) error {
	// Maps are written from the parent namespace: by cryo for the initial
	// one, else by the process that created the parent, which sits in it.
	uidMap, gidMap := u.uidMap, u.gidMap
	if parent != nil {
		var err error
		if uidMap, err = relativeMap(u.uidMap, parent.uidMap); err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: uid map: %w", p.c.pid, u.id, err)
		}
		if gidMap, err = relativeMap(u.gidMap, parent.gidMap); err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: gid map: %w", p.c.pid, u.id, err)
		}
	}
	setgroups := "allow"
	if u.ext.SetgroupsDeny {
		setgroups = "deny"
	}
	// setgroups goes first: it can be denied only before gid_map is written.
	writes := []struct {
		file, data string
		kind       userns.IDKind // "": not an id map
		m          userns.Map
	}{
		{file: "setgroups", data: setgroups},
		{"uid_map", userns.FormatMap(uidMap), userns.UIDs, uidMap},
		{"gid_map", userns.FormatMap(gidMap), userns.GIDs, gidMap},
	}
	for _, w := range writes {
		var err error
		if parent == nil {
			if w.kind != "" {
				err = userns.WriteMap(p.pid, w.kind, w.m)
			} else {
				err = os.WriteFile(fmt.Sprintf("/proc/%d/%s", p.pid, w.file), []byte(w.data), 0)
			}
		} else {
			c := creators[u.ext.Parent]
			var pid uint64
			if pid, err = r.pidInProcOf(p, c); err == nil {
				err = c.remote().WriteFile(fmt.Sprintf("/proc/%d/%s", pid, w.file), []byte(w.data))
			}
		}
		if err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: write %s %q: %w", p.c.pid, u.id, w.file, strings.TrimSpace(w.data), err)
		}
	}
	if parent == nil {
		// newgidmap may have set the policy on its own.
		if err := userns.CheckSetgroups(p.pid, setgroups); err != nil {
			return fmt.Errorf("restore pid %d: user namespace %d: after gid_map %q: %w", p.c.pid, u.id, strings.TrimSpace(userns.FormatMap(gidMap)), err)
		}
	}
	return nil
}

// setHostGroups gives p its supplementary groups before it enters a user
// namespace u where setgroups is denied: inside, it could not set them.
// p is in user namespace cur (nil: cryo's), whose ids setgroups takes.
func (p *process) setHostGroups(u, cur *usernsImage, groups []uint32) error {
	if len(groups) > 65536 {
		return fmt.Errorf("restore pid %d: %d groups", p.c.pid, len(groups))
	}
	b := make([]byte, 0, 4*len(groups)+4)
	for _, g := range groups {
		h, ok := u.gidMap.ToHost(g)
		if !ok {
			h = userns.Overflow
		}
		if cur != nil {
			h = cur.gidMap.ToInside(h)
		}
		b = binary.LittleEndian.AppendUint32(b, h)
	}
	addr, err := p.put(append(b, 0, 0, 0, 0))
	if err != nil {
		return err
	}
	_, err = p.leader.Syscall(unix.SYS_SETGROUPS, uint64(len(groups)), addr)
	if errors.Is(err, unix.EPERM) {
		// Without CAP_SETGID (a rootless restore) the groups can only be
		// the ones cryo's user already has.
		if same, gerr := p.hasGroups(b); gerr != nil || !same {
			return fmt.Errorf("restore pid %d: supplementary groups %v (%v where it stands): only root can set them: %w", p.c.pid, groups, hostIDs(b), err)
		}
		err = nil
	}
	if err != nil {
		return fmt.Errorf("restore pid %d: supplementary groups: %w", p.c.pid, err)
	}
	return nil
}

// hasGroups tells whether p's supplementary groups are want (little-endian
// u32s, as p's user namespace sees them), in any order.
func (p *process) hasGroups(want []byte) (bool, error) {
	n, err := p.leader.Syscall(unix.SYS_GETGROUPS, 65536, p.scratch)
	if err != nil {
		return false, err
	}
	b := make([]byte, 4*n)
	if err := readMem(p, p.scratch, b); err != nil {
		return false, err
	}
	have, wanted := hostIDs(b), hostIDs(want)
	slices.Sort(have)
	slices.Sort(wanted)
	return slices.Equal(slices.Compact(have), slices.Compact(wanted)), nil
}

// hostIDs decodes little-endian u32 ids.
func hostIDs(b []byte) []uint32 {
	ids := make([]uint32, len(b)/4)
	for i := range ids {
		ids[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return ids
}

// relativeMap converts a map whose outside ids are host ids to one whose
// outside ids are seen from the parent namespace, as uid_map is written.
func relativeMap(m, parent userns.Map) (userns.Map, error) {
	out := make(userns.Map, len(m))
	for i, e := range m {
		lower := parent.ToInside(e.Outside)
		last := parent.ToInside(e.Outside + e.Count - 1)
		if lower == userns.Overflow || last-lower != e.Count-1 {
			return nil, fmt.Errorf("host ids %d-%d are not mapped in one piece in the parent namespace", e.Outside, e.Outside+e.Count-1)
		}
		out[i] = proc.IDMapEntry{Inside: e.Inside, Outside: lower, Count: e.Count}
	}
	return out, nil
}

// openNs opens, in p, creator's namespace of one kind.
func (p *process) openNs(creator *process, kind string) (uint64, error) {
	fd, err := p.open(fmt.Sprintf("/proc/%d/ns/%s", creator.pid, kind), unix.O_RDONLY)
	if err != nil {
		return 0, fmt.Errorf("restore pid %d: %s namespace of %d: %w", p.c.pid, kind, creator.c.pid, err)
	}
	return fd, nil
}

// setns makes p enter the namespace open at fd.
func (p *process) setns(fd uint64, kind string, flag uint64) error {
	if _, err := p.leader.Syscall(unix.SYS_SETNS, fd, flag); err != nil {
		return fmt.Errorf("restore pid %d: join a %s namespace: %w", p.c.pid, kind, err)
	}
	return nil
}

// createUts makes a UTS namespace with the saved host and domain names.
func (p *process) createUts(e *utsns.UtsnsEntry) error {
	t := p.leader
	if _, err := t.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWUTS); err != nil {
		return fmt.Errorf("restore pid %d: create UTS namespace: %w", p.c.pid, err)
	}
	for _, n := range []struct {
		nr   uintptr
		name string
	}{{unix.SYS_SETHOSTNAME, e.GetNodename()}, {unix.SYS_SETDOMAINNAME, e.GetDomainname()}} {
		if len(n.name) > 64 {
			return fmt.Errorf("restore pid %d: UTS name %q is too long", p.c.pid, n.name)
		}
		addr, err := p.put([]byte(n.name))
		if err != nil {
			return err
		}
		if _, err := t.Syscall(n.nr, addr, uint64(len(n.name))); err != nil {
			return fmt.Errorf("restore pid %d: set UTS name %q: %w", p.c.pid, n.name, err)
		}
	}
	return nil
}

// createIpc makes an IPC namespace and gives it the saved limits and
// System V objects, all by calls injected into p: cryo does not join the
// namespace (without root it could not). Owners and creators are ids as
// p's user namespace sees them.
func (p *process) createIpc(e *ipcvar.IpcVarEntry, objs *image.SysV, u *usernsImage) error {
	if _, err := p.leader.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWIPC); err != nil {
		return fmt.Errorf("restore pid %d: create IPC namespace: %w", p.c.pid, err)
	}
	rp := p.remote()
	values := []uint64{uint64(e.GetMsgCtlmax()), uint64(e.GetMsgCtlmnb()), uint64(e.GetMsgCtlmni()), uint64(e.GetAutoMsgmni()),
		e.GetShmCtlmax(), e.GetShmCtlall(), uint64(e.GetShmCtlmni()), uint64(e.GetShmRmidForced()),
		uint64(e.GetMqQueuesMax()), uint64(e.GetMqMsgMax()), uint64(e.GetMqMsgsizeMax()),
		uint64(e.GetMqMsgDefault()), uint64(e.GetMqMsgsizeDefault())}
	for i, name := range sysv.IPCSysctls {
		if err := setSysctl(rp, name, strconv.FormatUint(values[i], 10)); err != nil {
			return fmt.Errorf("restore pid %d: IPC namespace: %w", p.c.pid, err)
		}
	}
	if sem := e.GetSemCtls(); len(sem) == 4 {
		if err := setSysctl(rp, "kernel/sem", fmt.Sprintf("%d %d %d %d", sem[0], sem[1], sem[2], sem[3])); err != nil {
			return fmt.Errorf("restore pid %d: IPC namespace: %w", p.c.pid, err)
		}
	}
	if err := makeSysV(rp, objs, u); err != nil {
		return fmt.Errorf("restore pid %d: IPC namespace: %w", p.c.pid, err)
	}
	return nil
}

// makeSysV recreates the objects in rp's IPC namespace.
func makeSysV(rp remote.Proc, objs *image.SysV, u *usernsImage) error {
	if objs == nil {
		return nil
	}
	// An id that p's user namespace does not map (seen as 65534 when it
	// was dumped) cannot be given back: the object keeps p's.
	mapped := func(m userns.Map, id uint32) uint32 {
		if u == nil {
			return id
		}
		if _, ok := m.ToHost(id); ok {
			return id
		}
		return sysv.Unmapped
	}
	var uids, gids userns.Map
	if u != nil {
		uids, gids = u.uidMap, u.gidMap
	}
	creator := func(d *ipcdesc.IpcDescEntry) sysv.Creator {
		return sysv.Creator{ID: int(d.GetId()), Key: int32(d.GetKey()), Mode: d.GetMode(),
			UID: mapped(uids, d.GetUid()), GID: mapped(gids, d.GetGid()), CUID: mapped(uids, d.GetCuid()), CGID: mapped(gids, d.GetCgid())}
	}
	for _, seg := range objs.Shm {
		if err := sysv.MakeShm(rp, creator(seg.Entry.GetDesc()), seg.Data); err != nil {
			return err
		}
	}
	for _, set := range objs.Sem {
		if err := sysv.MakeSem(rp, creator(set.Entry.GetDesc()), set.Values); err != nil {
			return err
		}
	}
	for _, q := range objs.Msg {
		var msgs []sysv.Message
		for _, m := range q.Msgs {
			msgs = append(msgs, sysv.Message{Type: m.Type, Data: m.Data})
		}
		if err := sysv.MakeMsg(rp, creator(q.Entry.GetDesc()), uint64(q.Entry.GetQbytes()), msgs); err != nil {
			return err
		}
	}
	return nil
}

// setSysctl writes a setting of rp's namespaces that differs from the
// current one; a setting the kernel lacks, or saved as 0 (it lacked it at
// dump time), is left as it is.
func setSysctl(rp remote.Proc, name, value string) error {
	path := "/proc/sys/" + name
	cur, err := rp.ReadFile(path)
	if errors.Is(err, unix.ENOENT) || value == "0" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("limit %s: %w", name, err)
	}
	if strings.Join(strings.Fields(string(cur)), " ") == value {
		return nil
	}
	if err := rp.WriteFile(path, []byte(value)); err != nil {
		return fmt.Errorf("limit %s: set %s (was %s): %w", name, value, strings.TrimSpace(string(cur)), err)
	}
	return nil
}

// setLastPid returns a function that sets ns_last_pid with raw system
// calls: it runs on the tracer thread right before an injected clone, so
// that no task of cryo's (a runtime thread) can take the PID in between.
func setLastPid(pid uint32) func() error {
	return func() error {
		fd, err := unix.Open("/proc/sys/kernel/ns_last_pid", unix.O_WRONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open ns_last_pid: %w", err)
		}
		defer unix.Close(fd)
		if _, err := unix.Write(fd, []byte(strconv.Itoa(int(pid)-1))); err != nil {
			return fmt.Errorf("set ns_last_pid: %w", err)
		}
		return nil
	}
}

// readLastPid is the last PID the kernel gave in cryo's pid namespace (0
// if it cannot be read).
func readLastPid() uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/ns_last_pid")
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32)
	if err != nil {
		return 0
	}
	return uint32(v)
}

// cloneAtLastPid creates a task at pid the old way, for a process inside
// a user namespace that does not own cryo's pid namespace (so clone3's
// set_tid is refused for cryo's level): ns_last_pid is set to pid-1 and
// the task takes the next PID. Another task created on the machine at
// that moment could take it first: callers check the result.
func (p *process) cloneAtLastPid(pid uint32, args []byte) (uint64, error) {
	// Other restores at the same time set ns_last_pid too: one at a time
	// on the machine. The lock is a flock on a file of its own, which
	// also keeps apart two restores in one process (a program using the
	// API), since each takes it through an open of its own.
	unlock, err := p.r.lockLastPid()
	if err != nil {
		return 0, fmt.Errorf("restore pid %d: %w", pid, err)
	}
	defer unlock()
	if _, err := p.put(args); err != nil {
		return 0, err
	}
	prev := readLastPid()
	got, err := p.leader.SyscallAfter(setLastPid(pid), unix.SYS_CLONE3, p.scratch, uint64(len(args)))
	// Move the machine's next PID past the tree's: otherwise every task
	// created meanwhile (runtime threads, kernel workers) would take the
	// PIDs still to be restored. Never back below where it was: that
	// would steer new tasks (another restore's threads) into PIDs another
	// tree restored beside this one still needs.
	setLastPid(max(prev, p.r.maxPid) + 1)()
	return got, err
}
