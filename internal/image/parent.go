package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// ParentName is the symbolic link an incremental dump writes into its
// images directory, pointing at the previous dump's directory (CRIU's
// "parent", made from --prev-images-dir): pagemap entries flagged
// PagemapInParent are found there.
const ParentName = "parent"

// MaxParentDepth bounds a chain of parents (pre-dumps before a dump).
const MaxParentDepth = 64

// LinkParent makes d's parent link point at target, as given (CRIU writes
// --prev-images-dir as is: "../DIR1" is relative to d). A link or file of
// that name left by an earlier dump into d is replaced.
func (d *Dir) LinkParent(target string) error {
	path := filepath.Join(d.path, ParentName)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("image: %w", err)
	}
	if err := os.Symlink(target, path); err != nil {
		return fmt.Errorf("image: parent link: %w", err)
	}
	return nil
}

// Parent opens the directory d's parent link points at, or returns nil
// (and no error) when d has none. The images are untrusted: the link must
// be relative and must not leave the directory that holds d (as "../DIR1"
// does not), and the target must be a real directory, reached without
// following any other symbolic link, so that a planted link cannot make a
// restore read pages from anywhere else.
func (d *Dir) Parent() (*Dir, error) {
	path := filepath.Join(d.path, ParentName)
	target, err := os.Readlink(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("image: %s: %w", path, err)
	}
	if filepath.IsAbs(target) {
		return nil, fmt.Errorf("image: %s points at %q: only a relative link to a sibling directory is followed", path, target)
	}
	clean := filepath.Clean(target)
	rest, ok := strings.CutPrefix(clean, "../")
	if !ok || rest == "" || strings.Contains(rest, "/") || rest == ".." {
		return nil, fmt.Errorf("image: %s points at %q: only a sibling directory (../NAME) is followed", path, target)
	}
	real := filepath.Join(filepath.Dir(d.path), rest)
	var st unix.Stat_t
	if err := unix.Lstat(real, &st); err != nil {
		return nil, fmt.Errorf("image: parent of %s: %w", d.path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("image: parent of %s: %s is not a directory", d.path, real)
	}
	return Open(real)
}
