package image

import (
	"fmt"
	"io"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"google.golang.org/protobuf/proto"
)

// GhostName is CRIU's image of a file that was deleted while open.
func GhostName(id uint32) string { return fmt.Sprintf("ghost-file-%d.img", id) }

// MaxGhostBytes bounds the contents of one ghost file.
const MaxGhostBytes = 1 << 30

// WriteGhost writes a ghost file image: the entry, then the file's bytes
// (CRIU's unchunked layout, which its crit reads).
func (d *Dir) WriteGhost(id uint32, e *ghostfile.GhostFileEntry, data []byte) error {
	name := GhostName(id)
	path, err := d.file(name)
	if err != nil {
		return err
	}
	if e.GetChunks() || e.GetSize() != uint64(len(data)) {
		return formatErr(path, 0, "ghost entry of %d bytes (chunks %v) with %d bytes of data", e.GetSize(), e.GetChunks(), len(data))
	}
	b, err := appendEntry(header("GHOST_FILE"), path, 0, e)
	if err != nil {
		return err
	}
	return d.writeFile(name, path, append(b, data...))
}

// ReadGhost reads what WriteGhost wrote; the data must be exactly the
// entry's size.
func (d *Dir) ReadGhost(id uint32) (*ghostfile.GhostFileEntry, []byte, error) {
	path, err := d.file(GhostName(id))
	if err != nil {
		return nil, nil, err
	}
	f, size, err := openImage(path, true)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	rd := newReader(f, size, path)
	if _, err := rd.readMagic("GHOST_FILE"); err != nil {
		return nil, nil, err
	}
	b, err := rd.next(0)
	if err != nil {
		if err == io.EOF {
			return nil, nil, formatErr(path, 0, "no ghost entry")
		}
		return nil, nil, err
	}
	e := &ghostfile.GhostFileEntry{}
	if err := proto.Unmarshal(b, e); err != nil {
		return nil, nil, formatErr(path, 0, "%v", err)
	}
	if e.GetChunks() || e.GetSize() > MaxGhostBytes {
		return nil, nil, formatErr(path, 0, "ghost of %d bytes (chunks %v) is not supported", e.GetSize(), e.GetChunks())
	}
	data, err := rd.raw(0, int(e.GetSize()))
	if err != nil {
		return nil, nil, err
	}
	return e, data, nil
}
