// Package image reads and writes CRIU-format image files.
//
// An image file is a 4-byte little-endian IMG_COMMON magic (IMG_SERVICE for
// STATS and IRMAP_CACHE; nothing for INVENTORY), the 4-byte magic of the image
// type, then entries, each a 4-byte little-endian length followed by that
// many bytes of protobuf (the messages of go-criu's crit/images packages).
// A PAGEMAP image holds one pagemap_head entry then pagemap_entry entries. In
// a payload image (PIPES_DATA, FIFO_DATA, SK_QUEUES) every entry is followed
// by as many raw bytes as a field of the entry says (see ReadPayloads).
// pages-<id>.img files are raw page contents with no header. Images written
// here are read by CRIU's crit and by go-criu's crit package.
//
// Image directories hold secrets (all of a process's memory), so the
// directory is made 0700 and every file 0600, whatever the umask.
//
// Images are untrusted input. Every read checks the framing and the magic,
// bounds entry sizes and counts (MaxEntrySize, MaxEntries,
// MaxPagemapEntries) and payload sizes (MaxPayloadBytes), requires proto2
// required fields, and reports problems as a *FormatError naming the file and
// the entry. A missing file yields an error satisfying
// errors.Is(err, fs.ErrNotExist).
package image

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"google.golang.org/protobuf/proto"
)

// Names of CRIU image files (as in CRIU's image-desc.c and go-criu's crit).
const (
	InventoryName = "inventory.img"
	PstreeName    = "pstree.img"
	FilesName     = "files.img"
	RegFilesName  = "reg-files.img"
)

// CoreName is the per-thread core image, "core-<tid>.img".
func CoreName(tid int) string { return fmt.Sprintf("core-%d.img", tid) }

// MMName is the per-process mm image, "mm-<pid>.img".
func MMName(pid int) string { return fmt.Sprintf("mm-%d.img", pid) }

// PagemapName is the per-process pagemap image, "pagemap-<pid>.img".
func PagemapName(pid int) string { return fmt.Sprintf("pagemap-%d.img", pid) }

// PagesName is the raw page data file named by a pagemap head,
// "pages-<id>.img".
func PagesName(id uint32) string { return fmt.Sprintf("pages-%d.img", id) }

// IDsName is the per-process kernel object ids image, "ids-<pid>.img".
func IDsName(pid int) string { return fmt.Sprintf("ids-%d.img", pid) }

// FSName is the per-process fs (cwd, root, umask) image, "fs-<pid>.img".
func FSName(pid int) string { return fmt.Sprintf("fs-%d.img", pid) }

// FdinfoName is the fd table image, "fdinfo-<files_id>.img", named by the
// files_id of ids-<pid>.img (CRIU's fdinfo_per_id layout).
func FdinfoName(filesID uint32) string { return fmt.Sprintf("fdinfo-%d.img", filesID) }

// CredsName is the legacy per-process creds image, "creds-<pid>.img"
// (current CRIU keeps creds in the core image's thread_core).
func CredsName(pid int) string { return fmt.Sprintf("creds-%d.img", pid) }

// Dir is an image directory. Its methods may be called concurrently (on
// different files).
type Dir struct {
	path string
}

// Create makes path an image directory for a dump: it creates it (and any
// missing parents, 0755) if needed, with mode 0700. Like CRIU, it also dumps
// into an existing directory, whose mode it sets to 0700 if it holds nothing
// but image files (*.img, stats-*, irmap-cache) and logs (*.log); a
// directory with other contents (subdirectories, other files) is refused
// unless its mode already is 0700. Files from an earlier dump are
// overwritten as they are written again.
func Create(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("image: empty directory path")
	}
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("image: create directory: %w", err)
	}
	if err := os.Mkdir(path, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("image: create directory: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("image: %s exists and is not a directory", path)
	}
	if st.Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetgid|os.ModeSetuid) != 0o700 {
		// Tighten a directory that is empty or holds only image files and
		// logs, but never one with other contents: a mistaken "-D /tmp",
		// "-D /" or "-D ~" must not chmod that to 0700.
		ok, err := mayChmod(path)
		if err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
		if !ok {
			return nil, fmt.Errorf("image: %s (mode %v) holds files other than images and logs; "+
				"refusing to change its mode to 0700: use a new or empty directory", path, st.Mode())
		}
		if err := os.Chmod(path, 0o700); err != nil {
			return nil, fmt.Errorf("image: %w", err)
		}
	}
	return &Dir{path: path}, nil
}

