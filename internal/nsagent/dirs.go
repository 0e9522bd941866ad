package nsagent

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// HoldDir makes the agent hold the directory that descriptor fd of
// process pid (in the agent's user namespace, traced by cryo) refers
// to, reopened O_PATH through /proc: no path name is resolved again. It
// returns the agent's descriptor, for RemoveDirAt.
func (a *Agent) HoldDir(pid, fd int) (uint64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	dfd, err := a.rp.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("agent %d: hold directory %d of process %d: %w", a.rp.Pid(), fd, pid, err)
	}
	return dfd, nil
}

// RemoveDirAt removes the directory name in the directory the agent holds
// at dfd (HoldDir), from inside the namespace, where the subordinate ids
// that own it are the agent's, once checked to still be inode dev:ino;
// then it closes dfd.
func (a *Agent) RemoveDirAt(dfd uint64, name string, dev, ino uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	defer a.rp.Call(unix.SYS_CLOSE, dfd)
	const statOff = unix.PathMax
	// statx: one layout on every architecture (newfstatat's differs).
	var st unix.Statx_t
	size := binary.Size(&st)
	if len(name) >= statOff {
		return fmt.Errorf("agent %d: name %q too long", a.rp.Pid(), name)
	}
	addr, err := a.rp.Put(0, append([]byte(name), 0))
	if err != nil {
		return err
	}
	stAddr, err := a.rp.Put(statOff, make([]byte, size))
	if err != nil {
		return err
	}
	if _, err := a.rp.Call(unix.SYS_STATX, dfd, addr, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_INO, stAddr); err != nil {
		return fmt.Errorf("agent %d: stat %s: %w", a.rp.Pid(), name, err)
	}
	b, err := a.rp.Get(statOff, size)
	if err != nil {
		return err
	}
	if err := binary.Read(bytes.NewReader(b), binary.NativeEndian, &st); err != nil {
		return err
	}
	if unix.Mkdev(st.Dev_major, st.Dev_minor) != dev || st.Ino != ino {
		return fmt.Errorf("%s is no longer the directory cryo made: left alone", name)
	}
	if _, err := a.rp.Call(unix.SYS_UNLINKAT, dfd, addr, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("agent %d: remove %s: %w", a.rp.Pid(), name, err)
	}
	return nil
}
