package image

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"

	criumagic "github.com/checkpoint-restore/go-criu/v7/magic"
	"google.golang.org/protobuf/proto"
)

// Limits applied when reading (and writing) images. Images are untrusted
// input; these bound the memory a hostile image can make cryo allocate.
const (
	// MaxEntrySize is the largest single protobuf entry cryo reads or
	// writes, in bytes (the value of one length word).
	MaxEntrySize = 16 << 20
	// MaxEntries is the largest number of entries in one image file.
	MaxEntries = 1 << 20
	// MaxPagemapEntries is the largest number of pagemap_entry entries in
	// one pagemap image (not counting the head). 4M entries describe, for
	// example, every other page of a 32 GiB sparse mapping.
	MaxPagemapEntries = 1 << 22
	// MaxPayloadBytes is the largest total of raw payload bytes (pipe
	// buffers, socket queues) in one payload image (see ReadPayloads).
	MaxPayloadBytes = 1 << 30
)

// FormatError reports a malformed image file.
type FormatError struct {
	Path string // the image file
	// Entry is the 0-based index of the offending entry in the file (in a
	// pagemap image the head is entry 0), or -1 when the error concerns
	// the file header or the file as a whole.
	Entry int
	Err   error
}

func (e *FormatError) Error() string {
	if e.Entry < 0 {
		return fmt.Sprintf("image %s: %v", e.Path, e.Err)
	}
	return fmt.Sprintf("image %s: entry %d: %v", e.Path, e.Entry, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

func formatErr(path string, entry int, format string, args ...any) error {
	return &FormatError{Path: path, Entry: entry, Err: fmt.Errorf(format, args...)}
}

var magics = sync.OnceValue(criumagic.LoadMagic)

func magicValue(name string) (uint32, bool) {
	v, ok := magics().ByName[name]
	return uint32(v), ok
}

// describeMagic names a magic value for error messages: "CORE (0x55055547)".
func describeMagic(v uint32) string {
	if name, ok := magics().ByValue[uint64(v)]; ok {
		return fmt.Sprintf("%s (%#08x)", name, v)
	}
	return fmt.Sprintf("unknown magic %#08x", v)
}

func describeName(name string) string {
	v, _ := magicValue(name)
	return fmt.Sprintf("%s (%#08x)", name, v)
}

// isServiceMagic reports whether an image of this type starts with
// IMG_SERVICE rather than IMG_COMMON.
func isServiceMagic(name string) bool { return name == "STATS" || name == "IRMAP_CACHE" }

// isFileMagic reports whether name is the magic of an image type (rather
// than one of the header prefixes).
func isFileMagic(name string) bool {
	switch name {
	case "IMG_COMMON", "IMG_SERVICE", "CRTOOLS_IMAGES_V1_1", "":
		return false
	}
	_, ok := magicValue(name)
	return ok
}

// header returns the bytes an image file of the given type starts with:
// the INVENTORY magic alone, or IMG_COMMON / IMG_SERVICE followed by the
// type's magic.
func header(magic string) []byte {
	v, _ := magicValue(magic)
	if magic == "INVENTORY" {
		return binary.LittleEndian.AppendUint32(nil, v)
	}
	prefix := "IMG_COMMON"
	if isServiceMagic(magic) {
		prefix = "IMG_SERVICE"
	}
	p, _ := magicValue(prefix)
	b := binary.LittleEndian.AppendUint32(nil, p)
	return binary.LittleEndian.AppendUint32(b, v)
}

// reader decodes the framing of one image file.
type reader struct {
	r      *bufio.Reader
	path   string
	remain int64 // bytes left in the file, or -1 if unknown
	buf    []byte
}

func newReader(r io.Reader, size int64, path string) *reader {
	return &reader{r: bufio.NewReaderSize(r, 64<<10), path: path, remain: size}
}

// word reads a little-endian 32-bit word. n is the number of bytes read; err
// is io.EOF only if n == 0.
func (rd *reader) word() (v uint32, n int, err error) {
	var b [4]byte
	n, err = io.ReadFull(rd.r, b[:])
	if rd.remain >= 0 {
		rd.remain -= int64(n)
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			err = io.EOF
		}
		if err == io.EOF && n == 0 {
			return 0, 0, io.EOF
		}
		return 0, n, err
	}
	return binary.LittleEndian.Uint32(b[:]), 4, nil
}

// readMagic reads and checks the file header and returns the image type's
// magic name. If expect is not empty the image must be of that type.
func (rd *reader) readMagic(expect string) (string, error) {
	w1, n, err := rd.word()
	if err != nil {
		return "", rd.headerErr(n, err)
	}
	inv, _ := magicValue("INVENTORY")
	common, _ := magicValue("IMG_COMMON")
	service, _ := magicValue("IMG_SERVICE")

	var name, found string
	switch w1 {
	case inv:
		name, found = "INVENTORY", describeName("INVENTORY")
	case common, service:
		w2, n, err := rd.word()
		if err != nil {
			return "", rd.headerErr(n, err)
		}
		found = describeMagic(w2)
		n2 := magics().ByValue[uint64(w2)]
		switch {
		case !isFileMagic(n2) || n2 == "INVENTORY":
			// INVENTORY never has a prefix.
			if n2 != "" {
				found = fmt.Sprintf("%s after %s", found, describeMagic(w1))
			}
		case isServiceMagic(n2) != (w1 == service):
			found = fmt.Sprintf("%s after %s", found, describeMagic(w1))
		default:
			name = n2
		}
	default:
		found = describeMagic(w1)
	}
	switch {
	case expect != "" && name != expect:
		return "", formatErr(rd.path, -1, "wrong magic: expected %s, found %s", describeName(expect), found)
	case name == "":
		return "", formatErr(rd.path, -1, "not a CRIU image: %s", found)
	}
	return name, nil
}

func (rd *reader) headerErr(n int, err error) error {
	switch {
	case err == io.EOF && n == 0:
		return formatErr(rd.path, -1, "empty or truncated file: missing magic")
	case err == io.EOF:
		return formatErr(rd.path, -1, "truncated magic: %d of 4 bytes", n)
	}
	return &FormatError{Path: rd.path, Entry: -1, Err: err}
}

// next reads the next length-prefixed entry. It returns io.EOF at a clean
// end of file. The returned slice is only valid until the next call.
func (rd *reader) next(i int) ([]byte, error) {
	size, n, err := rd.word()
	switch {
	case err == io.EOF && n == 0:
		return nil, io.EOF
	case err == io.EOF:
		return nil, formatErr(rd.path, i, "trailing partial length word: %d of 4 bytes", n)
	case err != nil:
		return nil, &FormatError{Path: rd.path, Entry: i, Err: err}
	}
	if size > MaxEntrySize {
		return nil, formatErr(rd.path, i, "entry length %d exceeds the limit of %d bytes", size, MaxEntrySize)
	}
	if rd.remain >= 0 && int64(size) > rd.remain {
		return nil, formatErr(rd.path, i, "truncated entry: length word says %d bytes, only %d left in file", size, rd.remain)
	}
	if rd.remain < 0 && int(size) > cap(rd.buf) {
		// Size unknown: let the buffer grow with the data actually there
		// instead of trusting the length word.
		var bb bytes.Buffer
		bb.Grow(min(int(size), 64<<10))
		m, err := io.CopyN(&bb, rd.r, int64(size))
		if err != nil {
			if err == io.EOF {
				return nil, formatErr(rd.path, i, "truncated entry: length word says %d bytes, only %d left in file", size, m)
			}
			return nil, &FormatError{Path: rd.path, Entry: i, Err: err}
		}
		rd.buf = bb.Bytes()
		return rd.buf, nil
	}
	if cap(rd.buf) < int(size) {
		rd.buf = make([]byte, size)
	}
	b := rd.buf[:size]
	n, err = io.ReadFull(rd.r, b)
	if rd.remain >= 0 {
		rd.remain -= int64(n)
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return nil, formatErr(rd.path, i, "truncated entry: length word says %d bytes, only %d left in file", size, n)
		}
		return nil, &FormatError{Path: rd.path, Entry: i, Err: err}
	}
	return b, nil
}

