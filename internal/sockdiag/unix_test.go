package sockdiag

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestUnixPairAndListener(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	unix.Write(fds[0], []byte("hello"))
	l, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l)
	if err := unix.Bind(l, &unix.SockaddrUnix{Name: "@cryo-sockdiag-test"}); err != nil {
		t.Fatal(err)
	}
	unix.Listen(l, 7)
	ino := func(fd int) uint32 {
		var st unix.Stat_t
		unix.Fstat(fd, &st)
		return uint32(st.Ino)
	}
	all, err := Unixes()
	if err != nil {
		t.Fatal(err)
	}
	a, b, ls := all[ino(fds[0])], all[ino(fds[1])], all[ino(l)]
	if a == nil || b == nil || ls == nil {
		t.Fatalf("sockets not found: %v %v %v", a, b, ls)
	}
	if a.Peer != b.Ino || b.Peer != a.Ino || a.Type != unix.SOCK_STREAM {
		t.Errorf("pair: %+v %+v", a, b)
	}
	if b.RQueue != 5 {
		t.Errorf("queued bytes: %d, want 5", b.RQueue)
	}
	if ls.State != 10 || ls.Name != "\x00cryo-sockdiag-test" || ls.WQueue != 7 {
		t.Errorf("listener: %+v", ls)
	}
}

// TestSockaddr: a path is NUL-terminated, an abstract name is exact.
func TestSockaddr(t *testing.T) {
	for _, c := range []struct {
		name string
		want []byte
	}{
		{"/run/x.sock", append([]byte{1, 0}, "/run/x.sock\x00"...)},
		{"\x00abs", append([]byte{1, 0}, "\x00abs"...)},
	} {
		if got := Sockaddr([]byte(c.name)); string(got) != string(c.want) {
			t.Errorf("Sockaddr(%q) = %q, want %q", c.name, got, c.want)
		}
	}
}
