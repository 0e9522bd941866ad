package restore

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A ghost file of a root restore exists under a name only between the
// moment cryo links it into its directory and the moment the tree holds
// it (removeGhosts). A cryo killed in between (SIGKILL, the OOM killer)
// cannot remove it. So every ghost is made nameless (O_TMPFILE), marked
// with the extended attribute ghostMarkXattr naming the cryo run that
// made it, filled, and only then given its name: whenever the name exists
// the mark is there. A later restore that finds a file at a ghost's name
// removes it if the mark names a cryo run that no longer exists (the
// file is then a leftover of a killed restore: the deleted file's saved
// contents, which the images still hold) and makes its own.
//
// The mark lives in the "trusted" namespace: only a process with
// CAP_SYS_ADMIN can set or read it, so a user cannot plant a file that
// cryo would take for its own and remove.

// ghostMarkXattr is the extended attribute marking a ghost file that a
// cryo restore made.
const ghostMarkXattr = "trusted.cryo.ghost"

// runMark identifies this cryo run: boot, pid and start time, so that no
// other run (before or after a reboot) has the same.
func runMark() (string, error) {
	boot, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	pid := os.Getpid()
	start, err := processStart(pid)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("boot=%s pid=%d start=%d", strings.TrimSpace(string(boot)), pid, start), nil
}

// processStart reads a process's start time (field 22 of
// /proc/PID/stat, in clock ticks since boot).
func processStart(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if i < 0 || len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: cannot parse", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// markGone tells whether the cryo run a mark names no longer exists.
func markGone(mark string) bool {
	var boot string
	var pid int
	var start uint64
	if n, _ := fmt.Sscanf(mark, "boot=%s pid=%d start=%d", &boot, &pid, &start); n != 3 {
		return false // not a mark of this format: not ours to judge
	}
	cur, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return false
	}
	if strings.TrimSpace(string(cur)) != boot {
		return true
	}
	now, err := processStart(pid)
	return err != nil || now != start
}

// removeLeftoverGhost removes name in directory dir (cryo's descriptor)
// if it is a ghost file that a cryo run which no longer exists made and
// could not remove: a regular file with one link carrying ghostMarkXattr.
// It reports whether it removed it, and the mark.
func removeLeftoverGhost(dir int, name string) (bool, string, error) {
	fd, err := unix.Openat2(dir, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NOFOLLOW | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return false, "", nil // a symbolic link, a socket, gone...: not a ghost of cryo's
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Nlink != 1 {
		return false, "", nil
	}
	buf := make([]byte, 256)
	n, err := unix.Fgetxattr(fd, ghostMarkXattr, buf)
	if err != nil {
		return false, "", nil
	}
	mark := string(buf[:n])
	if !markGone(mark) {
		return false, mark, nil
	}
	var now unix.Stat_t
	if err := unix.Fstatat(dir, name, &now, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return false, mark, nil
	}
	if now.Dev != st.Dev || now.Ino != st.Ino {
		return false, mark, nil // replaced meanwhile: left alone
	}
	if err := unix.Unlinkat(dir, name, 0); err != nil {
		return false, mark, err
	}
	return true, mark, nil
}

// linkGhost gives the nameless ghost file (cryo's descriptor file) its
// name in directory dir: base, or base.cryo-ghost-ID if something else
// holds that name. A leftover of a killed restore at either name is
// removed first (removeLeftoverGhost). It returns the name given.
func (fp *filePlan) linkGhost(file, dir int, where, base string, id uint32, logf func(string, ...any)) (string, error) {
	var err error
	for _, try := range []string{base, fmt.Sprintf("%s.cryo-ghost-%d", base, id)} {
		for attempt := 0; attempt < 2; attempt++ {
			err = unix.Linkat(file, "", dir, try, unix.AT_EMPTY_PATH)
			if !errors.Is(err, unix.EEXIST) || attempt > 0 {
				break
			}
			removed, mark, rerr := removeLeftoverGhost(dir, try)
			if rerr != nil {
				logf("warning: %s%s: a leftover of a killed restore (%s) could not be removed: %v", where, try, mark, rerr)
			}
			if !removed {
				break
			}
			logf("removed %s%s, a deleted file that a killed restore (%s) put back and could not remove", where, try, mark)
		}
		if !errors.Is(err, unix.EEXIST) {
			return try, err
		}
	}
	return "", err
}
