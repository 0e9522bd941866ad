package proc

import (
	"bytes"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func BenchmarkParseSmaps(b *testing.B) {
	// A synthetic smaps with many mappings of a few files, like a large
	// process with many libraries and anonymous regions.
	var buf bytes.Buffer
	for range 200 {
		buf.WriteString(sampleSmaps)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseSmaps(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMapsSelf(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Maps(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPagemapRead(b *testing.B) {
	const size = 256 << 20
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Munmap(mem)
	for i := 0; i < size; i += 2 * int(PageSize()) {
		mem[i] = 1
	}
	pm, err := OpenPagemap(os.Getpid())
	if err != nil {
		b.Fatal(err)
	}
	defer pm.Close()
	start := uint64(addrOf(mem))
	b.SetBytes(size / int64(PageSize()) * 8)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pm.Read(start, start+size); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStatus(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadStatus(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadStat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadStat(os.Getpid()); err != nil {
			b.Fatal(err)
		}
	}
}
