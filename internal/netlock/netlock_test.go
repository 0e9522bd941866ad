package netlock

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"
)

// TestLockUnlock locks one direction of a loopback connection: bytes the
// client sends do not arrive while it is locked, and arrive (retransmitted)
// once it is unlocked. Unlock is idempotent.
func TestLockUnlock(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("nftables needs CAP_NET_ADMIN; run the tests as root (make test)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	pid := os.Getpid()
	conn := Conn{
		Local:  server.LocalAddr().(*net.TCPAddr).AddrPort(),
		Remote: server.RemoteAddr().(*net.TCPAddr).AddrPort(),
	}
	if err := Lock(pid, []Conn{conn}); err != nil {
		t.Fatal(err)
	}
	defer Unlock(pid)
	if _, err := client.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	server.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := server.Read(buf); err == nil {
		t.Fatalf("read %d bytes through the lock", n)
	}
	for i := 0; i < 2; i++ {
		if err := Unlock(pid); err != nil {
			t.Fatalf("unlock %d: %v", i, err)
		}
	}
	server.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := server.Read(buf); err != nil || n != 1 || buf[0] != 'x' {
		t.Fatalf("after unlock: %d %q %v", n, buf, err)
	}
	if _, err := dropIncoming(Conn{netip.MustParseAddrPort("127.0.0.1:1"), netip.MustParseAddrPort("[::1]:2")}); err == nil {
		t.Error("a connection across families was accepted")
	}
}
