package restore

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitName is argv[0] of the init of a pid namespace that a rootless
// restore made for a tree dumped from the initial pid namespace: cryo's
// own binary runs RunInit when it sees it (cmd/cryo).
const InitName = "cryo-pidns-init"

// RunInit is that init. A pid namespace dies with its init, and its init
// reaps its orphans: it waits for every process until none is left, and
// exits as the tree's root did (128+N if signal N killed it). args[0] is
// the root's PID in the namespace.
func RunInit(args []string) int {
	if len(args) != 1 {
		fmt.Fprintf(os.Stderr, "%s: want the root's pid\n", InitName)
		return 2
	}
	root, err := strconv.Atoi(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", InitName, err)
		return 2
	}
	// The tree's signals are not for the init: a stray SIGTERM from inside
	// would take the whole namespace down.
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPIPE)
	status := 0
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WALL, nil)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return status
		case pid == root && ws.Exited():
			status = ws.ExitStatus()
		case pid == root && ws.Signaled():
			status = 128 + int(ws.Signal())
		}
	}
}

// newInit clones the init of a new pid namespace from the stub: a blank
// copy of it, which clones the tree's root and later becomes RunInit.
func (r *restorer) newInit(stub *process, flags uint64) (*process, error) {
	init := &process{r: r, c: &checkpoint{pid: 1, nsPids: []uint32{1}}}
	if err := stub.clone(init, flags|unix.CLONE_NEWPID, 0); err != nil {
		return nil, fmt.Errorf("new pid namespace: %w", err)
	}
	return init, nil
}

// startInit makes the init run RunInit once the tree is built: its
// standard files become /dev/null, its cwd /, and its registers are set
// to enter execve of cryo's binary as soon as it is let go.
func (r *restorer) startInit(init *process, rootInner uint32) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("pid namespace init: cryo's binary: %w", err)
	}
	if err := unix.Access(exe, unix.X_OK); err != nil {
		return fmt.Errorf("pid namespace init: %s: %w", exe, err)
	}
	t := init.leader
	null, err := init.open("/dev/null", unix.O_RDWR)
	if err != nil {
		return fmt.Errorf("pid namespace init: %w", err)
	}
	for fd := uint64(0); fd < 3; fd++ {
		if _, err := t.Syscall(sysDup2, null, fd); err != nil {
			return fmt.Errorf("pid namespace init: dup2: %w", err)
		}
	}
	t.Syscall(unix.SYS_CLOSE, null)
	root, err := init.putString("/")
	if err != nil {
		return err
	}
	if _, err := t.Syscall(unix.SYS_CHDIR, root); err != nil {
		return fmt.Errorf("pid namespace init: chdir /: %w", err)
	}
	// path, argv[0], argv[1], then argv and an empty envp.
	var strs []byte
	var offs []uint64
	for _, s := range []string{exe, InitName, strconv.Itoa(int(rootInner))} {
		offs = append(offs, uint64(len(strs)))
		strs = append(append(strs, s...), 0)
	}
	base := init.scratch
	vec := uint64(len(strs)+7) &^ 7
	block := append(make([]byte, 0, int(vec)+32), strs...)
	block = append(block, make([]byte, int(vec)-len(strs))...)
	for _, o := range offs[1:] {
		block = putU64(block, base+o)
	}
	block = putU64(block, 0) // argv end, also the empty envp
	if _, err := init.put(block); err != nil {
		return err
	}
	regs, err := t.Regs()
	if err != nil {
		return err
	}
	setCallRegs(&regs, t.SyscallAddr(), unix.SYS_EXECVE, base+offs[0], base+vec, base+vec+16)
	if err := t.SetRegs(regs); err != nil {
		return err
	}
	return nil
}