// entries reads all remaining entries. newEntry(i) returns the message to
// unmarshal entry i into (i counts from first, the index of the first entry
// read here within the file). At most max entries are accepted.
func (rd *reader) entries(first, max int, newEntry func(i int) proto.Message) ([]proto.Message, error) {
	var out []proto.Message
	for i := first; ; i++ {
		b, err := rd.next(i)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if i-first >= max {
			return nil, formatErr(rd.path, i, "too many entries (limit %d)", max)
		}
		m := newEntry(i)
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, formatErr(rd.path, i, "bad %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
		}
		out = append(out, m)
	}
}

// openImage opens an image file for reading and returns it with its size. It
// refuses anything but a regular file (a FIFO or device planted in an image
// directory must not block or feed cryo endless data). With noFollow, a
// symlink is refused too.
func openImage(path string, noFollow bool) (*os.File, int64, error) {
	flags := os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_CLOEXEC
	if noFollow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) && noFollow {
			return nil, 0, formatErr(path, -1, "is a symbolic link; refusing to follow it")
		}
		return nil, 0, fmt.Errorf("image: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, fmt.Errorf("image: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, 0, formatErr(path, -1, "not a regular file (%s)", st.Mode().Type())
	}
	// O_NONBLOCK only guarded the open; give callers an ordinary file.
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) { syscall.SetNonblock(int(fd), false) })
	}
	return f, st.Size(), nil
}

// appendEntry appends one length-prefixed entry to b.
func appendEntry(b []byte, path string, i int, m proto.Message) ([]byte, error) {
	if m == nil || !m.ProtoReflect().IsValid() {
		return nil, formatErr(path, i, "nil entry")
	}
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, formatErr(path, i, "marshal %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
	}
	if len(data) > MaxEntrySize {
		return nil, formatErr(path, i, "entry is %d bytes, over the limit of %d", len(data), MaxEntrySize)
	}
	b = binary.LittleEndian.AppendUint32(b, uint32(len(data)))
	return append(b, data...), nil
}

// first reads the entry an image of one entry and raw data starts with
// (a ghost file, a TCP stream) into e; what names it in the error.
func (rd *reader) first(e proto.Message, what string) error {
	b, err := rd.next(0)
	if err == io.EOF {
		return formatErr(rd.path, 0, "no %s entry", what)
	}
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(b, e); err != nil {
		return formatErr(rd.path, 0, "%v", err)
	}
	return nil
}
