package image

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// PagesMagic and TmpfsMagic are the pseudo magic names Decode and Show give
// the images of raw data with no header: pages-<id>.img (page data) and
// tmpfs-dev-<dev>.tar.gz.img (a tmpfs's contents as a gzipped tar).
const (
	PagesMagic = "PAGES"
	TmpfsMagic = "TMPFS_TAR"
)

var rawImages = []struct {
	name  *regexp.Regexp
	magic string
}{
	{regexp.MustCompile(`^pages-[0-9]+\.img$`), PagesMagic},
	{regexp.MustCompile(`^tmpfs-dev-[0-9]+\.tar\.gz\.img$`), TmpfsMagic},
}

// rawMagic returns the pseudo magic of a raw data image, by its base name.
func rawMagic(path string) (string, bool) {
	for _, r := range rawImages {
		if r.name.MatchString(filepath.Base(path)) {
			return r.magic, true
		}
	}
	return "", false
}

// Decode reads any image file cryo understands and returns its magic name and
// entries. The type of the entries follows from the magic (see NewEntry); for
// PAGEMAP the first entry is a *pagemap.PagemapHead and the rest are
// *pagemap.PagemapEntry (not checked for order as ReadPagemap does). Of a
// payload image (PIPES_DATA, FIFO_DATA, SK_QUEUES) it returns the entries
// only: the payloads are checked to be there and skipped (ReadPayloads
// returns them). A file named pages-<id>.img or tmpfs-dev-<dev>.tar.gz.img
// is raw data: Decode returns PagesMagic or TmpfsMagic and no entries.
func Decode(path string) (magic string, entries []proto.Message, err error) {
	f, size, err := openImage(path, false)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if magic, ok := rawMagic(path); ok {
		return magic, nil, nil
	}
	magic, entries, _, err = decode(f, size, path, 0)
	return magic, entries, err
}

// decode reads an image of any type. For a payload image it also returns the
// payloads, each cut to its first keep bytes (whole if keep < 0).
func decode(r io.Reader, size int64, path string, keep int) (string, []proto.Message, [][]byte, error) {
	rd := newReader(r, size, path)
	magic, err := rd.readMagic("")
	if err != nil {
		return "", nil, nil, err
	}
	var ms []proto.Message
	var ps [][]byte
	if magic == "PAGEMAP" {
		ms, err = rd.entries(0, MaxPagemapEntries+1, newPagemapEntry)
		if err == nil && len(ms) == 0 {
			err = formatErr(path, -1, "missing pagemap head entry")
		}
	} else if pt, ok := payloadTypes[magic]; ok {
		ms, ps, err = rd.payloadEntries(pt, keep)
	} else {
		var newT func() proto.Message
		if newT, err = plainMagic(path, magic); err == nil {
			ms, err = rd.entries(0, MaxEntries, func(int) proto.Message { return newT() })
		}
	}
	if err != nil {
		return magic, nil, nil, err
	}
	return magic, ms, ps, nil
}

// Show writes a JSON description of path to w. For an image file it is
// {"magic": NAME, "entries": [...]}, the entries in protojson form with proto
// field names (as CRIU's crit shows them, except that 64-bit integers are
// strings), and for a raw data file {"magic": "PAGES" or "TMPFS_TAR",
// "size": BYTES}.
//
// In a payload image (PIPES_DATA, FIFO_DATA, SK_QUEUES) each entry also has
// "extra_size", the length of its payload, and, as crit shows it, "extra",
// the payload in base64 (standard encoding, no line breaks), if it is at most
// 4096 bytes; a longer payload is shown only by "extra_prefix", the base64 of
// its first 64 bytes.
//
// For a directory it is an object keyed by file name, holding each image file
// in that form. Hidden files, subdirectories, symlinks and files that are not
// images (neither named *.img nor starting with an image magic, such as
// CRIU's logs) are left out; an image that cannot be decoded is shown as
// {"error": MESSAGE} and does not make Show fail.
func Show(w io.Writer, path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("image: %w", err)
	}
	var doc []byte
	if st.IsDir() {
		doc, err = showDir(path)
	} else if streamed, serr := showEntries(w, path); streamed || serr != nil {
		return serr
	} else {
		doc, err = showFile(path, false)
	}
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return fmt.Errorf("image: show %s: %w", path, err)
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}

// How much of a payload Show shows.
const (
	showPayloadMax    = 4096 // whole payloads up to this size
	showPayloadPrefix = 64   // else this much
)

type rawJSON struct {
	Magic string `json:"magic"`
	Size  int64  `json:"size"`
}

type imageJSON struct {
	Magic   string            `json:"magic"`
	Entries []json.RawMessage `json:"entries"`
}