// mayChmod reports whether the directory holds nothing but what CRIU or cryo
// put in image directories: image files, logs, stats, the "parent" link of an
// incremental dump, cryo's temporary files, and the descriptors.json runc
// writes there before it starts its checkpoint engine.
func mayChmod(path string) (bool, error) {
	des, err := os.ReadDir(path)
	if err != nil {
		return false, err
	}
	for _, de := range des {
		n := de.Name()
		ok := (n == "parent" && de.Type()&os.ModeSymlink != 0) ||
			(!de.IsDir() && (strings.HasSuffix(n, ".img") || strings.HasSuffix(n, ".log") ||
				strings.HasPrefix(n, "stats-") || n == "irmap-cache" || n == "descriptors.json" ||
				(strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-"))))
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// Open opens an existing image directory for restore or inspection.
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("image: empty directory path")
	}
	path = filepath.Clean(path)
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("image: %s is not a directory", path)
	}
	return &Dir{path: path}, nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// file returns the path of the named file in d after checking that name is a
// plain file name.
func (d *Dir) file(name string) (string, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return "", fmt.Errorf("image: invalid image file name %q", name)
	}
	return filepath.Join(d.path, name), nil
}

// plainMagic checks that magic names an image type that is a plain sequence
// of entries and returns the constructor of its entry type.
func plainMagic(path, magic string) (func() proto.Message, error) {
	if f, ok := entryTypes[magic]; ok {
		return f, nil
	}
	switch {
	case magic == "PAGEMAP":
		return nil, formatErr(path, -1, "PAGEMAP images have a head entry: use WritePagemap/ReadPagemap")
	case payloadTypes[magic].newEntry != nil:
		return nil, formatErr(path, -1, "%s images carry raw payload data after entries: use WritePayloads/ReadPayloads", magic)
	case rawPayloadMagics[magic]:
		return nil, formatErr(path, -1, "%s images carry raw payload data after entries; not supported", magic)
	case isFileMagic(magic):
		return nil, formatErr(path, -1, "no entry type known for magic %s", magic)
	}
	return nil, formatErr(path, -1, "unknown magic name %q", magic)
}

func checkType(path string, i int, magic string, m proto.Message, want proto.Message) error {
	if m == nil || !m.ProtoReflect().IsValid() {
		return formatErr(path, i, "nil entry")
	}
	got, exp := m.ProtoReflect().Descriptor().FullName(), want.ProtoReflect().Descriptor().FullName()
	if got != exp {
		return formatErr(path, i, "%s image holds %s entries, not %s", magic, exp, got)
	}
	return nil
}

// Write writes an image file: name is its file name in d (e.g. CoreName(42)),
// magic the go-criu magic name of its type (e.g. "CORE"), and entries its
// entries, which must be of the type that magic implies and have all
// required fields set. The file is written to a temporary file (mode 0600)
// in d, synced, and renamed to name, so name is never left half-written.
func (d *Dir) Write(name, magic string, entries ...proto.Message) error {
	path, err := d.file(name)
	if err != nil {
		return err
	}
	newT, err := plainMagic(path, magic)
	if err != nil {
		return err
	}
	if len(entries) > MaxEntries {
		return formatErr(path, -1, "%d entries, over the limit of %d", len(entries), MaxEntries)
	}
	want := newT()
	b := header(magic)
	for i, m := range entries {
		if err := checkType(path, i, magic, m, want); err != nil {
			return err
		}
		if b, err = appendEntry(b, path, i, m); err != nil {
			return err
		}
	}
	return d.writeFile(name, path, b)
}

// writeFile atomically replaces name with data.
func (d *Dir) writeFile(name, path string, data []byte) error {
	return d.writeFileFunc(name, path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// writeFileFunc atomically replaces name with what write writes: to a
// temporary file (mode 0600) in d, synced, then renamed to name.
func (d *Dir) writeFileFunc(name, path string, write func(io.Writer) error) (err error) {
	f, err := os.CreateTemp(d.path, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("image: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("image: write %s: %w", path, err)
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if err = write(f); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// open opens the named image (not following a symlink) and checks that it
// is of type magic: the reader stands at the first entry. The caller
// closes f.
func (d *Dir) open(name, magic string) (rd *reader, f *os.File, err error) {
	path, err := d.file(name)
	if err != nil {
		return nil, nil, err
	}
	f, size, err := openImage(path, true)
	if err != nil {
		return nil, nil, err
	}
	rd = newReader(f, size, path)
	if _, err := rd.readMagic(magic); err != nil {
		f.Close()
		return nil, nil, err
	}
	return rd, f, nil
}

// read opens the named image, checks that it is of type magic, and reads its
// entries.
func (d *Dir) read(name, magic string, first, max int, newEntry func(i int) proto.Message) ([]proto.Message, error) {
	rd, f, err := d.open(name, magic)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return rd.entries(first, max, newEntry)
}

// ReadAll reads all entries of the named image, which must be of type magic.
// The entries are of the type magic implies (see NewEntry).
func (d *Dir) ReadAll(name, magic string) ([]proto.Message, error) {
	path, err := d.file(name)
	if err != nil {
		return nil, err
	}
	newT, err := plainMagic(path, magic)
	if err != nil {
		return nil, err
	}
	return d.read(name, magic, 0, MaxEntries, func(int) proto.Message { return newT() })
}

// ReadEntries reads all entries of the named image of type magic as messages
// of type T, which must be the type magic implies:
//
//	procs, err := image.ReadEntries[*pstree.PstreeEntry](d, image.PstreeName, "PSTREE")
func ReadEntries[T proto.Message](d *Dir, name, magic string) ([]T, error) {
	path, err := d.file(name)
	if err != nil {
		return nil, err
	}
	newT, err := plainMagic(path, magic)
	if err != nil {
		return nil, err
	}
	var zero T
	if any(zero) == nil {
		return nil, formatErr(path, -1, "ReadEntries needs a concrete message type")
	}
	mt := zero.ProtoReflect().Type()
	if got, want := mt.Descriptor().FullName(), newT().ProtoReflect().Descriptor().FullName(); got != want {
		return nil, formatErr(path, -1, "%s image holds %s entries, not %s", magic, want, got)
	}
	ms, err := d.read(name, magic, 0, MaxEntries, func(int) proto.Message { return mt.New().Interface() })
	if err != nil {
		return nil, err
	}
	out := make([]T, len(ms))
	for i, m := range ms {
		out[i] = m.(T)
	}
	return out, nil
}

// ReadOne reads the named image of type magic, which must hold exactly one
// entry, into into (which must be of the type magic implies).
func (d *Dir) ReadOne(name, magic string, into proto.Message) error {
	path, err := d.file(name)
	if err != nil {
		return err
	}
	newT, err := plainMagic(path, magic)
	if err != nil {
		return err
	}
	if err := checkType(path, -1, magic, into, newT()); err != nil {
		return err
	}
	ms, err := d.read(name, magic, 0, 1, func(int) proto.Message { return into })
	if err != nil {
		var fe *FormatError
		if errors.As(err, &fe) && fe.Entry == 1 {
			return formatErr(path, -1, "expected exactly one entry, found more")
		}
		return err
	}
	if len(ms) == 0 {
		return formatErr(path, -1, "expected exactly one entry, found none")
	}
	return nil
}
