package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/cryo-cr/cryo/internal/cpu"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/ptrace"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// feature is one kernel capability cryo relies on or can use.
type feature struct {
	name      string
	essential bool
	probe     func() (string, error)
}

func cmdCheck(args []string) error {
	if _, err := parseFlags(args); err != nil {
		return err
	}
	// Without root, PIDs are chosen inside a pid namespace of the tree's
	// user namespace (set_tid there is the namespace owner's right), which
	// takes user namespaces; subordinate ids take the uidmap helpers.
	rootless := os.Geteuid() != 0
	features := []feature{
		{"ptrace seize and syscall injection", true, probeInjection},
		{"PTRACE_GET_RSEQ_CONFIGURATION", false, probeRseq},
		{"clone3 with set_tid (CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)", !rootless, probeSetTid},
		{"process_vm_readv", true, probeVMRead},
		{"MADV_POPULATE_WRITE", false, probePopulate},
		{"userfaultfd", false, probeUserfaultfd},
		{"xsave features", false, func() (string, error) {
			return fmt.Sprintf("%#x", cpu.SupportedXfeatures()), nil
		}},
	}
	if rootless {
		features = append(features,
			feature{"user namespaces for a normal user (rootless restore)", true, probeUserns},
			feature{"newuidmap and newgidmap (subordinate ids, rootless)", false, probeIDHelpers})
	}
	missing := []string{}
	for _, f := range features {
		detail, err := f.probe()
		state := "yes"
		if err != nil {
			state = "NO (" + err.Error() + ")"
			if f.essential {
				missing = append(missing, f.name)
			}
		} else if detail != "" {
			state = "yes, " + detail
		}
		fmt.Printf("%-62s %s\n", f.name+":", state)
	}
	if len(missing) > 0 {
		return fmt.Errorf("essential features missing: %s", strings.Join(missing, ", "))
	}
	fmt.Println("Looks good.")
	return nil
}

// withStub starts a blank traced stub and runs f on it.
func withStub(f func(t *ptrace.Tracee) (string, error)) (string, error) {
	tr := ptrace.NewTracer()
	defer tr.Close()
	t, err := tr.StartStub("/proc/self/exe", []string{stubName}, nil)
	if err != nil {
		return "", err
	}
	defer func() { t.Kill(); t.WaitExit() }()
	insn, err := remote.SyscallInsn(t.Pid)
	if err != nil {
		return "", err
	}
	t.SetSyscallAddr(insn)
	return f(t)
}

func probeInjection() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		pid, err := t.Syscall(unix.SYS_GETPID)
		if err != nil {
			return "", err
		}
		if int(pid) != t.Pid {
			return "", fmt.Errorf("injected getpid returned %d, not %d", pid, t.Pid)
		}
		return "", nil
	})
}

func probeRseq() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		_, err := t.Rseq()
		return "", err
	})
}

func probeSetTid() (string, error) {
	st, err := proc.ReadStatus(os.Getpid())
	if err != nil {
		return "", err
	}
	const capSysAdmin, capCheckpointRestore = 21, 40
	if st.CapEff&(1<<capCheckpointRestore|1<<capSysAdmin) == 0 {
		return "", fmt.Errorf("no CAP_CHECKPOINT_RESTORE: same PIDs only inside a new pid namespace")
	}
	return "", nil
}

func probeVMRead() (string, error) {
	b := []byte{1}
	if err := ptrace.ReadMem(os.Getpid(), uint64(uintptrOf(b)), make([]byte, 1)); err != nil {
		return "", err
	}
	return "", nil
}

func probePopulate() (string, error) {
	m, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return "", err
	}
	defer unix.Munmap(m)
	const madvPopulateWrite = 23
	return "", unix.Madvise(m, madvPopulateWrite)
}

func probeUserfaultfd() (string, error) {
	const uffdUserModeOnly = 1
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|uffdUserModeOnly, 0, 0)
	if e != 0 {
		return "", e
	}
	unix.Close(int(fd))
	return "", nil
}

// probeUserns starts cryo itself (as "cryo help") as a rootless restore
// starts a tree: as pid 1 of a new pid namespace in a new user namespace
// mapping the user's own ids (a restriction such as AppArmor's on
// unprivileged user namespaces shows there, not in a bare CLONE_NEWUSER).
func probeUserns() (string, error) {
	cmd := exec.Command("/proc/self/exe", "help")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}},
	}
	return "", cmd.Run()
}

// probeIDHelpers finds newuidmap and newgidmap.
func probeIDHelpers() (string, error) {
	var paths []string
	for _, k := range []userns.IDKind{userns.UIDs, userns.GIDs} {
		path, err := k.FindHelper()
		if err != nil {
			return "", err
		}
		paths = append(paths, path)
	}
	return strings.Join(paths, ", "), nil
}
