package swrk

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"github.com/cryo-cr/cryo/internal/image"
	"google.golang.org/protobuf/proto"
)

// manage_cgroups modes full and strict: the cgroup properties.
//
// CRIU saves the properties of the tree's cgroups in cgroup.img; with
// mode full a restore sets them again, and with strict it also requires
// the cgroups to be as the images say. cryo makes no cgroup: the tree is
// restored in the cgroups of cryo's process, which the engine made and
// moved cryo into (runc, from config.json). So, as far as cryo honours
// them:
//   - a dump with any mode but ignore saves, in cgroup.img, the root's
//     cgroup of each hierarchy (the set) and the limits below of each;
//   - a restore with mode full writes each saved limit that differs into
//     cryo's cgroup of that hierarchy, before the tree is made;
//   - a restore with mode strict sets nothing and refuses, naming every
//     limit that differs, as CRIU refuses cgroups it cannot make as
//     dumped;
//   - soft, the default, and ignore set nothing (the engine set them).
//
// Only the limits an engine sets from an OCI config are taken, from the
// images and into the host's cgroups: the images are untrusted input, and
// a cgroup file is no place for anything else.

// cgLimits are the cgroup files saved and restored, by controller (v1)
// and for cgroup v2 ("").
func cgLimits() map[string][]string {
	return map[string][]string{
		"memory": {"memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.swappiness"},
		"cpu":    {"cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us"},
		"cpuset": {"cpuset.cpus", "cpuset.mems"},
		"pids":   {"pids.max"},
		"":       {"memory.max", "memory.high", "memory.low", "cpu.max", "cpu.weight", "pids.max", "cpuset.cpus", "cpuset.mems"},
	}
}

// cgroupImage is the name of CRIU's cgroup image.
const cgroupImage = "cgroup.img"

// maxCgValue bounds a property's value read from the images.
const maxCgValue = 256

// cgHier is one cgroup hierarchy of this machine: its controllers ("" for
// v2) and where it is mounted in cryo's mount namespace.
type cgHier struct {
	ctrls []string
	mount string
}

// cgHierarchies reads the cgroup mounts of cryo's mount namespace (each
// hierarchy's mount of its root).
func cgHierarchies() ([]cgHier, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []cgHier
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		i := slices.Index(fields, "-")
		if i < 0 || len(fields) < i+4 || fields[3] != "/" {
			continue
		}
		var h cgHier
		switch fields[i+1] {
		case "cgroup2":
			h.ctrls = []string{""}
		case "cgroup":
			for _, o := range strings.Split(fields[i+3], ",") {
				// The controllers, and a named hierarchy's name=; not
				// the other options.
				notCtrl := strings.Contains(o, "=") || slices.Contains([]string{"rw", "ro", "noprefix", "clone_children", "xattr", "cpuset_v2_mode", "favordynmods"}, o)
				if strings.HasPrefix(o, "name=") || !notCtrl {
					h.ctrls = append(h.ctrls, o)
				}
			}
		default:
			continue
		}
		key := strings.Join(h.ctrls, ",")
		if seen[key] {
			continue
		}
		seen[key] = true
		h.mount = fields[4]
		out = append(out, h)
	}
	return out, sc.Err()
}

// cgMembership parses /proc/PID/cgroup: the path in each hierarchy, by
// its controllers as the kernel lists them ("" for v2).
func cgMembership(pid string) (map[string]string, error) {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "cgroup"))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out, nil
}

// cgDir is the directory of the cgroup at path in the hierarchy whose
// controllers are ctrls, or "" when it is not mounted here.
func cgDir(hs []cgHier, ctrls, path string) string {
	for _, h := range hs {
		if strings.Join(h.ctrls, ",") == ctrls {
			return filepath.Join(h.mount, filepath.Clean("/"+path))
		}
	}
	return ""
}

