package image

import (
	"fmt"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
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
	rd, f, err := d.open(GhostName(id), "GHOST_FILE")
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	e := &ghostfile.GhostFileEntry{}
	if err := rd.first(e, "ghost"); err != nil {
		return nil, nil, err
	}
	if e.GetChunks() || e.GetSize() > MaxGhostBytes {
		return nil, nil, formatErr(rd.path, 0, "ghost of %d bytes (chunks %v) is not supported", e.GetSize(), e.GetChunks())
	}
	data, err := rd.raw(0, int(e.GetSize()))
	if err != nil {
		return nil, nil, err
	}
	return e, data, nil
}
