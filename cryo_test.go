package cryo_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cryo-cr/cryo"
	"golang.org/x/sys/unix"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("dumping a process and restoring its PID take root")
	}
}

// A dump the tree cannot give (a terminal held without ShellJob) is a
// *RefusedError naming the root, and the process runs on.
func TestDumpRefused(t *testing.T) {
	requireRoot(t)
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	// Unlock and open the slave: the child holds it, the master stays here.
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(filepath.Join("/dev/pts", strconv.Itoa(n)), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slave.Close()
	cmd := exec.Command("sleep", "1000")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()

	_, err = cryo.Dump(context.Background(), cmd.Process.Pid, cryo.DumpOptions{Dir: t.TempDir()})
	var refused *cryo.RefusedError
	if !errors.As(err, &refused) || refused.Pid != cmd.Process.Pid {
		t.Fatalf("Dump of a process holding a terminal: %v, want a *RefusedError for pid %d", err, cmd.Process.Pid)
	}
	if !strings.Contains(err.Error(), "terminal") && !strings.Contains(err.Error(), "shell-job") {
		t.Errorf("the refusal does not say what was refused: %v", err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("the refused dump did not leave the process running: %v", err)
	}
}

// A cancelled context stops Dump and Restore before they begin.
func TestCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := cryo.Dump(ctx, os.Getpid(), cryo.DumpOptions{Dir: t.TempDir()})
	var intr *cryo.InterruptedError
	if !errors.As(err, &intr) || !errors.Is(err, context.Canceled) {
		t.Errorf("Dump with a cancelled context: %v, want an *InterruptedError wrapping context.Canceled", err)
	}
	_, err = cryo.Restore(ctx, t.TempDir(), cryo.RestoreOptions{})
	if !errors.As(err, &intr) || intr.Op != "restore" {
		t.Errorf("Restore with a cancelled context: %v, want an *InterruptedError", err)
	}
}

// A malformed image is an *ImageError.
func TestRestoreImageError(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	// A pstree image that is not one: a CRIU magic pair of the wrong kind.
	if err := os.WriteFile(filepath.Join(dir, "inventory.img"), []byte("garbage that is no image"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := cryo.Restore(ctx, dir, cryo.RestoreOptions{})
	var bad *cryo.ImageError
	if !errors.As(err, &bad) {
		t.Fatalf("Restore of a garbage inventory: %v, want an *ImageError", err)
	}
}

// cancelHandler is a slog.Handler that cancels a context at the first
// message the dump logs: the dump is then under way.
type cancelHandler struct{ cancel context.CancelFunc }

func (h cancelHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h cancelHandler) Handle(context.Context, slog.Record) error {
	h.cancel()
	return nil
}
func (h cancelHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h cancelHandler) WithGroup(string) slog.Handler      { return h }

// Cancelling the context of a dump under way rolls it back: an
// *InterruptedError, and the process runs on untraced.
func TestDumpCancelledMidway(t *testing.T) {
	requireRoot(t)
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	_, err := cryo.Dump(ctx, cmd.Process.Pid, cryo.DumpOptions{Dir: dir, LeaveRunning: true, Logger: slog.New(cancelHandler{cancel})})
	var intr *cryo.InterruptedError
	if !errors.As(err, &intr) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Dump cancelled midway: %v, want an *InterruptedError wrapping context.Canceled", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err == nil {
		t.Errorf("the interrupted dump wrote inventory.img")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "status"))
		if strings.Contains(string(status), "\nTracerPid:\t0\n") && strings.Contains(string(status), "\nState:\tS") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the interrupted dump the process is not sleeping untraced:\n%s", status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Check probes the kernel: on the machines cryo is tested on every
// essential feature is there, and CRIU's names are among the features.
func TestCheck(t *testing.T) {
	rep, err := cryo.Check(context.Background())
	if err != nil {
		t.Fatalf("Check: %v (missing %v)", err, rep.Missing())
	}
	names := map[string]bool{}
	for _, f := range rep.Features {
		names[f.Name] = f.Supported
	}
	if !names["pidfd_getfd"] || !names["process_vm_readv"] {
		t.Errorf("Check's report lacks pidfd_getfd or process_vm_readv, or says they are missing: %+v", rep.Features)
	}
}

// TestProgress dumps and restores a child with a Progress callback: its
// last call must count every byte of memory the call copied.
func TestProgress(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root: dumps and restores a process")
	}
	ctx := context.Background()
	sleep := exec.Command("sleep", "1000")
	sleep.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	pid := sleep.Process.Pid
	dir := t.TempDir()
	var last cryo.Progress
	calls := 0
	record := func(p cryo.Progress) { last, calls = p, calls+1 }
	if _, err := cryo.Dump(ctx, pid, cryo.DumpOptions{Dir: dir, Progress: record}); err != nil {
		sleep.Process.Kill()
		t.Fatal(err)
	}
	sleep.Wait()
	if calls == 0 || last.Done == 0 || last.Done != last.Total {
		t.Fatalf("dump: %d calls, the last %+v: want at least one, with every byte done", calls, last)
	}
	dumped := last.Done
	last, calls = cryo.Progress{}, 0
	p, err := cryo.Restore(ctx, dir, cryo.RestoreOptions{Progress: record})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		syscall.Kill(p.Pid, syscall.SIGKILL)
		p.Wait()
	}()
	if calls == 0 || last.Done != dumped || last.Total != dumped {
		t.Fatalf("restore: %d calls, the last %+v: want every one of the %d bytes dumped", calls, last, dumped)
	}
}
