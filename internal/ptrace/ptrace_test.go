package ptrace

import (
	"bytes"
	"os"
	"os/exec"
	"testing"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root: tracing a stub and seizing processes is done as root in CI")
	}
}

// vdsoSyscall finds the syscall instruction in pid's [vdso].
func vdsoSyscall(t *testing.T, pid int) uint64 {
	t.Helper()
	maps, err := proc.Maps(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range maps {
		if m.Path == "[vdso]" {
			addr, err := FindSyscallInsn(pid, m.Start, m.End)
			if err != nil {
				t.Fatal(err)
			}
			return addr
		}
	}
	t.Fatal("no [vdso]")
	return 0
}

func TestStubInjection(t *testing.T) {
	requireRoot(t)
	tr := NewTracer()
	defer tr.Close()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	stub, err := tr.StartStub(self, []string{"stub"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stub.Kill(); stub.WaitExit() }()
	stub.SetSyscallAddr(vdsoSyscall(t, stub.Pid))

	pid, err := stub.Syscall(unix.SYS_GETPID)
	if err != nil || int(pid) != stub.Pid {
		t.Fatalf("injected getpid = %d, %v; want %d", pid, err, stub.Pid)
	}
	addr, err := stub.Syscall(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
	if err != nil {
		t.Fatalf("injected mmap: %v", err)
	}
	want := []byte("written into the stub")
	if err := WriteMem(stub.Pid, addr, want); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(want))
	if err := ReadMem(stub.Pid, addr, got); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("read back %q, %v", got, err)
	}
	// A failing call comes back as its errno.
	if _, err := stub.Syscall(unix.SYS_CLOSE, 12345); err != unix.EBADF {
		t.Fatalf("close(12345) = %v, want EBADF", err)
	}
	// PROT_NONE memory is out of process_vm_readv's reach, not /proc/PID/mem's.
	if _, err := stub.Syscall(unix.SYS_MPROTECT, addr, 4096, unix.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	if err := ReadMem(stub.Pid, addr, got); err == nil {
		t.Fatal("process_vm_readv read PROT_NONE memory")
	}
	mem, err := OpenMem(stub.Pid)
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if err := mem.ReadAt(got, addr); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("/proc/PID/mem read %q, %v", got, err)
	}
}

func TestSeizeLeavesProcessRunning(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// Wait until sleep is sleeping, past exec.
	for i := 0; i < 200; i++ {
		if st, err := proc.ReadStat(cmd.Process.Pid); err == nil && st.State == 'S' {
			break
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 5e6}, nil)
	}
	tr := NewTracer()
	defer tr.Close()
	pid := cmd.Process.Pid
	tc, err := tr.Seize(pid, pid)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tc.Regs()
	if err != nil {
		t.Fatal(err)
	}
	if x, err := tc.Xstate(); err != nil || len(x) < 576 {
		t.Fatalf("xstate: %d bytes, %v", len(x), err)
	}
	if _, err := tc.SigMask(); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Rseq(); err != nil {
		t.Fatal(err)
	}
	tc.SetSyscallAddr(vdsoSyscall(t, pid))
	if got, err := tc.Syscall(unix.SYS_GETPID); err != nil || int(got) != pid {
		t.Fatalf("getpid in seized process = %d, %v", got, err)
	}
	if err := tc.Detach(); err != nil {
		t.Fatal(err)
	}
	// Injection must not have disturbed the sleep: the process is still
	// sleeping (a crash would show as a zombie or an exit).
	if err := unix.Kill(pid, 0); err != nil {
		t.Fatalf("process gone after detach: %v", err)
	}
	st, err := proc.ReadStat(pid)
	if err != nil || st.State == 'Z' {
		t.Fatalf("process state %c, %v", st.State, err)
	}
	_ = before
}
