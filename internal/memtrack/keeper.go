package memtrack

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/cryo-cr/cryo/internal/runlock"
	"golang.org/x/sys/unix"
)

// The userfaultfds of a pre-dump must stay open until the next dump (or
// pre-dump) of the tree: closing the last reference unregisters the areas
// and drops the protections. cryo exits in between, so a keeper holds
// them: a copy of cryo's own binary started under the name KeeperName,
// in a session of its own, with the userfaultfds and a listening Unix
// socket at SocketPath(root) as its only descriptors. The next dump
// connects, gets the descriptors and what they track (Meta) in one
// message (SCM_RIGHTS), and the keeper exits. It also exits once every
// tracked process is gone. The socket is in cryo's lock directory (root's
// /run/cryo, mode 0700), and the keeper answers only a peer of its own
// uid.
//
// If the keeper is killed, the tracking is lost: the next dump sees every
// page as written (the kernel clears the protections), copies everything,
// and says why.

// KeeperName is argv[0] of the keeper; cryo.Init runs RunKeeper for it.
const KeeperName = "cryo-memtrack-keeper"

// MaxProcs bounds the processes one keeper tracks (SCM_RIGHTS carries at
// most 253 descriptors).
const MaxProcs = 250

// Proc is one tracked process: its pid and start time (so that a reused
// pid is not taken for it).
type Proc struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

// Meta says what a keeper's descriptors track: the pre-dump whose pages
// the tracking starts from (its images directory, by device and inode),
// and one process per descriptor, in order.
type Meta struct {
	Dir    string `json:"dir"`
	DirDev uint64 `json:"dir_dev"`
	DirIno uint64 `json:"dir_ino"`
	Procs  []Proc `json:"procs"`
}

// SocketPath is where the keeper of the tree rooted at pid listens.
func SocketPath(pid int) (string, error) {
	dir, err := runlock.Dir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "memtrack-"+strconv.Itoa(pid)+".sock"), nil
}

// Hand starts a keeper for the tree rooted at root holding fds (one per
// m.Procs entry), and returns its pid. It takes fds over: they are
// closed in cryo once the keeper has them.
func Hand(root int, m Meta, fds []int) (int, error) {
	if len(fds) != len(m.Procs) || len(fds) > MaxProcs {
		return 0, fmt.Errorf("memory tracking: %d descriptors for %d processes (at most %d)", len(fds), len(m.Procs), MaxProcs)
	}
	path, err := SocketPath(root)
	if err != nil {
		return 0, err
	}
	// A keeper left from an earlier pre-dump of a tree at this pid is
	// replaced: its socket goes, and it exits when its processes do.
	os.Remove(path)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return 0, fmt.Errorf("memory tracking: keeper socket: %w", err)
	}
	l.SetUnlinkOnClose(false)
	lf, err := l.File()
	l.Close()
	if err != nil {
		os.Remove(path)
		return 0, fmt.Errorf("memory tracking: keeper socket: %w", err)
	}
	defer lf.Close()
	arg, err := json.Marshal(m)
	if err != nil {
		return 0, err
	}
	files := []*os.File{lf}
	for i, fd := range fds {
		files = append(files, os.NewFile(uintptr(fd), "userfaultfd-"+strconv.Itoa(i)))
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	cmd := &exec.Cmd{Path: "/proc/self/exe", Args: []string{KeeperName, string(arg)},
		Stdin: devnull, Stdout: devnull, Stderr: devnull, ExtraFiles: files,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true}}
	if err := cmd.Start(); err != nil {
		for _, f := range files[1:] {
			f.Close()
		}
		os.Remove(path)
		return 0, fmt.Errorf("memory tracking: start keeper: %w", err)
	}
	for _, f := range files[1:] {
		f.Close()
	}
	pid := cmd.Process.Pid
	// Not waited for: it outlives cryo (init reaps it).
	cmd.Process.Release()
	return pid, nil
}

// Take gets the descriptors and their Meta from the keeper of the tree
// rooted at root; the keeper then exits. An error means the tracking is
// lost (no keeper, or it died).
func Take(root int) (Meta, []int, error) {
	var m Meta
	path, err := SocketPath(root)
	if err != nil {
		return m, nil, err
	}
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return m, nil, fmt.Errorf("no keeper for the tree of %d: %w", root, err)
	}
	defer c.Close()
	defer os.Remove(path)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 1<<20)
	oob := make([]byte, unix.CmsgSpace(4*MaxProcs))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return m, nil, fmt.Errorf("keeper of %d: %w", root, err)
	}
	var fds []int
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err == nil {
		for _, cm := range cmsgs {
			if f, err := unix.ParseUnixRights(&cm); err == nil {
				fds = append(fds, f...)
			}
		}
	}
	closeAll := func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}
	if err := json.Unmarshal(buf[:n], &m); err != nil {
		closeAll()
		return m, nil, fmt.Errorf("keeper of %d: %w", root, err)
	}
	if len(fds) != len(m.Procs) {
		closeAll()
		return m, nil, fmt.Errorf("keeper of %d: %d descriptors for %d processes", root, len(fds), len(m.Procs))
	}
	for _, fd := range fds {
		unix.CloseOnExec(fd)
	}
	return m, fds, nil
}

// RunKeeper is the keeper's main: args[0] is its Meta; descriptor 3 the
// listening socket, 4 and on the userfaultfds. It returns the exit status.
func RunKeeper(args []string) int {
	if len(args) != 1 {
		return 2
	}
	var m Meta
	if err := json.Unmarshal([]byte(args[0]), &m); err != nil {
		return 2
	}
	fds := make([]int, len(m.Procs))
	for i := range fds {
		fds[i] = 4 + i
	}
	// Liveness of the tracked processes: when all are gone, so is the
	// point of keeping anything.
	var polls []unix.PollFd
	polls = append(polls, unix.PollFd{Fd: 3, Events: unix.POLLIN})
	for _, p := range m.Procs {
		if fd, err := unix.PidfdOpen(p.Pid, 0); err == nil {
			polls = append(polls, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
	}
	for {
		if _, err := unix.Poll(polls, -1); err != nil && !errors.Is(err, unix.EINTR) {
			return 1
		}
		alive := 0
		for _, p := range polls[1:] {
			if p.Revents == 0 {
				alive++
			}
		}
		if len(polls) > 1 && alive == 0 {
			return 0
		}
		if polls[0].Revents == 0 {
			// Only some processes exited: watch the others.
			var keep []unix.PollFd
			keep = append(keep, polls[0])
			for _, p := range polls[1:] {
				if p.Revents == 0 {
					keep = append(keep, p)
				}
			}
			polls = keep
			continue
		}
		conn, _, err := unix.Accept4(3, unix.SOCK_CLOEXEC)
		if err != nil {
			continue
		}
		cred, err := unix.GetsockoptUcred(conn, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil || int(cred.Uid) != os.Geteuid() {
			unix.Close(conn)
			continue
		}
		err = unix.Sendmsg(conn, []byte(args[0]), unix.UnixRights(fds...), nil, 0)
		unix.Close(conn)
		if err == nil {
			return 0
		}
	}
}
