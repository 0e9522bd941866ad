// Package mountns describes the mounts of a mount namespace as CRIU's
// MNTS image does, decides how each one can be made again (a mount of the
// host's that a new namespace inherits, a new tmpfs or proc, a bind mount
// of a path already there), and saves and refills a tmpfs's contents as
// CRIU's tmpfs-dev-N.tar.gz.img.
package mountns

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Mount is one line of /proc/PID/mountinfo.
type Mount struct {
	ID, Parent     uint32
	Dev            uint32 // the kernel's encoding: major<<20 | minor
	Root, Point    string
	Opts           string // per-mount options (rw,nosuid,...)
	FSType, Source string
	SuperOpts      string // the superblock's options
	Shared, Master uint32 // peer group ids; 0: none
}

// Read parses /proc/PID/mountinfo: the mounts of pid's mount namespace, as
// seen from its root.
func Read(pid int) ([]Mount, error) {
	b, err := proc.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse parses mountinfo text.
func Parse(b []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		m, err := parseLine(sc.Text())
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, sc.Err()
}

func parseLine(line string) (Mount, error) {
	f := strings.Fields(line)
	sep := -1
	for i, x := range f {
		if x == "-" {
			sep = i
			break
		}
	}
	if len(f) < 7 || sep < 6 || sep+3 > len(f) {
		return Mount{}, fmt.Errorf("mountinfo: malformed line %q", line)
	}
	id, err1 := strconv.ParseUint(f[0], 10, 32)
	parent, err2 := strconv.ParseUint(f[1], 10, 32)
	var maj, min uint32
	_, err3 := fmt.Sscanf(f[2], "%d:%d", &maj, &min)
	if err1 != nil || err2 != nil || err3 != nil {
		return Mount{}, fmt.Errorf("mountinfo: malformed line %q", line)
	}
	m := Mount{ID: uint32(id), Parent: uint32(parent), Dev: maj<<20 | min,
		Root: unescape(f[3]), Point: unescape(f[4]), Opts: f[5],
		FSType: f[sep+1], Source: unescape(f[sep+2])}
	if sep+3 < len(f) {
		m.SuperOpts = f[sep+3]
	}
	for _, o := range f[6:sep] {
		k, v, _ := strings.Cut(o, ":")
		n, _ := strconv.ParseUint(v, 10, 32)
		switch k {
		case "shared":
			m.Shared = uint32(n)
		case "master":
			m.Master = uint32(n)
		}
	}
	return m, nil
}

// unescape undoes mountinfo's octal escapes (\040 for a space, ...).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// mountFlags are mountinfo's per-mount options that are MS_* flags.
var mountFlags = map[string]uint32{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"relatime": unix.MS_RELATIME, "noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME,
}

// Flags turns mountinfo's per-mount options into MS_* flags.
func Flags(opts string) uint32 {
	var f uint32
	for _, o := range strings.Split(opts, ",") {
		f |= mountFlags[o]
	}
	return f
}
