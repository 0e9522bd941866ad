package proc

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCopyFd: a copy of a process's pipe end is the same pipe; a missing
// descriptor is an error.
func TestCopyFd(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	c, err := CopyFd(os.Getpid(), int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if _, err := unix.Write(c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if n, err := r.Read(b); n != 1 || b[0] != 'x' || err != nil {
		t.Fatalf("read %d %q %v through the copy", n, b, err)
	}
	if _, err := CopyFd(os.Getpid(), 1<<20); err == nil {
		t.Error("a copy of a descriptor that is not open")
	}
}
