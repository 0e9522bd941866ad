package image

import (
	"bytes"
	"fmt"
	"io"
	"os"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
)

// GhostName is CRIU's image of a file that was deleted while open.
func GhostName(id uint32) string { return fmt.Sprintf("ghost-file-%d.img", id) }

// MaxGhostBytes bounds the contents of one ghost file.
const MaxGhostBytes = 1 << 30

// MaxGhostTotal bounds the contents of all the ghost files of one restore
// together: each is streamed from the images, never held in memory, but
// they take disk space until the restored tree lets them go.
const MaxGhostTotal = 2 << 30

// WriteGhost writes a ghost file image: the entry, then the file's bytes
// (CRIU's unchunked layout, which its crit reads).
func (d *Dir) WriteGhost(id uint32, e *ghostfile.GhostFileEntry, data []byte) error {
	if e.GetChunks() || e.GetSize() != uint64(len(data)) {
		return formatErr(GhostName(id), 0, "ghost entry of %d bytes (chunks %v) with %d bytes of data", e.GetSize(), e.GetChunks(), len(data))
	}
	return d.WriteGhostFrom(id, e, bytes.NewReader(data))
}

// WriteGhostFrom writes a ghost file image whose e.Size bytes of contents
// come from r, copied sparsely (runs of zeros become holes).
func (d *Dir) WriteGhostFrom(id uint32, e *ghostfile.GhostFileEntry, r io.Reader) error {
	name := GhostName(id)
	path, err := d.file(name)
	if err != nil {
		return err
	}
	if e.GetChunks() || e.GetSize() > MaxGhostBytes {
		return formatErr(path, 0, "ghost of %d bytes (chunks %v) is not supported", e.GetSize(), e.GetChunks())
	}
	b, err := appendEntry(header("GHOST_FILE"), path, 0, e)
	if err != nil {
		return err
	}
	return d.writeFileFunc(name, path, func(w io.Writer) error {
		f := w.(*os.File)
		if _, err := f.Write(b); err != nil {
			return err
		}
		return CopySparse(f, r, int64(len(b)), int64(e.GetSize()))
	})
}

// GhostData is the contents of a ghost file image, read in place.
type GhostData struct {
	*io.SectionReader
	f *os.File
}

// Close closes the image file.
func (g *GhostData) Close() error { return g.f.Close() }

// OpenGhost reads the entry of a ghost file image and returns its
// contents as a reader of exactly the entry's size, checked to be in the
// file: nothing is read into memory.
func (d *Dir) OpenGhost(id uint32) (*ghostfile.GhostFileEntry, *GhostData, error) {
	rd, f, err := d.open(GhostName(id), "GHOST_FILE")
	if err != nil {
		return nil, nil, err
	}
	e := &ghostfile.GhostFileEntry{}
	if err := rd.first(e, "ghost"); err != nil {
		f.Close()
		return nil, nil, err
	}
	if e.GetChunks() || e.GetSize() > MaxGhostBytes {
		f.Close()
		return nil, nil, formatErr(rd.path, 0, "ghost of %d bytes (chunks %v) is not supported (limit %d)", e.GetSize(), e.GetChunks(), MaxGhostBytes)
	}
	if rd.remain < 0 || uint64(rd.remain) < e.GetSize() {
		f.Close()
		return nil, nil, formatErr(rd.path, 0, "truncated data: %d bytes needed, only %d left in file", e.GetSize(), rd.remain)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("image: %w", err)
	}
	off := st.Size() - rd.remain
	return e, &GhostData{io.NewSectionReader(f, off, int64(e.GetSize())), f}, nil
}

// ReadGhost reads what WriteGhost wrote, whole; the data must be exactly
// the entry's size.
func (d *Dir) ReadGhost(id uint32) (*ghostfile.GhostFileEntry, []byte, error) {
	e, g, err := d.OpenGhost(id)
	if err != nil {
		return nil, nil, err
	}
	defer g.Close()
	data := make([]byte, e.GetSize())
	if _, err := io.ReadFull(g, data); err != nil {
		return nil, nil, fmt.Errorf("image: %s: %w", GhostName(id), err)
	}
	return e, data, nil
}

// sparseBlock is the unit CopySparse reads and, when all zeros, skips.
const sparseBlock = 64 << 10

// CopySparse writes size bytes from r to f at offset off on, leaving
// holes where a whole block is zeros, and sizes f to end there: a sparse
// file costs neither memory nor disk.
func CopySparse(f *os.File, r io.Reader, off, size int64) error {
	buf := make([]byte, sparseBlock)
	zero := make([]byte, sparseBlock)
	for done := int64(0); done < size; {
		n := int(min(int64(len(buf)), size-done))
		if _, err := io.ReadFull(r, buf[:n]); err != nil {
			return fmt.Errorf("%d of %d bytes: %w", done, size, err)
		}
		if !bytes.Equal(buf[:n], zero[:n]) {
			if _, err := f.WriteAt(buf[:n], off+done); err != nil {
				return err
			}
		}
		done += int64(n)
	}
	return f.Truncate(off + size)
}
