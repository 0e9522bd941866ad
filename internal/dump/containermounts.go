package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/mountns"
	"google.golang.org/protobuf/proto"
)

// containerMountNs describes the mount namespace of a container (its root
// mount is not cryo's: runc pivoted it to the bundle's rootfs). Every
// mount is the namespace's own: the root, made again from the restore's
// root directory; those ext names by mount point, recorded as external
// under the key ext gives (runc names its bind mounts and cgroup v1
// mounts so), with the mounts of cryo's namespace that came along with a
// recursive bind of one (mountns.CameWithExternal); and filesystems cryo
// mounts afresh (mountns.Plan).
func containerMountNs(pid int, theirs, own []mountns.Mount, ext map[string]string) ([]*mnt.MntEntry, []mountns.Step, error) {
	out := make([]*mnt.MntEntry, 0, len(theirs))
	with := mountns.CameWithExternal(theirs, own, ext)
	for i, m := range theirs {
		// Mounts that came with the recursive bind of an external mount
		// are marked as the host's (ext_mount): the restore's recursive
		// bind brings them again.
		e := mntEntry(m, with[m.ID])
		// The kinds mounted afresh are named by their code, which restore
		// trusts rather than the name.
		e.Fstype = proto.Uint32(mountns.Fstype(m.FSType))
		if key, ok := ext[m.Point]; ok && i > 0 && !with[m.ID] {
			if key == "" {
				return nil, nil, fmt.Errorf("process %d: external mount %s: empty key", pid, m.Point)
			}
			e.ExtKey = proto.String(key)
		}
		out = append(out, e)
	}
	steps, err := mountns.Plan(out)
	if err != nil {
		return nil, nil, fmt.Errorf("process %d: container mount namespace: %w", pid, err)
	}
	return out, steps, nil
}
