package image

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// showEntries writes Show's document for path if it is an image of plain
// entries (files.img, mm-N.img, ...), one entry at a time: a huge image
// costs neither memory nor time beyond its size. streamed is false, with
// nothing written, for any other file, which Show renders whole.
func showEntries(w io.Writer, path string) (streamed bool, err error) {
	if _, ok := rawMagic(path); ok {
		return false, nil
	}
	f, size, err := openImage(path, false)
	if err != nil {
		return false, nil // showFile reports it
	}
	defer f.Close()
	rd := newReader(f, size, path)
	magic, err := rd.readMagic("")
	if err != nil {
		return false, nil
	}
	if _, ok := payloadTypes[magic]; ok || magic == "PAGEMAP" {
		return false, nil
	}
	newT, err := plainMagic(path, magic)
	if err != nil {
		return false, nil
	}
	// Decoded in full first, without keeping anything: an image that
	// does not decode is an error before any output, as Show promises.
	n := 0
	for ; ; n++ {
		b, err := rd.next(n)
		if err == io.EOF {
			break
		}
		if err != nil {
			return true, err
		}
		if n >= MaxEntries {
			return true, formatErr(path, n, "too many entries (limit %d)", MaxEntries)
		}
		if err := proto.Unmarshal(b, newT()); err != nil {
			return true, formatErr(path, n, "bad %s: %v", newT().ProtoReflect().Descriptor().FullName(), err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return true, fmt.Errorf("image: %w", err)
	}
	rd = newReader(f, size, path)
	if _, err := rd.readMagic(magic); err != nil {
		return true, err
	}
	bw := bufio.NewWriterSize(w, 256<<10)
	head, _ := json.Marshal(magic)
	fmt.Fprintf(bw, "{\n  \"magic\": %s,\n  \"entries\": [", head)
	opts := protojson.MarshalOptions{UseProtoNames: true}
	var ind bytes.Buffer
	for i := 0; i < n; i++ {
		b, err := rd.next(i)
		if err != nil {
			return true, err
		}
		m := newT()
		if err := proto.Unmarshal(b, m); err != nil {
			return true, formatErr(path, i, "bad %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
		}
		js, err := opts.Marshal(m)
		if err != nil {
			// As imageToJSON: strings that are not UTF-8, escaped.
			escapeNonUTF8(m.ProtoReflect())
			js, err = opts.Marshal(m)
		}
		if err != nil {
			return true, formatErr(path, i, "to JSON: %v", err)
		}
		ind.Reset()
		if err := json.Indent(&ind, js, "    ", "  "); err != nil {
			return true, formatErr(path, i, "to JSON: %v", err)
		}
		if i > 0 {
			bw.WriteByte(',')
		}
		bw.WriteString("\n    ")
		bw.Write(ind.Bytes())
	}
	if n > 0 {
		bw.WriteString("\n  ")
	}
	bw.WriteString("]\n}\n")
	return true, bw.Flush()
}
