package proc

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// CgroupDir returns the directory of process pid's cgroup in the hierarchy
// of controller ("" for the cgroup v2 hierarchy, or a v1 controller such
// as "memory" or "freezer"), found through cryo's own mounts
// (/proc/self/mountinfo); "" if that hierarchy is not mounted where cryo
// sees it.
func CgroupDir(pid int, controller string) string {
	cgs, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return ""
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(cgs), "\n") {
		// "0::/path" (v2) or "N:ctl1,ctl2:/path" (v1).
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if controller == "" && f[1] != "" || controller != "" && !strings.Contains(","+f[1]+",", ","+controller+",") {
			continue
		}
		for _, m := range strings.Split(string(mounts), "\n") {
			// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [TAGS] - FSTYPE SRC SUPER
			pre, post, ok := strings.Cut(m, " - ")
			mf, pf := strings.Fields(pre), strings.Fields(post)
			if !ok || len(mf) < 5 || len(pf) < 3 {
				continue
			}
			if controller == "" && pf[0] != "cgroup2" ||
				controller != "" && (pf[0] != "cgroup" || !strings.Contains(","+pf[2]+",", ","+controller+",")) {
				continue
			}
			rel, ok := strings.CutPrefix(f[2], strings.TrimSuffix(mf[3], "/"))
			if !ok {
				continue
			}
			dir := strings.TrimSuffix(mf[4], "/") + "/" + strings.TrimPrefix(rel, "/")
			if _, err := os.Stat(dir); err == nil {
				return strings.TrimSuffix(dir, "/")
			}
		}
	}
	return ""
}

// FrozenCgroup returns the directory of the frozen cgroup process pid is
// in (cgroup v2 cgroup.freeze, or the v1 freezer), or "" if none is found.
func FrozenCgroup(pid int) string {
	if dir := CgroupDir(pid, ""); dir != "" {
		if b, err := os.ReadFile(dir + "/cgroup.events"); err == nil && strings.Contains(string(b), "frozen 1") {
			return dir
		}
	}
	if dir := CgroupDir(pid, "freezer"); dir != "" {
		if b, err := os.ReadFile(dir + "/freezer.state"); err == nil && strings.TrimSpace(string(b)) != "THAWED" {
			return dir
		}
	}
	return ""
}

// MemcgRoom is how much more memory the memory cgroups of a process
// allow it: the least, over its cgroup and every ancestor with a limit,
// of limit - usage + the file cache the kernel can reclaim there (not
// shared memory).
type MemcgRoom struct {
	// Bytes is that room; Dir the cgroup that allows the least.
	Bytes uint64
	Dir   string
}

// MemcgHeadroom returns the room the memory cgroups of process pid leave
// (cgroup v2 memory.max, or the v1 memory controller's
// memory.limit_in_bytes); ok is false if no limit applies or none can be
// read.
func MemcgHeadroom(pid int) (room MemcgRoom, ok bool) {
	room.Bytes = math.MaxUint64
	type files struct{ limit, usage, stat, cache, shmem string }
	try := func(dir string, fs files) {
		for d := dir; ; {
			limit, err1 := readCgroupUint(d + "/" + fs.limit)
			usage, err2 := readCgroupUint(d + "/" + fs.usage)
			if err1 == nil && err2 == nil && limit < 1<<62 {
				free := uint64(0)
				if limit > usage {
					free = limit - usage
				}
				// File cache can be reclaimed, except shared memory
				// (tmpfs, MAP_SHARED anonymous) without swap.
				if c, sh := cgroupStat(d+"/"+fs.stat, fs.cache), cgroupStat(d+"/"+fs.stat, fs.shmem); c > sh {
					free += c - sh
				}
				if free < room.Bytes {
					room, ok = MemcgRoom{Bytes: free, Dir: d}, true
				}
			}
			i := strings.LastIndexByte(d, '/')
			if i <= 0 {
				return
			}
			d = d[:i]
			if _, err := os.Stat(d + "/" + fs.limit); err != nil {
				return
			}
		}
	}
	if dir := CgroupDir(pid, ""); dir != "" {
		try(dir, files{"memory.max", "memory.current", "memory.stat", "file", "shmem"})
	}
	if dir := CgroupDir(pid, "memory"); dir != "" {
		try(dir, files{"memory.limit_in_bytes", "memory.usage_in_bytes", "memory.stat", "total_cache", "total_shmem"})
	}
	return room, ok
}

// readCgroupUint reads a cgroup file holding one number ("max": no limit).
func readCgroupUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	s := strings.TrimSpace(string(b))
	if s == "max" {
		return math.MaxUint64, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// cgroupStat reads one field of a memory.stat file (0 if absent).
func cgroupStat(path, key string) uint64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, " "); ok && k == key {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}
