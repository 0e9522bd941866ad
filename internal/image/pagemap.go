package image

import (
	"errors"
	"fmt"
	"math"
	"os"
	"syscall"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/proto"
)

// Flags of pagemap_entry.flags.
const (
	PagemapInParent uint32 = 1 << 0 // PE_PARENT: the pages are in the parent (previous) dump
	PagemapLazy     uint32 = 1 << 1 // PE_LAZY: the pages may be restored lazily
	PagemapPresent  uint32 = 1 << 2 // PE_PRESENT: the pages are in pages-<id>.img
)

// pageSize is the unit of pagemap_entry.nr_pages; CRIU uses the page size of
// the machine that dumped.
var pageSize = uint64(os.Getpagesize())

// WritePagemap writes pagemap-<pid>.img: a head naming pages-<pagesID>.img,
// then entries, which must pass the checks ReadPagemap makes.
func (d *Dir) WritePagemap(pid int, pagesID uint32, entries []*pagemap.PagemapEntry) error {
	return d.WritePagemapNamed(PagemapName(pid), pagesID, entries)
}

// WritePagemapNamed writes a pagemap image under another name, such as
// pagemap-shmem-<shmid>.img, whose vaddrs are offsets in the object.
func (d *Dir) WritePagemapNamed(name string, pagesID uint32, entries []*pagemap.PagemapEntry) error {
	path, err := d.file(name)
	if err != nil {
		return err
	}
	if len(entries) > MaxPagemapEntries {
		return formatErr(path, -1, "%d pagemap entries, over the limit of %d", len(entries), MaxPagemapEntries)
	}
	if i, err := checkPagemap(entries); err != nil {
		return &FormatError{Path: path, Entry: i + 1, Err: err}
	}
	b, err := appendEntry(header("PAGEMAP"), path, 0, &pagemap.PagemapHead{PagesId: proto.Uint32(pagesID)})
	if err != nil {
		return err
	}
	for i, e := range entries {
		if b, err = appendEntry(b, path, i+1, e); err != nil {
			return err
		}
	}
	return d.writeFile(name, path, b)
}

// ReadPagemap reads pagemap-<pid>.img and returns the id of its pages file
// and its entries. The entries are checked: vaddr page-aligned, nr_pages > 0,
// vaddr + nr_pages pages not overflowing, entries sorted by address and not
// overlapping. Errors name the file and the entry (the head is entry 0).
func (d *Dir) ReadPagemap(pid int) (pagesID uint32, entries []*pagemap.PagemapEntry, err error) {
	return d.ReadPagemapNamed(PagemapName(pid))
}

// ReadPagemapNamed reads a pagemap image written by WritePagemapNamed.
func (d *Dir) ReadPagemapNamed(name string) (pagesID uint32, entries []*pagemap.PagemapEntry, err error) {
	path, err := d.file(name)
	if err != nil {
		return 0, nil, err
	}
	f, size, err := openImage(path, true)
	if err != nil {
		return 0, nil, err
	}
	defer f.Close()
	return readPagemap(newReader(f, size, path))
}

func readPagemap(rd *reader) (uint32, []*pagemap.PagemapEntry, error) {
	if _, err := rd.readMagic("PAGEMAP"); err != nil {
		return 0, nil, err
	}
	ms, err := rd.entries(0, MaxPagemapEntries+1, newPagemapEntry)
	if err != nil {
		return 0, nil, err
	}
	if len(ms) == 0 {
		return 0, nil, formatErr(rd.path, -1, "missing pagemap head entry")
	}
	entries := make([]*pagemap.PagemapEntry, len(ms)-1)
	for i, m := range ms[1:] {
		entries[i] = m.(*pagemap.PagemapEntry)
	}
	if i, err := checkPagemap(entries); err != nil {
		return 0, nil, &FormatError{Path: rd.path, Entry: i + 1, Err: err}
	}
	return ms[0].(*pagemap.PagemapHead).GetPagesId(), entries, nil
}

// newPagemapEntry returns the message for entry i of a pagemap image.
func newPagemapEntry(i int) proto.Message {
	if i == 0 {
		return &pagemap.PagemapHead{}
	}
	return &pagemap.PagemapEntry{}
}

// checkPagemap checks a list of pagemap entries and returns the index of the
// first bad one.
func checkPagemap(entries []*pagemap.PagemapEntry) (int, error) {
	var prevEnd uint64
	for i, e := range entries {
		if e == nil {
			return i, errors.New("nil entry")
		}
		va, n := e.GetVaddr(), uint64(e.GetNrPages())
		if va%pageSize != 0 {
			return i, fmt.Errorf("vaddr %#x is not page-aligned", va)
		}
		if n == 0 {
			return i, fmt.Errorf("vaddr %#x: nr_pages is 0", va)
		}
		size := n * pageSize // n < 2^32 and pageSize is far below 2^32: no overflow
		if size > math.MaxUint64-va {
			return i, fmt.Errorf("vaddr %#x + %d pages overflows the address space", va, n)
		}
		if i > 0 && va < prevEnd {
			return i, fmt.Errorf("vaddr %#x is below the end %#x of the previous entry (entries must be sorted and not overlap)", va, prevEnd)
		}
		prevEnd = va + size
	}
	return 0, nil
}

// CreatePages creates pages-<id>.img (mode 0600) for writing raw page data.
// An existing file of that name is removed first, so the new file is always
// fresh and never a symlink or hard link planted in the directory.
func (d *Dir) CreatePages(id uint32) (*os.File, error) {
	path, err := d.file(PagesName(id))
	if err != nil {
		return nil, err
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("image: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("image: %w", err)
	}
	return f, nil
}

// OpenPages opens pages-<id>.img for reading. It must be a regular file (not
// a symlink, FIFO or device).
func (d *Dir) OpenPages(id uint32) (*os.File, error) { return d.openRaw(PagesName(id)) }

// openRaw opens an image of raw data (no magic) for reading: a regular
// file, not a symlink, FIFO or device.
func (d *Dir) openRaw(name string) (*os.File, error) {
	path, err := d.file(name)
	if err != nil {
		return nil, err
	}
	f, _, err := openImage(path, true)
	return f, err
}