// readCgroupProps reads the cgroups of process pid and their limits, as
// cgroup.img holds them.
func readCgroupProps(pid int) (*cgroup.CgroupEntry, error) {
	hs, err := cgHierarchies()
	if err != nil {
		return nil, fmt.Errorf("manage_cgroups: cgroup mounts: %w", err)
	}
	member, err := cgMembership(fmt.Sprint(pid))
	if err != nil {
		return nil, fmt.Errorf("manage_cgroups: cgroups of process %d: %w", pid, err)
	}
	set := &cgroup.CgSetEntry{Id: proto.Uint32(1)}
	e := &cgroup.CgroupEntry{Sets: []*cgroup.CgSetEntry{set}}
	keys := make([]string, 0, len(member))
	for k := range member {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	limits := cgLimits()
	for _, ctrls := range keys {
		path := member[ctrls]
		set.Ctls = append(set.Ctls, &cgroup.CgMemberEntry{Name: proto.String(ctrls), Path: proto.String(path)})
		dir := cgDir(hs, ctrls, path)
		if dir == "" {
			continue
		}
		d := &cgroup.CgroupDirEntry{DirName: proto.String(strings.TrimPrefix(path, "/"))}
		for _, c := range strings.Split(ctrls, ",") {
			for _, name := range limits[c] {
				b, err := os.ReadFile(filepath.Join(dir, name))
				if err != nil {
					continue // not in this kernel, or not enabled in this cgroup
				}
				d.Properties = append(d.Properties, &cgroup.CgroupPropEntry{Name: proto.String(name), Value: proto.String(strings.TrimSpace(string(b)))})
			}
		}
		e.Controllers = append(e.Controllers, &cgroup.CgControllerEntry{Cnames: strings.Split(ctrls, ","), Dirs: []*cgroup.CgroupDirEntry{d}})
	}
	return e, nil
}

// writeCgroupImage saves e as cgroup.img in the images directory.
func writeCgroupImage(dir string, e *cgroup.CgroupEntry) error {
	d, err := image.Open(dir)
	if err != nil {
		return err
	}
	return d.Write(cgroupImage, "CGROUP", e)
}

// cgDiff is one saved limit and the value cryo's cgroup has.
type cgDiff struct {
	ctrls, file, dir, saved, now string
}

// restoreCgroupProps applies mode full or strict to the images in dir:
// it compares the saved limits with cryo's cgroups, and with full writes
// those that differ; with strict a difference is the error. It returns
// what it did, for the log.
func restoreCgroupProps(dir string, mode rpc.CriuCgMode) (string, error) {
	name := strings.ToLower(mode.String())
	d, err := image.Open(dir)
	if err != nil {
		return "", err
	}
	var e cgroup.CgroupEntry
	if err := d.ReadOne(cgroupImage, "CGROUP", &e); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("manage_cgroups mode %s: the images hold no cgroup properties (%s): dump with manage_cgroups, or restore with mode soft", name, cgroupImage)
		}
		return "", fmt.Errorf("manage_cgroups mode %s: %w", name, err)
	}
	hs, err := cgHierarchies()
	if err != nil {
		return "", fmt.Errorf("manage_cgroups: cgroup mounts: %w", err)
	}
	own, err := cgMembership("self")
	if err != nil {
		return "", fmt.Errorf("manage_cgroups: cryo's cgroups: %w", err)
	}
	limits := cgLimits()
	var diffs []cgDiff
	same := 0
	for _, c := range e.GetControllers() {
		ctrls := strings.Join(c.GetCnames(), ",")
		path, ok := own[ctrls]
		if !ok {
			return "", fmt.Errorf("manage_cgroups mode %s: the images' cgroup hierarchy %q is not on this machine", name, ctrls)
		}
		cdir := cgDir(hs, ctrls, path)
		if cdir == "" {
			return "", fmt.Errorf("manage_cgroups mode %s: cgroup hierarchy %q is not mounted here", name, ctrls)
		}
		if len(c.GetDirs()) != 1 {
			return "", fmt.Errorf("manage_cgroups mode %s: cgroup.img: %d directories for %q, one expected", name, len(c.GetDirs()), ctrls)
		}
		for _, p := range c.GetDirs()[0].GetProperties() {
			file, val := p.GetName(), p.GetValue()
			allowed := false
			for _, cn := range c.GetCnames() {
				allowed = allowed || slices.Contains(limits[cn], file)
			}
			if !allowed || len(val) > maxCgValue || strings.ContainsAny(val, "\n\x00") {
				return "", fmt.Errorf("manage_cgroups mode %s: cgroup.img: property %q of %q is not one cryo restores", name, file, ctrls)
			}
			b, err := os.ReadFile(filepath.Join(cdir, file))
			if err != nil {
				return "", fmt.Errorf("manage_cgroups mode %s: %w", name, err)
			}
			if now := strings.TrimSpace(string(b)); now != val {
				diffs = append(diffs, cgDiff{ctrls: ctrls, file: file, dir: cdir, saved: val, now: now})
			} else {
				same++
			}
		}
	}
	if mode == rpc.CriuCgMode_STRICT {
		if len(diffs) > 0 {
			var say []string
			for _, d := range diffs {
				say = append(say, fmt.Sprintf("%s is %s, the images say %s", filepath.Join(d.dir, d.file), d.now, d.saved))
			}
			return "", fmt.Errorf("manage_cgroups mode strict: the cgroups the tree would be restored in differ from the dumped ones: %s", strings.Join(say, "; "))
		}
		return fmt.Sprintf("manage_cgroups mode strict: the %d saved cgroup limits match", same), nil
	}
	for _, d := range diffs {
		if err := os.WriteFile(filepath.Join(d.dir, d.file), []byte(d.saved), 0); err != nil {
			return "", fmt.Errorf("manage_cgroups mode full: set %s to %s: %w", filepath.Join(d.dir, d.file), d.saved, err)
		}
	}
	return fmt.Sprintf("manage_cgroups mode full: %d cgroup limits set again, %d already as dumped", len(diffs), same), nil
}
