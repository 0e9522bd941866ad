package mountns

import "path"

// CameWithExternal finds the mounts of a container's namespace that came with
// the recursive bind of one of its external mounts: a rootless runc
// container's /sys is an rbind of the host's, which brings the host's
// mounts beneath /sys along (its cgroup tmpfs and hierarchies), and a
// rootless restore can only bind it recursively again (the kernel refuses
// a plain bind of a mount with locked mounts beneath it). theirs is the
// namespace's mountinfo, own cryo's, ext the external mount points (CRIU's
// ext_mnt on dump). A mount counts when its parent is an external mount
// or one of these, and cryo's namespace has a mount of the same
// filesystem and root at the host path that corresponds to it. The result
// maps their ids to true.
func CameWithExternal(theirs, own []Mount, ext map[string]string) map[uint32]bool {
	with := map[uint32]bool{}
	// host: the path in cryo's namespace that an external mount, or a
	// mount that came with one, shows; point: their mount points.
	host, point := map[uint32]string{}, map[uint32]string{}
	for i, m := range theirs {
		if i == 0 {
			continue // the root
		}
		if hp, ok := host[m.Parent]; ok {
			if rel, under := within(point[m.Parent], m.Point); under {
				at := path.Join(hp, rel)
				if hasMount(own, at, m.Dev, m.Root) {
					with[m.ID], host[m.ID], point[m.ID] = true, at, m.Point
					continue
				}
			}
		}
		if _, ok := ext[m.Point]; !ok {
			continue
		}
		for _, o := range own {
			if o.Dev != m.Dev {
				continue
			}
			if rel, under := within(o.Root, m.Root); under {
				host[m.ID], point[m.ID] = path.Join(o.Point, rel), m.Point
				break
			}
		}
	}
	return with
}

// hasMount reports whether mounts has one at point of device dev and root
// root.
func hasMount(mounts []Mount, point string, dev uint32, root string) bool {
	for _, o := range mounts {
		if o.Point == point && o.Dev == dev && o.Root == root {
			return true
		}
	}
	return false
}
