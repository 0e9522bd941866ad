package mountns

import (
	"fmt"
	"path"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
)

// CRIU's fstype codes (mnt.proto's enum) that cryo makes.
const (
	FstypeOther   = 0 // UNSUPPORTED: a bind mount, or inherited
	FstypeProc    = 1
	FstypeSysfs   = 2
	FstypeTmpfs   = 5
	FstypeDevpts  = 6
	FstypeCgroup  = 12
	FstypeMqueue  = 14
	FstypeCgroup2 = 23
)

// Fstype is CRIU's code for a filesystem type as mountinfo names it
// (FstypeOther for those cryo does not mount itself).
func Fstype(name string) uint32 {
	switch name {
	case "proc":
		return FstypeProc
	case "sysfs":
		return FstypeSysfs
	case "tmpfs":
		return FstypeTmpfs
	case "devpts":
		return FstypeDevpts
	case "cgroup":
		return FstypeCgroup
	case "mqueue":
		return FstypeMqueue
	case "cgroup2":
		return FstypeCgroup2
	}
	return FstypeOther
}

// Kind is how one mount of a namespace is made again.
type Kind int

const (
	// Inherited: one of the host's mounts, which a new mount namespace
	// copies; nothing to do.
	Inherited Kind = iota
	// NewTmpfs: a tmpfs of its own, mounted with its options and refilled.
	NewTmpfs
	// NewProc: a proc mount (of the namespace's pid namespace).
	NewProc
	// Bind: a bind mount of a path that an earlier mount shows.
	Bind
	// Root: the root mount of a container's namespace (one that is not a
	// view of cryo's mounts, its root pivoted to a directory of its own),
	// made again as a bind mount of the directory the caller names (CRIU's
	// root option: runc gives a bind mount of the container's rootfs).
	Root
	// External: a mount the caller names by key (CRIU's ext_mnt, the
	// entry's ExtKey), made again as a bind mount of the host path the
	// caller gives for that key on restore.
	External
	// NewFS: a filesystem of a kind that holds no data of the tree's,
	// mounted fresh with its options: sysfs, devpts (a new instance),
	// mqueue, cgroup2, and a cgroup v1 hierarchy from its root.
	NewFS
	// WithExternal: in a container's namespace, a mount of the host's
	// that came with the recursive bind of an external mount above it
	// (the entry's ExtMount, see CameWithExternal); that bind, made again
	// recursive, brings it back: nothing to do.
	WithExternal
)

// IsContainer reports whether entries describe a container's mount
// namespace: its first mount is the namespace's own root, not one of
// cryo's mounts it inherited.
func IsContainer(entries []*mnt.MntEntry) bool {
	return len(entries) > 0 && !entries[0].GetExtMount() && entries[0].GetMountpoint() == "/"
}

// Step is one mount of a namespace and how to make it.
type Step struct {
	Entry *mnt.MntEntry
	Kind  Kind
	// From is, for a bind mount, the path in the namespace that shows
	// what it shows (a mount of the same filesystem made before it).
	From string
	// Recursive: for an External mount, the bind is recursive, since
	// mounts of the host's beneath it came with it (WithExternal steps).
	Recursive bool
}

