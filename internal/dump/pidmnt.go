package dump

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// MountpointsName is CRIU's image of a mount namespace's mounts.
func MountpointsName(id uint32) string { return fmt.Sprintf("mountpoints-%d.img", id) }

// nsGetUserns is NS_GET_USERNS: the user namespace owning a namespace.
const nsGetUserns = 0xb701

// ownerUserns returns the inode of the user namespace owning pid's
// namespace of one kind.
func ownerUserns(pid int, kind string) (uint64, error) {
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

// innerPids reads the ids a process and its threads have in their own pid
// namespace, one level below cryo's (NSpid's last field).
func (p *process) innerPids() error {
	st, err := proc.ReadStatus(p.pid)
	if err != nil {
		return err
	}
	if len(st.NSpid) != 2 {
		return fmt.Errorf("process %d: pid namespaces nested %d deep: only one level below cryo's is supported", p.pid, len(st.NSpid)-1)
	}
	p.nsPid = uint32(st.NSpid[1])
	p.nsTids = map[int]uint32{}
	for _, t := range p.threads {
		ts, err := proc.ReadTaskStatus(p.pid, t.Tid)
		if err != nil {
			return err
		}
		if len(ts.NSpid) != 2 {
			return fmt.Errorf("process %d thread %d: NSpid %v", p.pid, t.Tid, ts.NSpid)
		}
		p.nsTids[t.Tid] = uint32(ts.NSpid[1])
	}
	return nil
}

// mountInfo is one line of /proc/PID/mountinfo.
type mountInfo struct {
	id, parent      uint32
	dev             string
	root, point     string
	opts            string
	fstype, source  string
	superOpts       string
	shared, private bool
}

func readMountinfo(pid int) ([]mountInfo, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	var out []mountInfo
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		sep := -1
		for i, x := range f {
			if x == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 6 || sep+3 > len(f) {
			return nil, fmt.Errorf("/proc/%d/mountinfo: %q", pid, sc.Text())
		}
		id, _ := strconv.ParseUint(f[0], 10, 32)
		parent, _ := strconv.ParseUint(f[1], 10, 32)
		m := mountInfo{id: uint32(id), parent: uint32(parent), dev: f[2], root: f[3], point: f[4], opts: f[5],
			fstype: f[sep+1], source: f[sep+2]}
		if sep+3 < len(f) {
			m.superOpts = f[sep+3]
		}
		for _, o := range f[6:sep] {
			m.shared = m.shared || strings.HasPrefix(o, "shared:")
		}
		out = append(out, m)
	}
	return out, nil
}

func (m mountInfo) key() string {
	return m.point + "\x00" + m.fstype + "\x00" + m.source + "\x00" + m.root
}

// mountNs describes a mount namespace of the tree as cryo's own plus new
// proc mounts (what unshare --mount-proc makes); other differences are
// refused.
func mountNs(pid int, own []mountInfo) ([]*mnt.MntEntry, error) {
	theirs, err := readMountinfo(pid)
	if err != nil {
		return nil, err
	}
	left := map[string]int{}
	for _, m := range own {
		left[m.key()]++
	}
	var out []*mnt.MntEntry
	for _, m := range theirs {
		ext := left[m.key()] > 0
		if ext {
			left[m.key()]--
		} else if m.fstype != "proc" {
			return nil, fmt.Errorf("process %d: its mount namespace has a %s mount at %s that cryo's has not: only new proc mounts are supported yet", pid, m.fstype, m.point)
		}
		fstype := uint32(0)
		if m.fstype == "proc" {
			fstype = 1
		}
		var maj, min uint32
		fmt.Sscanf(m.dev, "%d:%d", &maj, &min)
		out = append(out, &mnt.MntEntry{
			Fstype: proto.Uint32(fstype), MntId: proto.Uint32(m.id), RootDev: proto.Uint32(maj<<20 | min),
			ParentMntId: proto.Uint32(m.parent), Flags: proto.Uint32(mountFlags(m.opts)), Root: proto.String(m.root),
			Mountpoint: proto.String(m.point), Source: proto.String(m.source), Options: proto.String(m.superOpts),
			ExtMount: proto.Bool(ext), Fsname: proto.String(m.fstype),
		})
	}
	var missing []string
	for k, n := range left {
		if n > 0 {
			missing = append(missing, strings.SplitN(k, "\x00", 2)[0])
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, fmt.Errorf("process %d: its mount namespace lacks mounts of cryo's (%s): not supported yet", pid, missing[0])
	}
	return out, nil
}

// mountFlags turns mountinfo's per-mount options into MS_* flags.
func mountFlags(opts string) uint32 {
	var f uint32
	for _, o := range strings.Split(opts, ",") {
		switch o {
		case "ro":
			f |= unix.MS_RDONLY
		case "nosuid":
			f |= unix.MS_NOSUID
		case "nodev":
			f |= unix.MS_NODEV
		case "noexec":
			f |= unix.MS_NOEXEC
		case "relatime":
			f |= unix.MS_RELATIME
		case "noatime":
			f |= unix.MS_NOATIME
		}
	}
	return f
}
