package fdkind

import (
	"testing"

	"golang.org/x/sys/unix"
)

// The options a Unix socket changed are read, and only those: one left at
// its default stays unset in the image, so restore does not touch it.
func TestDumpUnixOpts(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	s := fds[0]
	for opt, v := range map[int]int{unix.SO_PASSCRED: 1, unix.SO_PRIORITY: 3, unix.SO_KEEPALIVE: 1} {
		if err := unix.SetsockoptInt(s, unix.SOL_SOCKET, opt, v); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.SetsockoptLinger(s, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 5}); err != nil {
		t.Fatal(err)
	}
	o, err := DumpUnixOpts(s)
	if err != nil {
		t.Fatal(err)
	}
	if !o.GetSoPasscred() || o.GetSoPriority() != 3 || !o.GetSoKeepalive() || o.SoLinger == nil || o.GetSoLinger() != 5 {
		t.Errorf("changed options: %v", o)
	}
	if o.SoMark != nil || o.SoRcvlowat != nil || o.SoBroadcast != nil || o.GetSoSndbuf() == 0 || o.SoSndTmoSec == nil {
		t.Errorf("options at their default: %v", o)
	}
}
