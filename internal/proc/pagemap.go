package proc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"unsafe"
)

// PagemapEntry is one 64-bit entry of /proc/PID/pagemap describing one
// virtual page (Documentation/admin-guide/mm/pagemap.rst).
type PagemapEntry uint64

// Present reports whether the page is in RAM (bit 63).
func (e PagemapEntry) Present() bool { return e&(1<<63) != 0 }

// Swapped reports whether the page is in swap (bit 62).
func (e PagemapEntry) Swapped() bool { return e&(1<<62) != 0 }

// FileOrSharedAnon reports whether the page is file-backed or shared
// anonymous memory (bit 61); private anonymous pages have it clear, which is
// how the dumper tells a COWed private file page from a clean one.
func (e PagemapEntry) FileOrSharedAnon() bool { return e&(1<<61) != 0 }

// GuardRegion reports a MADV_GUARD_INSTALL guard page (bit 58, since 6.15).
func (e PagemapEntry) GuardRegion() bool { return e&(1<<58) != 0 }

// UffdWP reports a userfaultfd write-protected pte (bit 57, since 5.13).
func (e PagemapEntry) UffdWP() bool { return e&(1<<57) != 0 }

// Exclusive reports that the page is mapped by this process only (bit 56).
func (e PagemapEntry) Exclusive() bool { return e&(1<<56) != 0 }

// SoftDirty reports the soft-dirty bit (bit 55): the page was written, or
// its VMA was created, since the last write of "4" to /proc/PID/clear_refs.
// Kernels without CONFIG_MEM_SOFT_DIRTY always report 0, so incremental
// dumps must probe for support (clear refs, write a test page, check the
// bit) before relying on it.
func (e PagemapEntry) SoftDirty() bool { return e&(1<<55) != 0 }

// PFN returns the page frame number (bits 0-54) of a present page. The kernel
// reports 0 unless the reader has CAP_SYS_ADMIN.
func (e PagemapEntry) PFN() uint64 { return uint64(e) & (1<<55 - 1) }

// SwapType returns the swap device index (bits 0-4) of a swapped page.
func (e PagemapEntry) SwapType() uint64 { return uint64(e) & 0x1f }

// SwapOffset returns the offset in the swap device (bits 5-54) of a swapped
// page.
func (e PagemapEntry) SwapOffset() uint64 { return (uint64(e) & (1<<55 - 1)) >> 5 }

// Pagemap reads /proc/PID/pagemap. The file is opened once per process:
// the kernel pins the target mm at open time, and reusing one descriptor and
// one buffer keeps the per-VMA cost at a single pread.
type Pagemap struct {
	pid  int
	path string
	f    *os.File
	buf  []PagemapEntry
}

// OpenPagemap opens /proc/PID/pagemap. Reading it needs ptrace read access
// to pid.
func OpenPagemap(pid int) (*Pagemap, error) {
	path := pidPath(pid, "pagemap")
	f, err := Open(path, os.O_RDONLY)
	if err != nil {
		return nil, ioError(err)
	}
	return &Pagemap{pid: pid, path: path, f: f}, nil
}

// Close closes the pagemap file.
func (p *Pagemap) Close() error {
	if err := p.f.Close(); err != nil {
		return ioError(err)
	}
	return nil
}

// Read returns one entry per page in [start, end); both bounds must be
// page-aligned. The returned slice aliases an internal buffer that stays
// valid until the next Read or Walk, so a dumper walking VMAs allocates only
// for the largest one. For very large ranges (sparse reservations of
// hundreds of GiB) use Walk, which bounds the buffer.
func (p *Pagemap) Read(start, end uint64) ([]PagemapEntry, error) {
	n, err := p.pageCount(start, end)
	if err != nil {
		return nil, err
	}
	buf := p.buffer(n)
	if err := p.readAt(start, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// walkChunkPages bounds Walk's buffer to 512 KiB, covering 256 MiB of
// address space per pread with 4 KiB pages.
const walkChunkPages = 64 << 10

// Walk reads the entries for [start, end) in bounded chunks and calls fn for
// each chunk with the address of its first page. entries aliases an internal
// buffer valid only during the call. An error from fn stops the walk and is
// returned unchanged.
func (p *Pagemap) Walk(start, end uint64, fn func(addr uint64, entries []PagemapEntry) error) error {
	n, err := p.pageCount(start, end)
	if err != nil {
		return err
	}
	addr := start
	for n > 0 {
		chunk := min(n, walkChunkPages)
		buf := p.buffer(chunk)
		if err := p.readAt(addr, buf); err != nil {
			return err
		}
		if err := fn(addr, buf); err != nil {
			return err
		}
		addr += uint64(chunk) * pageSize
		n -= chunk
	}
	return nil
}

func (p *Pagemap) pageCount(start, end uint64) (int, error) {
	if start%pageSize != 0 || end%pageSize != 0 || end < start {
		return 0, fmt.Errorf("proc: read %s: invalid range [%#x, %#x): bounds must be page-aligned and ordered", p.path, start, end)
	}
	return int((end - start) / pageSize), nil
}

func (p *Pagemap) buffer(n int) []PagemapEntry {
	if cap(p.buf) < n {
		p.buf = make([]PagemapEntry, n)
	}
	return p.buf[:n]
}

// readAt fills dst with the entries starting at virtual address addr.
func (p *Pagemap) readAt(addr uint64, dst []PagemapEntry) error {
	if len(dst) == 0 {
		return nil
	}
	// The kernel writes native-endian u64s, which is exactly the memory
	// layout of []PagemapEntry, so pread straight into it instead of
	// decoding a byte copy: this is the hot loop for GiB-sized dumps.
	raw := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(dst))), len(dst)*8)
	off := int64(addr / pageSize * 8)
	// ReadAt loops over pread until the buffer is full; the kernel fills
	// any count in one call unless interrupted.
	n, err := p.f.ReadAt(raw, off)
	if err == nil {
		return nil
	}
	if errors.Is(err, io.EOF) {
		// pagemap returns 0 bytes, not an error, once the mm is gone
		// and for addresses above the task size ([vsyscall]).
		err = io.ErrUnexpectedEOF
		if _, serr := os.Stat(procRoot + "/" + strconv.Itoa(p.pid)); errors.Is(serr, fs.ErrNotExist) {
			err = &goneError{err}
		}
		return fmt.Errorf("proc: read %s at %#x: got %d of %d bytes (process exited or address beyond the task size): %w",
			p.path, addr, n, len(raw), err)
	}
	return ioError(err)
}
