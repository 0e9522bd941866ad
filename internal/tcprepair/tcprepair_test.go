package tcprepair

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestSaveRebuild saves both ends of a loopback connection with bytes
// queued each way, closes them in repair mode (nothing reaches the peer),
// rebuilds them in new sockets and checks that the queued bytes, and new
// ones, arrive.
func TestSaveRebuild(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("TCP repair needs CAP_NET_ADMIN; run the tests as root (make test)")
	}
	l := mustSocket(t)
	lo := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := unix.Bind(l, lo); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(l, 1); err != nil {
		t.Fatal(err)
	}
	laddr, _ := unix.Getsockname(l)
	c := mustSocket(t)
	if err := unix.Connect(c, laddr); err != nil {
		t.Fatal(err)
	}
	a, _, err := unix.Accept(l)
	if err != nil {
		t.Fatal(err)
	}
	toA, toC := bytes.Repeat([]byte("client->"), 700), bytes.Repeat([]byte("<-server"), 300)
	mustWrite(t, c, toA)
	mustWrite(t, a, toC)
	waitQueued(t, a, len(toA))
	waitQueued(t, c, len(toC))

	type saved struct {
		local, remote unix.Sockaddr
		fd            int
	}
	var ends []saved
	for _, fd := range []int{c, a} {
		if err := On(fd); err != nil {
			t.Fatal(err)
		}
		e, inq, outq, err := Save(fd)
		if err != nil {
			t.Fatal(err)
		}
		local, _ := unix.Getsockname(fd)
		remote, _ := unix.Getpeername(fd)
		unix.Close(fd) // in repair mode: no FIN, no RST
		n := mustSocket(t)
		if err := On(n); err != nil {
			t.Fatal(err)
		}
		if err := Rebuild(n, e, inq, outq, local, remote); err != nil {
			t.Fatalf("rebuild %v -> %v: %v", local, remote, err)
		}
		ends = append(ends, saved{local, remote, n})
	}
	for _, s := range ends {
		if err := Off(s.fd); err != nil {
			t.Fatal(err)
		}
	}
	c, a = ends[0].fd, ends[1].fd
	mustRead(t, a, toA)
	mustRead(t, c, toC)
	mustWrite(t, c, []byte("after"))
	mustRead(t, a, []byte("after"))
	unix.Close(l)
}

func mustSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func mustWrite(t *testing.T, fd int, b []byte) {
	t.Helper()
	if n, err := unix.Write(fd, b); err != nil || n != len(b) {
		t.Fatalf("write: %d, %v", n, err)
	}
}

func mustRead(t *testing.T, fd int, want []byte) {
	t.Helper()
	got := make([]byte, 0, len(want))
	buf := make([]byte, len(want))
	for len(got) < len(want) {
		n, err := unix.Read(fd, buf[:len(want)-len(got)])
		if err != nil || n == 0 {
			t.Fatalf("read after %d of %d bytes: %d, %v", len(got), len(want), n, err)
		}
		got = append(got, buf[:n]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// waitQueued waits until fd has n bytes to read (loopback delivers at once,
// but through a softirq).
func waitQueued(t *testing.T, fd, n int) {
	t.Helper()
	for i := 0; i < 1000; i++ {
		if q, _ := unix.IoctlGetInt(fd, unix.SIOCINQ); q == n {
			return
		}
		unix.Nanosleep(&unix.Timespec{Nsec: 1e6}, nil)
	}
	t.Fatalf("%d bytes never arrived", n)
}
