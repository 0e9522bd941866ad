package restore

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/bufpool"
	"github.com/cryo-cr/cryo/internal/progress"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// fillBufSize is the size of each reused buffer the pages image is read
// into. Reused buffers are already faulted in, so neither pread nor
// process_vm_writev pays a first-access cost on the source side, which on
// a paravirtualized guest is what capped the old copy from a mapping of the
// image (see docs/speed.md).
const fillBufSize = 4 << 20

// fillBufs is how many buffers circulate between the reader and the
// writer: one being read, one being written, one spare to absorb jitter.
const fillBufs = 3

// maxIovecs bounds the remote iovecs of one process_vm_writev (IOV_MAX).
const maxIovecs = 1024

// fillSlice is one buffer's worth of the pages image: the bytes at
// [off, off+size) of the file, going to the remote ranges in order.
type fillSlice struct {
	off, size uint64
	remote    []unix.RemoteIovec
}

// add appends n bytes going to addr to the slice, in the last remote range
// when they follow it.
func (sl *fillSlice) add(addr, n uint64) {
	if k := len(sl.remote) - 1; k >= 0 && uint64(sl.remote[k].Base)+uint64(sl.remote[k].Len) == addr {
		sl.remote[k].Len += int(n)
	} else {
		sl.remote = append(sl.remote, unix.RemoteIovec{Base: uintptr(addr), Len: int(n)})
	}
	sl.size += n
}

// splitFill cuts the pagemap into buffer-sized slices laid out back to back
// in the pages image, each with the destination ranges of its bytes.
// Pages inside the spans of skip (sorted, disjoint: areas premapped in phase
// one, see cow.go) are left out.
func splitFill(pm []*pagemapEntry, bufSize uint64, skip []span) []fillSlice {
	var out []fillSlice
	var cur fillSlice
	var off uint64
	for _, pe := range pm {
		addr := pe.GetVaddr()
		size := uint64(pe.GetNrPages()) * pageSize
		for len(skip) > 0 && skip[0].end <= addr {
			skip = skip[1:]
		}
		if len(skip) > 0 && skip[0].start <= addr {
			// checkVmas keeps a page run inside one area: all of it.
			off += size
			if cur.size > 0 {
				out = append(out, cur)
			}
			cur = fillSlice{off: off}
			continue
		}
		for size > 0 {
			if cur.size == bufSize || len(cur.remote) == maxIovecs {
				out = append(out, cur)
				cur = fillSlice{off: off}
			}
			n := min(size, bufSize-cur.size)
			cur.add(addr, n)
			addr, off, size = addr+n, off+n, size-n
		}
	}
	if cur.size > 0 {
		out = append(out, cur)
	}
	return out
}

// filled is a buffer holding one slice, or the error that stopped reading.
type filled struct {
	sl  fillSlice
	buf []byte
	err error
}

// fillPages writes the pages image into the new process. A reader
// goroutine preads the image into a few reused buffers while this
// goroutine writes the previous buffer into the tracee with
// process_vm_writev, so that the two cores work at once. The target pages
// are fresh: the kernel allocates them as process_vm_writev faults them in
// (huge pages where the area allows them, see applyHugeAdvice), which is
// cheaper than populating them first.
func (p *process) fillPages() error {
	if len(p.c.pagemap) == 0 {
		return nil
	}
	if hasInParent(p.c.pagemap) {
		return p.fillChain()
	}
	start := time.Now()
	f, err := p.r.dir.OpenPages(p.c.pagesID)
	if err != nil {
		return err
	}
	defer f.Close()
	var total uint64
	for _, pe := range p.c.pagemap {
		total += uint64(pe.GetNrPages()) * pageSize
	}
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pages image: %w", err)
	}
	if uint64(st.Size()) != total {
		return fmt.Errorf("%s: %d bytes, pagemap-%d.img needs %d", f.Name(), st.Size(), p.c.pid, total)
	}
	// The whole image is read once, front to back.
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	// Buffers no bigger than the image: a small process does not pay for
	// faulting in 12 MiB of fresh buffers.
	bufSize := min(fillBufSize, total)
	u := p.openUffdFill()
	defer u.close()
	slices := splitFill(p.c.pagemap, bufSize, p.cowSpans())
	for _, sl := range slices {
		p.r.opts.Progress.Expect(int64(sl.size))
	}
	if err := writeSlices(p.pid, f, slices, &p.r.bufs, int(bufSize), u, p.r.opts.Progress); err != nil {
		return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
	}
	for _, s := range p.cowSpans() {
		for _, pe := range p.c.pagemap {
			if pe.GetVaddr() >= s.start && pe.GetVaddr() < s.end {
				total -= uint64(pe.GetNrPages()) * pageSize
			}
		}
	}
	p.r.pagesRestored += total / pageSize
	p.r.memFill += time.Since(start)
	p.r.logf("restored %d bytes of memory in %v", total, time.Since(start))
	return nil
}

