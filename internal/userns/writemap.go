package userns

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// IDKind is one of a user namespace's two id maps, named by its file
// under /proc/PID. A constant, so that no caller can change what the
// package writes.
type IDKind string

// The two id maps.
const (
	UIDs IDKind = "uid_map"
	GIDs IDKind = "gid_map"
)

// File is the map's file under /proc/PID.
func (k IDKind) File() string { return string(k) }

// Helper is the set-id tool of package uidmap (shadow) that writes the map.
func (k IDKind) Helper() string {
	if k == GIDs {
		return "newgidmap"
	}
	return "newuidmap"
}

// helperDir is where the helpers are looked for when PATH lacks them.
const helperDir = "/usr/bin"

// WriteMap writes map m of the user namespace of process pid, which is a
// child of the caller's. Root writes it itself. The namespace's owner
// without privilege may write only its own id, alone (and its own gid only
// once setgroups is denied); anything else is written by the helper,
// which checks m against /etc/subuid or /etc/subgid.
func WriteMap(pid int, kind IDKind, m Map) error {
	text := FormatMap(m)
	if os.Geteuid() == 0 || kind.ownIDOnly(m) {
		return os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, kind.File()), []byte(text), 0)
	}
	helper, err := kind.FindHelper()
	if err != nil {
		return err
	}
	args := []string{strconv.Itoa(pid)}
	for _, e := range m {
		args = append(args, strconv.FormatUint(uint64(e.Inside), 10), strconv.FormatUint(uint64(e.Outside), 10),
			strconv.FormatUint(uint64(e.Count), 10))
	}
	cmd := exec.Command(helper, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		// The helper explains itself on stderr; one line of it is enough.
		why, _, _ := strings.Cut(strings.TrimSpace(out.String()), "\n")
		if why == "" {
			return fmt.Errorf("%s %s: %w", helper, strings.Join(args, " "), err)
		}
		return fmt.Errorf("%s %s: %w: %s", helper, strings.Join(args, " "), err, why)
	}
	return nil
}

// ownIDOnly tells whether m is the one line an unprivileged owner may
// write itself: its own effective id, once.
func (k IDKind) ownIDOnly(m Map) bool {
	own := uint32(os.Geteuid())
	if k == GIDs {
		own = uint32(os.Getegid())
	}
	return len(m) == 1 && m[0].Outside == own && m[0].Count == 1
}

// FindHelper finds the helper on PATH, else in helperDir.
func (k IDKind) FindHelper() (string, error) { return k.findHelper(helperDir) }

// findHelper finds the helper on PATH, else in dirs.
func (k IDKind) findHelper(dirs ...string) (string, error) {
	if path, err := exec.LookPath(k.Helper()); err == nil {
		return path, nil
	}
	for _, dir := range dirs {
		path := dir + "/" + k.Helper()
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s (package uidmap) is not on PATH nor in %s, and only it may map ids other than yours: %w",
		k.Helper(), strings.Join(dirs, ", "), fs.ErrNotExist)
}

// CheckSetgroups checks that the setgroups policy of pid's user namespace
// is want: a helper may have set it on its own (newgidmap denies it when
// only the caller's own gid is mapped).
func CheckSetgroups(pid int, want string) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/setgroups", pid))
	if err != nil {
		return err
	}
	if got := strings.TrimSpace(string(b)); got != want {
		return fmt.Errorf("setgroups is %q, want %q", got, want)
	}
	return nil
}
