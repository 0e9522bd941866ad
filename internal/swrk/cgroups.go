package swrk

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
)

// cgroups takes manage_cgroups, its mode and cg_root as CRIU defines
// them, as far as cryo honours them: the restored tree is put in the
// cgroups of cryo's own process, which its caller chose (runc moves the
// engine into the container's cgroups before a restore), and no cgroup is
// made. Mode ignore is honoured, soft (and default, which is soft) too for
// a caller that places cryo; full and strict save the cgroups' limits on
// dump, and set or check them on restore (cgprops.go). Each cg_root must
// be where cryo is already. The mode is kept in s.cgMode; a mode or
// cg_root cryo cannot honour is returned as the refusal's text.
func (s *session) cgroups(kind rpc.CriuReqType, o *rpc.CriuOpts, note func(string, ...any)) error {
	s.cgMode = rpc.CriuCgMode_IGNORE
	if !o.GetManageCgroups() && o.ManageCgroupsMode == nil && len(o.GetCgRoot()) == 0 {
		return nil
	}
	mode := rpc.CriuCgMode_DEFAULT
	if o.ManageCgroupsMode != nil {
		mode = o.GetManageCgroupsMode()
	}
	name := strings.ToLower(mode.String())
	dumping := kind != rpc.CriuReqType_RESTORE
	switch mode {
	case rpc.CriuCgMode_IGNORE:
		note("manage_cgroups mode ignore: the tree is restored in cryo's cgroups")
	case rpc.CriuCgMode_SOFT, rpc.CriuCgMode_DEFAULT:
		note("manage_cgroups mode %s: the tree is restored in the cgroups cryo is in, which its caller chose; no cgroup is made and no property set", name)
	case rpc.CriuCgMode_CG_NONE:
		// CRIU's none: no property set, the cgroups must exist, which
		// cryo's own do.
		note("manage_cgroups mode none: the tree is restored in the cgroups cryo is in; no property set")
		mode = rpc.CriuCgMode_SOFT
	case rpc.CriuCgMode_FULL, rpc.CriuCgMode_PROPS:
		// CRIU's props is full for cgroups that exist, and cryo's do.
		note("manage_cgroups mode %s: the cgroups' limits are saved by a dump, and set again in cryo's cgroups (which its caller chose) by a restore", name)
		mode = rpc.CriuCgMode_FULL
	case rpc.CriuCgMode_STRICT:
		note("manage_cgroups mode strict: the cgroups' limits are saved by a dump, and a restore refuses cgroups whose limits differ")
	default:
		return fmt.Errorf("manage_cgroups mode %s: not a mode cryo knows (ignore, soft, full, strict)", name)
	}
	s.cgMode = mode
	if dumping {
		for _, r := range o.GetCgRoot() {
			note("cg_root %s=%s: the dump saves the tree's own cgroups", r.GetCtrl(), r.GetPath())
		}
		return nil
	}
	if len(o.GetCgRoot()) == 0 {
		return nil
	}
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return fmt.Errorf("cg_root: cryo's cgroups: %v", err)
	}
	for _, r := range o.GetCgRoot() {
		if err := inCgroup(string(own), r.GetCtrl(), r.GetPath()); err != nil {
			return err
		}
		note("cg_root %q=%s: cryo, and so the tree, is there", r.GetCtrl(), r.GetPath())
	}
	return nil
}

// inCgroup checks that /proc/self/cgroup (own) puts cryo in path for
// controller ctrl: "" is cgroup v2's line, a name like cpu or name=systemd
// one of v1's; an unset controller (crun) means every line.
func inCgroup(own, ctrl, path string) error {
	found := false
	for _, line := range strings.Split(strings.TrimSpace(own), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ctrl != "" && !slices.Contains(strings.Split(parts[1], ","), ctrl) {
			continue
		}
		if ctrl == "" && parts[1] != "" {
			continue
		}
		found = true
		if parts[2] != path {
			return fmt.Errorf("cg_root %s=%s: cryo is in %s of that hierarchy, and the tree is restored in cryo's cgroups: move cryo there first, as runc does", ctrlName(ctrl), path, parts[2])
		}
	}
	if !found {
		return fmt.Errorf("cg_root %s=%s: no such cgroup hierarchy here", ctrlName(ctrl), path)
	}
	return nil
}

// ctrlName spells a cg_root controller for an error.
func ctrlName(ctrl string) string {
	if ctrl == "" {
		return "(v2)"
	}
	return ctrl
}