// writeSlices copies every slice of the image f into process pid: reading
// in one goroutine, writing in the caller's.
func writeSlices(pid int, f *os.File, slices []fillSlice, pool *bufpool.Pool, bufSize int, u *uffdFill, meter *progress.Meter) error {
	n := min(fillBufs, len(slices))
	free := make(chan []byte, n)
	for i := 0; i < n; i++ {
		free <- pool.Get(bufSize)
	}
	defer func() {
		// The reader has stopped (stop closed, full drained or abandoned):
		// only the buffers back in free are certainly unused.
		for {
			select {
			case b := <-free:
				pool.Put(b)
			default:
				return
			}
		}
	}()
	full := make(chan filled, fillBufs)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(full)
		for _, sl := range slices {
			var buf []byte
			select {
			case buf = <-free:
			case <-stop:
				return
			}
			b := buf[:sl.size]
			_, err := readFull(f, b, int64(sl.off))
			select {
			case full <- filled{sl: sl, buf: buf, err: err}:
			case <-stop:
				return
			}
			if err != nil {
				return
			}
		}
	}()
	for fl := range full {
		if fl.err != nil {
			return fmt.Errorf("read %s at %d: %w", f.Name(), fl.sl.off, fl.err)
		}
		if err := writeSliceVia(pid, fl.buf[:fl.sl.size], fl.sl.remote, u); err != nil {
			return err
		}
		meter.Add(int64(fl.sl.size))
		free <- fl.buf
	}
	return nil
}

// readFull reads len(b) bytes at off, or fails.
func readFull(f *os.File, b []byte, off int64) (int, error) {
	n, err := f.ReadAt(b, off)
	if err == nil && n < len(b) {
		err = fmt.Errorf("short read: %d of %d bytes", n, len(b))
	}
	return n, err
}

// writeSlice writes buf to the remote ranges of process pid, resuming after
// a partial write.
func writeSlice(pid int, buf []byte, remote []unix.RemoteIovec) error {
	done := 0
	for len(remote) > 0 {
		local := []unix.Iovec{{Base: &buf[done]}}
		local[0].SetLen(len(buf) - done)
		n, err := unix.ProcessVMWritev(pid, local, remote, 0)
		if err != nil {
			return fmt.Errorf("write memory at %#x: %w", remote[0].Base, err)
		}
		if n == 0 {
			return fmt.Errorf("write memory at %#x: no progress", remote[0].Base)
		}
		done += n
		// Drop what was written from the remote list.
		for n > 0 {
			if n < remote[0].Len {
				remote[0].Base += uintptr(n)
				remote[0].Len -= n
				break
			}
			n -= remote[0].Len
			remote = remote[1:]
		}
	}
	return nil
}

// writeSliceVia writes buf to the remote ranges: the parts in areas
// registered with u by UFFDIO_COPY, the others with process_vm_writev.
func writeSliceVia(pid int, buf []byte, remote []unix.RemoteIovec, u *uffdFill) error {
	if u == nil {
		return writeSlice(pid, buf, remote)
	}
	var off uint64
	for _, r := range remote {
		err := u.split(uint64(r.Base), uint64(r.Len), func(addr, n uint64, viaUffd bool) error {
			src := buf[off : off+n]
			off += n
			if viaUffd {
				return u.copy(addr, src)
			}
			return writeSlice(pid, src, []unix.RemoteIovec{{Base: uintptr(addr), Len: int(n)}})
		})
		if err != nil {
			return err
		}
	}
	return nil
}
