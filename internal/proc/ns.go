package proc

import (
	"bytes"
	"fmt"
	"strings"
)

// NsInode returns the inode number identifying the namespace ns ("user",
// "pid", "mnt", "net", "pid_for_children", ...) of pid, from the
// /proc/PID/ns/<ns> link target "type:[inode]". Two processes share a
// namespace iff the inodes (on the nsfs device) are equal.
func NsInode(pid int, ns string) (uint64, error) {
	path := pidPath(pid, "ns/"+ns)
	target, err := readLink(path)
	if err != nil {
		return 0, err
	}
	ino, err := ParseNsLink(target)
	if err != nil {
		return 0, parseError(path, err)
	}
	return ino, nil
}

// ParseNsLink extracts the inode from a namespace link target such as
// "user:[4026531837]". The type prefix is not checked against the link
// name because the *_for_children links print the base type ("pid:[...]").
func ParseNsLink(target string) (uint64, error) {
	i := strings.Index(target, ":[")
	if i < 0 || !strings.HasSuffix(target, "]") || len(target) < i+3 {
		return 0, fmt.Errorf("unexpected namespace link %q", target)
	}
	return parseUint([]byte(target[i+2:len(target)-1]), 10)
}

// IDMapEntry is one line of uid_map or gid_map: Count ids starting at Inside
// in the process's user namespace map to ids starting at Outside in the
// namespace of the reader.
type IDMapEntry struct{ Inside, Outside, Count uint32 }

// UIDMap reads /proc/PID/uid_map. The Outside column is relative to the
// user namespace of the reading process, so read it from the initial one.
func UIDMap(pid int) ([]IDMapEntry, error) { return readIDMap(pidPath(pid, "uid_map")) }

// GIDMap reads /proc/PID/gid_map; see UIDMap.
func GIDMap(pid int) ([]IDMapEntry, error) { return readIDMap(pidPath(pid, "gid_map")) }

func readIDMap(path string) ([]IDMapEntry, error) {
	var m []IDMapEntry
	err := withFile(path, func(b []byte) error {
		var err error
		m, err = ParseIDMap(b)
		return err
	})
	return m, err
}

// ParseIDMap parses uid_map/gid_map content. An empty file (a user namespace
// whose map was never written) yields an empty slice.
func ParseIDMap(b []byte) ([]IDMapEntry, error) {
	var out []IDMapEntry
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(trimSpace(line)) == 0 {
			continue
		}
		var v [3]uint32
		rest := line
		for i := range v {
			var f []byte
			f, rest = nextField(rest)
			n, err := parseUint32(f, 10)
			if err != nil {
				return nil, fmt.Errorf("line %q: %w", line, err)
			}
			v[i] = n
		}
		if len(trimSpace(rest)) != 0 {
			return nil, fmt.Errorf("line %q: trailing data", line)
		}
		out = append(out, IDMapEntry{Inside: v[0], Outside: v[1], Count: v[2]})
	}
	return out, nil
}

// SetgroupsPolicy returns the content of /proc/PID/setgroups: "allow" or
// "deny".
func SetgroupsPolicy(pid int) (string, error) {
	path := pidPath(pid, "setgroups")
	var s string
	err := withFile(path, func(b []byte) error {
		b = trimSpace(b)
		if !bytes.Equal(b, []byte("allow")) && !bytes.Equal(b, []byte("deny")) {
			return fmt.Errorf("unexpected value %q", b)
		}
		s = string(b)
		return nil
	})
	return s, err
}
