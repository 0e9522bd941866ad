package restore

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cryo-cr/cryo/internal/image"

	"golang.org/x/sys/unix"
)

// CheckImagesTrusted refuses, when root restores, an images directory that
// a normal user could have written: the images decide what root creates
// (the uid maps of user namespaces, the credentials and capabilities of
// every process, the files it makes), so whoever can write them could make
// root give them what they never had. The directory must be root's and
// writable by nobody else, every file in it root's and writable by nobody
// else, and every directory above it root's, writable by nobody else or
// sticky (as /tmp: nobody else may then rename the root-owned entry
// beneath it). trusted (--trust-images) skips the check: the caller vouches
// for the images. A normal user's restore of their own images is not
// checked: the kernel gives them nothing they do not have. Nor is one by
// root of a user namespace of a user's (rootless podman runs its engine
// there), whose capabilities reach no further than that user's.
func CheckImagesTrusted(dir string, trusted bool) error {
	if trusted || os.Geteuid() != 0 || !initialUserns() {
		return nil
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return fmt.Errorf("images directory %s: %w", dir, err)
	}
	real, err = filepath.Abs(real)
	if err != nil {
		return fmt.Errorf("images directory %s: %w", dir, err)
	}
	const hint = "root restores only images no normal user could have written (--trust-images to vouch for them)"
	bad := func(path string, st *unix.Stat_t, isDir, sticky bool) string {
		switch {
		case !isDir && st.Mode&unix.S_IFMT != unix.S_IFREG:
			return fmt.Sprintf("%s is not a regular file", path)
		case st.Uid != 0:
			return fmt.Sprintf("%s is owned by uid %d", path, st.Uid)
		case st.Mode&unix.S_IWOTH != 0 && !(sticky && st.Mode&unix.S_ISVTX != 0):
			return fmt.Sprintf("%s is writable by every user", path)
		case st.Mode&unix.S_IWGRP != 0 && st.Gid != 0 && !(sticky && st.Mode&unix.S_ISVTX != 0):
			return fmt.Sprintf("%s is writable by group %d", path, st.Gid)
		}
		return ""
	}
	var st unix.Stat_t
	if err := unix.Lstat(real, &st); err != nil {
		return fmt.Errorf("images directory %s: %w", dir, err)
	}
	if why := bad(real, &st, true, false); why != "" {
		return fmt.Errorf("images directory %s: %s: %s", dir, why, hint)
	}
	for p := filepath.Dir(real); ; p = filepath.Dir(p) {
		if err := unix.Lstat(p, &st); err != nil {
			return fmt.Errorf("images directory %s: %s: %w", dir, p, err)
		}
		if why := bad(p, &st, true, true); why != "" {
			return fmt.Errorf("images directory %s: %s: %s", dir, why, hint)
		}
		if p == "/" {
			break
		}
	}
	entries, err := os.ReadDir(real)
	if err != nil {
		return fmt.Errorf("images directory %s: %w", dir, err)
	}
	for _, e := range entries {
		path := filepath.Join(real, e.Name())
		if err := unix.Lstat(path, &st); err != nil {
			return fmt.Errorf("images directory %s: %w", dir, err)
		}
		if e.Name() == image.ParentName && st.Mode&unix.S_IFMT == unix.S_IFLNK && st.Uid == 0 {
			// An incremental dump's link to its parent: followed only
			// to a sibling directory, itself checked (parentchain.go).
			continue
		}
		if why := bad(path, &st, st.Mode&unix.S_IFMT == unix.S_IFDIR, false); why != "" {
			return fmt.Errorf("images directory %s: %s: %s", dir, why, hint)
		}
	}
	return nil
}

// initialUserns reports whether cryo runs in the initial user namespace,
// whose uid map is the identity over every id (or cannot be read).
func initialUserns() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err != nil || identityMap(string(b))
}

// identityMap reports whether uid_map text maps every id to itself.
func identityMap(m string) bool {
	f := strings.Fields(m)
	return len(f) == 3 && f[0] == "0" && f[1] == "0" && f[2] == "4294967295"
}
