// Package userns knows user namespaces: their uid/gid maps, the
// conversion of ids between the host's view and a namespace's view, and
// their owner and parent, read through the namespace ioctls.
package userns

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Overflow is the id an unmapped id shows as inside a namespace
// (/proc/sys/kernel/overflowuid and overflowgid, 65534 by default).
const Overflow = 65534

// Map is a uid_map or gid_map as seen from the host (the initial user
// namespace): Inside ids of the namespace and the Outside ids they are.
// The empty Map stands for the initial namespace itself: the identity.
type Map []proc.IDMapEntry

// ToInside converts a host id to the namespace's view; unmapped ids become
// Overflow, as the kernel shows them.
func (m Map) ToInside(host uint32) uint32 {
	if len(m) == 0 {
		return host
	}
	for _, e := range m {
		if host >= e.Outside && host-e.Outside < e.Count {
			return e.Inside + (host - e.Outside)
		}
	}
	return Overflow
}

// ToHost converts an id of the namespace to the host's view.
func (m Map) ToHost(inside uint32) (uint32, bool) {
	if len(m) == 0 {
		return inside, true
	}
	for _, e := range m {
		if inside >= e.Inside && inside-e.Inside < e.Count {
			return e.Outside + (inside - e.Inside), true
		}
	}
	return 0, false
}

// Namespace ioctls (linux/nsfs.h).
const (
	nsGetUserns   = 0xb701
	nsGetParent   = 0xb702
	nsGetOwnerUID = 0xb704
)

// Info is what cryo records of a user namespace.
type Info struct {
	Inode     uint64
	Parent    uint64 // inode of the parent namespace
	Owner     uint32 // host uid of the creator
	UIDMap    Map
	GIDMap    Map
	Setgroups string // "allow" or "deny"
}

// Read describes the user namespace of process pid.
func Read(pid int) (*Info, error) {
	path := fmt.Sprintf("/proc/%d/ns/user", pid)
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("user namespace of %d: %w", pid, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	info := &Info{Inode: st.Ino}
	owner, err := unix.IoctlGetUint32(fd, nsGetOwnerUID)
	if err != nil {
		return nil, fmt.Errorf("owner of the user namespace of %d: %w", pid, err)
	}
	info.Owner = owner
	// EPERM: the parent is outside the caller's namespace (the initial
	// namespace has none).
	parent, err := unix.IoctlRetInt(fd, nsGetParent)
	switch {
	case err == nil:
		if err := unix.Fstat(parent, &st); err == nil {
			info.Parent = st.Ino
		}
		unix.Close(parent)
	case err != unix.EPERM:
		return nil, fmt.Errorf("parent of the user namespace of %d: %w", pid, err)
	}
	u, err := proc.UIDMap(pid)
	if err != nil {
		return nil, err
	}
	g, err := proc.GIDMap(pid)
	if err != nil {
		return nil, err
	}
	info.UIDMap, info.GIDMap = u, g
	if info.Setgroups, err = proc.SetgroupsPolicy(pid); err != nil {
		return nil, err
	}
	return info, nil
}

// FormatMap renders a map the way uid_map is written.
func FormatMap(m Map) string {
	s := ""
	for _, e := range m {
		s += fmt.Sprintf("%d %d %d\n", e.Inside, e.Outside, e.Count)
	}
	return s
}

// OwnerOf returns the inode of the user namespace owning pid's namespace of
// one kind ("pid", "ipc", ...). EPERM: the owner is outside the caller's
// user namespace (an ancestor of it).
func OwnerOf(pid int, kind string) (uint64, error) {
	fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	u, err := unix.IoctlRetInt(fd, nsGetUserns)
	if err != nil {
		return 0, err
	}
	defer unix.Close(u)
	var st unix.Stat_t
	if err := unix.Fstat(u, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}
