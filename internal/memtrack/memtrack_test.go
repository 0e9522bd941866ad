package memtrack

import (
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestWrittenAfterProtect tracks this process's own memory: of 16 pages
// protected, the two written afterwards are exactly what Written reports.
func TestWrittenAfterProtect(t *testing.T) {
	if err := Probe(); err != nil {
		t.Skipf("this kernel cannot track writes: %v", err)
	}
	page := unix.Getpagesize()
	mem, err := unix.Mmap(-1, 0, 16*page, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(mem)
	for i := range 16 {
		mem[i*page] = 1
	}
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|UserModeOnly, 0, 0)
	if e != 0 {
		t.Fatal(e)
	}
	defer unix.Close(int(fd))
	if err := EnableWPAsync(int(fd)); err != nil {
		t.Fatal(err)
	}
	start := uint64(uintptr(unsafe.Pointer(&mem[0])))
	end := start + uint64(16*page)
	if err := RegisterWP(int(fd), start, end); err != nil {
		t.Fatal(err)
	}
	pm, err := unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pm)
	if err := Protect(pm, start, end); err != nil {
		t.Fatal(err)
	}
	if w, err := Written(pm, start, end); err != nil || len(w) != 0 {
		t.Fatalf("right after Protect: written %v, %v; want none", w, err)
	}
	mem[3*page+5] = 2
	mem[7*page] = 2
	w, err := Written(pm, start, end)
	if err != nil {
		t.Fatal(err)
	}
	want := []Region{{Start: start + uint64(3*page), End: start + uint64(4*page)}, {Start: start + uint64(7*page), End: start + uint64(8*page)}}
	if len(w) != 2 || w[0].Start != want[0].Start || w[0].End != want[0].End || w[1].Start != want[1].Start || w[1].End != want[1].End {
		t.Fatalf("written %+v, want pages 3 and 7: %+v", w, want)
	}
}
