package cryo_test

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// goTool returns the go command, or skips the test when there is none
// (the tree is then only being tested, not built).
func goTool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("no go tool to cross-build with: %v", err)
	}
	return p
}

// TestArchBuilds keeps the tree building and vetting (tests included) on
// architectures cryo does not support yet: x86-64-only code lives in
// *_amd64.go files, with *_other.go stand-ins beside them.
func TestArchBuilds(t *testing.T) {
	gobin := goTool(t)
	for _, arch := range []string{"arm64", "riscv64", "386"} {
		for _, sub := range []string{"build", "vet"} {
			cmd := exec.Command(gobin, sub, "./...")
			cmd.Env = append(os.Environ(), "GOARCH="+arch, "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("GOARCH=%s go %s ./...: %v\n%s", arch, sub, err, out)
			}
		}
	}
}

// archRunner returns a way to run a binary of another architecture on
// this machine: arm64 through qemu-user, or 386 natively when the kernel
// runs 32-bit x86 binaries. It skips the test when there is neither.
func archRunner(t *testing.T, gobin string) (arch string, run func(args ...string) *exec.Cmd) {
	t.Helper()
	build := func(arch string) string {
		bin := filepath.Join(t.TempDir(), "cryo-"+arch)
		cmd := exec.Command(gobin, "build", "-o", bin, "./cmd/cryo")
		cmd.Env = append(os.Environ(), "GOARCH="+arch, "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("GOARCH=%s go build ./cmd/cryo: %v\n%s", arch, err, out)
		}
		return bin
	}
	if qemu, err := exec.LookPath("qemu-aarch64"); err == nil {
		bin := build("arm64")
		return "arm64", func(args ...string) *exec.Cmd { return exec.Command(qemu, append([]string{bin}, args...)...) }
	}
	bin := build("386")
	if err := exec.Command(bin, "--version").Run(); errors.Is(err, syscall.ENOEXEC) {
		t.Skipf("no qemu-aarch64 (Debian package qemu-user) and this kernel runs no 32-bit x86 binaries: %v", err)
	}
	return "386", func(args ...string) *exec.Cmd { return exec.Command(bin, args...) }
}

// TestArchRefused runs cryo built for an architecture it does not support
// yet: every command that needs registers fails in one line saying so,
// with a non-zero status and nothing written; show still works.
func TestArchRefused(t *testing.T) {
	arch, run := archRunner(t, goTool(t))
	dir := t.TempDir()
	for _, args := range [][]string{
		{"dump", "-t", "1", "-D", dir},
		{"restore", "-D", dir},
		{"check"},
		{"check", "--all"},
		{"swrk", "3"},
	} {
		cmd := run(args...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		// A command that does not refuse goes on into ptrace under qemu,
		// where it can hang: it is killed so that the test fails instead.
		if err := cmd.Start(); err != nil {
			t.Fatalf("cryo %s on %s: %v", strings.Join(args, " "), arch, err)
		}
		timer := time.AfterFunc(time.Minute, func() { cmd.Process.Kill() })
		err := cmd.Wait()
		timer.Stop()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Errorf("cryo %s on %s: %v, want a non-zero exit", strings.Join(args, " "), arch, err)
		}
		if want := "cryo: not supported on " + arch + " yet\n"; stderr.String() != want || stdout.Len() != 0 {
			t.Errorf("cryo %s on %s: stdout %q, stderr %q, want only %q on stderr", strings.Join(args, " "), arch, stdout.String(), stderr.String(), want)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("refused commands left %d files in %s (%v)", len(entries), dir, err)
	}
	if out, err := run("--version").CombinedOutput(); err != nil {
		t.Errorf("cryo --version on %s: %v: %s", arch, err, out)
	}
}
