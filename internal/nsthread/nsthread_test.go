package nsthread

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRunInOtherUTS reads the host name of a child in its own UTS
// namespace, and checks this thread's is untouched.
func TestRunInOtherUTS(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to create a UTS namespace")
	}
	cmd := exec.Command("sh", "-c", "hostname nsthread-test && sleep 30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUTS}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var got string
	for i := 0; i < 100 && got != "nsthread-test"; i++ {
		err := Run(cmd.Process.Pid, "uts", unix.CLONE_NEWUTS, func() error {
			var u unix.Utsname
			if err := unix.Uname(&u); err != nil {
				return err
			}
			got = strings.TrimRight(string(u.Nodename[:]), "\x00")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 10e6}, nil)
	}
	if got != "nsthread-test" {
		t.Fatalf("host name in the namespace: %q", got)
	}
	if h, _ := os.Hostname(); h == "nsthread-test" {
		t.Fatal("the caller's host name changed")
	}
}
