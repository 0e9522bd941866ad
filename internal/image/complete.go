package image

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// A directory is a whole dump only if it holds an inventory: a dump writes
// it last, once every other image is on disk (SyncAll), so a dump that
// failed or was killed half-way, or whose disk filled up, never leaves a
// directory a restore takes for a complete one.

// ErrIncomplete is wrapped by the error of CheckComplete for a directory
// without an inventory.
var ErrIncomplete = errors.New("no inventory.img: not a complete dump (a dump that failed, was interrupted or is still running)")

// Invalidate removes the inventory left by an earlier dump into d and
// makes that durable, before a new dump overwrites any other image: a mix
// of old and new images must never look whole.
func (d *Dir) Invalidate() error {
	path, err := d.file(InventoryName)
	if err != nil {
		return err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image: remove the old %s: %w", path, err)
	}
	return d.syncDir()
}

// SyncAll flushes every regular file of d to disk, then d itself (the
// names its renames gave), so that an inventory written afterwards is
// never on disk before the images it describes.
func (d *Dir) SyncAll() error {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if err := syncFile(filepath.Join(d.path, e.Name())); err != nil {
			return err
		}
	}
	return d.syncDir()
}

// syncDir flushes d's entries (names created, renamed or removed).
func (d *Dir) syncDir() error {
	fd, err := unix.Open(d.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("image: sync %s: %w", d.path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("image: sync %s: %w", d.path, err)
	}
	return nil
}

// syncFile flushes one file (never following a symbolic link).
func syncFile(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil // a temporary file that went meanwhile
		}
		return fmt.Errorf("image: sync %s: %w", path, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("image: sync %s: %w", path, err)
	}
	return nil
}

// CheckComplete refuses a directory without an inventory (see
// ErrIncomplete).
func (d *Dir) CheckComplete() error {
	path, err := d.file(InventoryName)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("image directory %s: %w", d.path, ErrIncomplete)
	}
	return nil
}
