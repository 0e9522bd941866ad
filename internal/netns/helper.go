package netns

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/cryo-cr/cryo/internal/netlock"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// HelperName is argv[0] of a helper: cryo.Init runs RunHelper for it.
const HelperName = "cryo-netns-helper"

// nsGetUserns is NS_GET_USERNS (linux/nsfs.h): the user namespace that
// owns a namespace, as a new descriptor.
const nsGetUserns = 0xb701

// Helper is a copy of cryo running inside one net namespace, which cryo
// drives through a pipe pair.
//
// It is started as a blank stub (stopped before any of its code runs,
// single-threaded), so that injected setns calls can move it into the
// namespace: cryo cannot, being multithreaded, enter a user namespace, and
// without root it may enter a net namespace only from inside the user
// namespace that owns it. The stub enters that user namespace first when
// cryo is not root: there it has every capability (the namespace's owner
// is cryo's user), which it keeps, as no execve follows. Then it is let go
// and runs as HelperName.
type Helper struct {
	tr   *ptrace.Tracer
	pid  int
	to   *os.File
	from *os.File
	dec  *json.Decoder
	enc  *json.Encoder
}

// Start starts a helper in the net namespace of process pid, running the
// executable exe (cryo's own; it must call cryo.Init first).
func Start(exe string, pid int) (*Helper, error) {
	netNs, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, fmt.Errorf("process %d: net namespace: %w", pid, err)
	}
	defer netNs.Close()
	files := []uintptr{0, 0, 2, netNs.Fd()}
	if os.Geteuid() != 0 {
		fd, err := unix.IoctlRetInt(int(netNs.Fd()), nsGetUserns)
		if err != nil {
			return nil, fmt.Errorf("process %d: owner of its net namespace: %w", pid, err)
		}
		owner := os.NewFile(uintptr(fd), "userns")
		defer owner.Close()
		files = append(files, owner.Fd())
	}
	toR, toW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer toR.Close()
	fromR, fromW, err := os.Pipe()
	if err != nil {
		toW.Close()
		return nil, err
	}
	defer fromW.Close()
	files[0], files[1] = toR.Fd(), fromW.Fd()
	h := &Helper{tr: ptrace.NewTracer(), to: toW, from: fromR}
	t, err := h.tr.StartStub(exe, []string{HelperName}, files)
	if err != nil {
		h.Close()
		return nil, err
	}
	h.pid = t.Pid
	if err := enter(t, len(files) == 5); err != nil {
		t.Kill()
		t.WaitExit()
		h.pid = 0
		h.Close()
		return nil, fmt.Errorf("process %d: net namespace helper: %w", pid, err)
	}
	h.dec, h.enc = json.NewDecoder(fromR), json.NewEncoder(toW)
	return h, nil
}

// enter moves the stub t into the namespaces given as its descriptors 3
// (net) and 4 (the user namespace owning it, when userns) and lets it go.
func enter(t *ptrace.Tracee, userns bool) error {
	insn, err := remote.SyscallInsn(t.Pid)
	if err != nil {
		return err
	}
	t.SetSyscallAddr(insn)
	if userns {
		if _, err := t.Syscall(unix.SYS_SETNS, 4, unix.CLONE_NEWUSER); err != nil {
			return fmt.Errorf("enter the user namespace: %w", err)
		}
		t.Syscall(unix.SYS_CLOSE, 4)
	}
	if _, err := t.Syscall(unix.SYS_SETNS, 3, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter the net namespace: %w", err)
	}
	t.Syscall(unix.SYS_CLOSE, 3)
	return t.Detach()
}

// call sends one request and waits for its answer.
func (h *Helper) call(req request) (*response, error) {
	if err := h.enc.Encode(&req); err != nil {
		return nil, fmt.Errorf("net namespace helper %d: %w", h.pid, err)
	}
	var resp response
	if err := h.dec.Decode(&resp); err != nil {
		return nil, fmt.Errorf("net namespace helper %d: no answer to %s: %w", h.pid, req.Op, err)
	}
	if resp.Err != "" {
		return nil, errors.New(resp.Err)
	}
	return &resp, nil
}

// Read saves the namespace.
func (h *Helper) Read() (*State, error) {
	resp, err := h.call(request{Op: "read"})
	if err != nil {
		return nil, err
	}
	if resp.State == nil {
		return nil, fmt.Errorf("net namespace helper %d: no state", h.pid)
	}
	return resp.State, nil
}

// Apply makes the (new) namespace what s describes.
func (h *Helper) Apply(s *State) error {
	_, err := h.call(request{Op: "apply", State: s})
	return err
}

// Unixes lists the Unix sockets of the namespace (sock_diag lists those of
// the asker's namespace only).
func (h *Helper) Unixes() (map[uint32]*sockdiag.Unix, error) {
	resp, err := h.call(request{Op: "unix"})
	if err != nil {
		return nil, err
	}
	return resp.Unix, nil
}

// Close stops the helper (its input closes, it exits) and reaps it.
func (h *Helper) Close() {
	if h.to != nil {
		h.to.Close()
		h.to = nil
	}
	if h.pid != 0 {
		// Its own child, no longer traced. Its work is done: killed
		// rather than trusted to leave on end of input.
		unix.Kill(h.pid, unix.SIGKILL)
		for {
			_, err := unix.Wait4(h.pid, nil, 0, nil)
			if err != unix.EINTR {
				break
			}
		}
		h.pid = 0
	}
	if h.from != nil {
		h.from.Close()
		h.from = nil
	}
	h.tr.Close()
}

// Veth makes the veth pair l in the helper's namespace, its other end in
// the namespace of process peerPid.
func (h *Helper) Veth(l *Link, peerPid int) error {
	_, err := h.call(request{Op: "veth", Veth: l, PeerPid: peerPid})
	return err
}

// Lock takes the network lock (see netlock.Lock) for conns in the
// helper's namespace.
func (h *Helper) Lock(key int, conns []netlock.Conn) error {
	_, err := h.call(request{Op: "lock", Lock: conns, LockKey: key})
	return err
}

// Unlock removes it.
func (h *Helper) Unlock(key int) error {
	_, err := h.call(request{Op: "unlock", LockKey: key})
	return err
}