// Plan decides, in the order of entries (the namespace's mountinfo order,
// parents before children), how each mount is made again. It refuses what
// cryo cannot make: propagation other than private, filesystems other than
// tmpfs, proc, sysfs, devpts, mqueue and cgroup that are not bind mounts
// of a path made before or external, mounts whose parent comes later.
// Entries come from an image: paths are checked.
func Plan(entries []*mnt.MntEntry) ([]Step, error) {
	steps := make([]Step, 0, len(entries))
	seen := map[uint32]bool{}
	container := IsContainer(entries)
	// step: the index in steps of each mount id met.
	step := map[uint32]int{}
	for i, e := range entries {
		point, root := e.GetMountpoint(), e.GetRoot()
		if !cleanAbs(point) || !cleanAbs(root) {
			return nil, fmt.Errorf("mount %d: bad mount point %q or root %q", e.GetMntId(), point, root)
		}
		what := fmt.Sprintf("%s mount at %s", e.GetFsname(), point)
		if e.GetSharedId() != 0 || e.GetMasterId() != 0 {
			return nil, fmt.Errorf("%s: propagation (shared:%d master:%d) other than private is not supported yet", what, e.GetSharedId(), e.GetMasterId())
		}
		if seen[e.GetMntId()] {
			return nil, fmt.Errorf("%s: mount id %d twice", what, e.GetMntId())
		}
		seen[e.GetMntId()] = true
		step[e.GetMntId()] = len(steps)
		if container && i == 0 {
			steps = append(steps, Step{Entry: e, Kind: Root})
			continue
		}
		if e.GetExtMount() {
			if container {
				// Only beneath an external mount, whose bind brings it.
				at, ok := step[e.GetParentMntId()]
				if !ok || e.GetParentMntId() == e.GetMntId() || e.GetExtKey() != "" ||
					(steps[at].Kind != External && steps[at].Kind != WithExternal) || !Under(steps[at].Entry.GetMountpoint(), point) {
					return nil, fmt.Errorf("%s: a mount of cryo's in a container's namespace, not beneath an external mount", what)
				}
				for steps[at].Kind == WithExternal {
					at = step[steps[at].Entry.GetParentMntId()]
				}
				steps[at].Recursive = true
				steps = append(steps, Step{Entry: e, Kind: WithExternal})
				continue
			}
			steps = append(steps, Step{Entry: e, Kind: Inherited})
			continue
		}
		if i == 0 || !seen[e.GetParentMntId()] || e.GetParentMntId() == e.GetMntId() {
			return nil, fmt.Errorf("%s: its parent mount %d is not made before it", what, e.GetParentMntId())
		}
		if e.GetExtKey() != "" {
			steps = append(steps, Step{Entry: e, Kind: External})
			continue
		}
		from, sameFS := bindSource(entries[:i], e)
		if from != "" {
			steps = append(steps, Step{Entry: e, Kind: Bind, From: from})
			continue
		}
		if sameFS {
			return nil, fmt.Errorf("%s: a bind mount of %s, which no path in the namespace shows (overmounted, or outside the other mounts of its filesystem): not supported", what, root)
		}
		switch e.GetFstype() {
		case FstypeTmpfs:
			// Its contents are read and refilled through its mount point.
			for _, k := range entries[i+1:] {
				if _, under := within(k.GetMountpoint(), point); under {
					return nil, fmt.Errorf("%s: covered by the %s mount at %s: not supported", what, k.GetFsname(), k.GetMountpoint())
				}
			}
			steps = append(steps, Step{Entry: e, Kind: NewTmpfs})
		case FstypeProc:
			steps = append(steps, Step{Entry: e, Kind: NewProc})
		case FstypeSysfs, FstypeDevpts, FstypeMqueue, FstypeCgroup2:
			steps = append(steps, Step{Entry: e, Kind: NewFS})
		case FstypeCgroup:
			if root != "/" {
				return nil, fmt.Errorf("%s: part %s of a cgroup v1 hierarchy, not given as external (ext_mnt): not supported", what, root)
			}
			steps = append(steps, Step{Entry: e, Kind: NewFS})
		default:
			return nil, fmt.Errorf("%s (source %s): only tmpfs, proc, sysfs, devpts, mqueue, cgroup, external mounts and bind mounts of paths in the namespace are supported", what, e.GetSource())
		}
	}
	return steps, nil
}

// bindSource finds, among the mounts made before e, one of the same
// filesystem whose root contains e's root and that is still reachable at
// its path, and returns the path of e's root through it; sameFS tells
// whether an earlier mount was of the same filesystem at all.
func bindSource(before []*mnt.MntEntry, e *mnt.MntEntry) (from string, sameFS bool) {
	for j, c := range before {
		if c.GetRootDev() != e.GetRootDev() {
			continue
		}
		sameFS = true
		rel, ok := within(c.GetRoot(), e.GetRoot())
		if !ok {
			continue
		}
		from := path.Join(c.GetMountpoint(), rel)
		covered := false
		for _, k := range before[j+1:] {
			if _, under := within(k.GetMountpoint(), from); under {
				covered = true // the path goes through a later mount
				break
			}
		}
		if !covered {
			return from, true
		}
	}
	return "", sameFS
}

// Under reports whether path p is dir or below it.
func Under(dir, p string) bool {
	_, ok := within(dir, p)
	return ok
}

// within reports whether p is dir or below it, and p relative to dir.
func within(dir, p string) (string, bool) {
	if dir == "/" {
		return strings.TrimPrefix(p, "/"), true
	}
	if p == dir {
		return "", true
	}
	if strings.HasPrefix(p, dir+"/") {
		return p[len(dir)+1:], true
	}
	return "", false
}

func cleanAbs(p string) bool {
	return strings.HasPrefix(p, "/") && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}