// showFile returns the JSON for one file; noFollow refuses symlinks.
func showFile(path string, noFollow bool) ([]byte, error) {
	f, size, err := openImage(path, noFollow)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if magic, ok := rawMagic(path); ok {
		return json.Marshal(rawJSON{Magic: magic, Size: size})
	}
	magic, ms, ps, err := decode(f, size, path, showPayloadMax)
	if err != nil {
		return nil, err
	}
	return imageToJSON(path, magic, ms, ps)
}

// imageToJSON returns the JSON for an image. ps, if not nil, holds the
// payloads of the entries (each possibly cut short).
func imageToJSON(path, magic string, ms []proto.Message, ps [][]byte) ([]byte, error) {
	img := imageJSON{Magic: magic, Entries: make([]json.RawMessage, len(ms))}
	opts := protojson.MarshalOptions{UseProtoNames: true}
	for i, m := range ms {
		b, err := opts.Marshal(m)
		if err != nil {
			// proto2 strings need not be UTF-8 (CRIU stores file names,
			// which are arbitrary bytes, as strings) but JSON must be.
			m = proto.Clone(m)
			escapeNonUTF8(m.ProtoReflect())
			b, err = opts.Marshal(m)
		}
		if err == nil && ps != nil {
			b, err = addPayloadJSON(b, payloadTypes[magic], m, ps[i])
		}
		if err != nil {
			return nil, formatErr(path, i, "to JSON: %v", err)
		}
		img.Entries[i] = b
	}
	return json.Marshal(img)
}

type payloadJSON struct {
	Extra  *string `json:"extra,omitempty"`
	Prefix *string `json:"extra_prefix,omitempty"`
	Size   uint64  `json:"extra_size"`
}

// addPayloadJSON adds the payload fields to obj, the JSON object of entry m,
// whose payload starts with p.
func addPayloadJSON(obj []byte, pt payloadType, m proto.Message, p []byte) ([]byte, error) {
	size, _ := pt.payloadSize(m)
	var pj payloadJSON
	pj.Size = size
	if size <= showPayloadMax && uint64(len(p)) == size {
		s := base64.StdEncoding.EncodeToString(p)
		pj.Extra = &s
	} else {
		s := base64.StdEncoding.EncodeToString(p[:min(len(p), showPayloadPrefix)])
		pj.Prefix = &s
	}
	extra, err := json.Marshal(pj)
	if err != nil {
		return nil, err
	}
	obj = bytes.TrimSpace(obj)
	if len(obj) < 2 || obj[0] != '{' || obj[len(obj)-1] != '}' {
		return nil, fmt.Errorf("entry is not a JSON object: %.20q", obj)
	}
	out := append([]byte(nil), obj[:len(obj)-1]...)
	if len(bytes.TrimSpace(out[1:])) > 0 {
		out = append(out, ',')
	}
	return append(out, extra[1:]...), nil
}

// escapeNonUTF8 rewrites, throughout m, every string field that is not valid
// UTF-8 with its invalid bytes shown as \xNN. (CRIU's protos have no maps.)
func escapeNonUTF8(m protoreflect.Message) {
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		isMsg := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
		switch {
		case fd.IsMap():
		case fd.IsList() && fd.Kind() == protoreflect.StringKind:
			l := m.Mutable(fd).List()
			for i := range l.Len() {
				if s := l.Get(i).String(); !utf8.ValidString(s) {
					l.Set(i, protoreflect.ValueOfString(escapeString(s)))
				}
			}
		case fd.IsList() && isMsg:
			l := m.Mutable(fd).List()
			for i := range l.Len() {
				escapeNonUTF8(l.Get(i).Message())
			}
		case fd.Kind() == protoreflect.StringKind:
			if s := v.String(); !utf8.ValidString(s) {
				m.Set(fd, protoreflect.ValueOfString(escapeString(s)))
			}
		case isMsg:
			escapeNonUTF8(m.Mutable(fd).Message())
		}
		return true
	})
}

func escapeString(s string) string {
	var b strings.Builder
	for len(s) > 0 {
		r, n := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[0])
		} else {
			b.WriteString(s[:n])
		}
		s = s[n:]
	}
	return b.String()
}

func showDir(dir string) ([]byte, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image: %w", err)
	}
	docs := make(map[string]json.RawMessage)
	for _, de := range des {
		name := de.Name()
		if strings.HasPrefix(name, ".") || !de.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		doc, err := showFile(path, true)
		if err != nil {
			if !strings.HasSuffix(name, ".img") && !hasImageMagic(path) {
				continue
			}
			doc, _ = json.Marshal(map[string]string{"error": err.Error()})
		}
		docs[name] = doc
	}
	return json.Marshal(docs)
}

// hasImageMagic reports whether the file starts with a valid image header.
func hasImageMagic(path string) bool {
	f, size, err := openImage(path, true)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = newReader(io.LimitReader(f, 8), size, path).readMagic("")
	return err == nil
}
