package cryo_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/cryo-cr/cryo"
)

// TestMain calls cryo.Init first, as every program using the package must:
// a restore re-executes the test binary as its blank stub.
func TestMain(m *testing.M) {
	cryo.Init()
	os.Exit(m.Run())
}

// A child process is dumped (which kills it) and restored with the same
// PID; it is then the caller's child again and answers signals as before.
func Example() {
	ctx := context.Background()
	sleep := exec.Command("sleep", "1000")
	sleep.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sleep.Start(); err != nil {
		fmt.Println(err)
		return
	}
	pid := sleep.Process.Pid
	dir, err := os.MkdirTemp("", "cryo-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	if _, err := cryo.Dump(ctx, pid, cryo.DumpOptions{Dir: dir}); err != nil {
		fmt.Println(err)
		return
	}
	sleep.Wait() // reap the dumped process, so that its PID is free again

	p, err := cryo.Restore(ctx, dir, cryo.RestoreOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("same pid:", p.Pid == pid)
	syscall.Kill(p.Pid, syscall.SIGTERM)
	status, err := p.Wait()
	fmt.Println("exit status:", status, err)
	// Output:
	// same pid: true
	// exit status: 143 <nil>
}
