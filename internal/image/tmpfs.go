package image

import (
	"fmt"
	"io"
	"os"
)

// TmpfsName is CRIU's image of a tmpfs's contents: a gzipped tar, no
// magic, named after the tmpfs's device (the kernel's major<<20 | minor).
func TmpfsName(dev uint32) string { return fmt.Sprintf("tmpfs-dev-%d.tar.gz.img", dev) }

// WriteTmpfs writes tmpfs-dev-DEV.tar.gz.img with what write writes,
// atomically (mode 0600).
func (d *Dir) WriteTmpfs(dev uint32, write func(io.Writer) error) error {
	name := TmpfsName(dev)
	path, err := d.file(name)
	if err != nil {
		return err
	}
	return d.writeFileFunc(name, path, write)
}

// OpenTmpfs opens tmpfs-dev-DEV.tar.gz.img for reading; it must be a
// regular file, not a symlink.
func (d *Dir) OpenTmpfs(dev uint32) (*os.File, error) { return d.openRaw(TmpfsName(dev)) }
