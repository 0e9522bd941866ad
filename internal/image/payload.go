package image

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"google.golang.org/protobuf/proto"
)

// payloadMagic checks that magic names a payload image type cryo supports and
// returns its description.
func payloadMagic(path, magic string) (payloadType, error) {
	if pt, ok := payloadTypes[magic]; ok {
		return pt, nil
	}
	switch {
	case entryTypes[magic] != nil:
		return payloadType{}, formatErr(path, -1, "%s images carry no payload data: use Write/ReadAll", magic)
	case magic == "PAGEMAP":
		return payloadType{}, formatErr(path, -1, "PAGEMAP images have a head entry: use WritePagemap/ReadPagemap")
	case rawPayloadMagics[magic]:
		return payloadType{}, formatErr(path, -1, "%s images carry raw payload data in a layout cryo does not support", magic)
	case isFileMagic(magic):
		return payloadType{}, formatErr(path, -1, "no entry type known for magic %s", magic)
	}
	return payloadType{}, formatErr(path, -1, "unknown magic name %q", magic)
}

// sizeFieldName names the size field of pt's entries for error messages:
// "pipe_data_entry.bytes".
func (pt payloadType) sizeFieldName() string {
	return fmt.Sprintf("%s.%s", pt.newEntry().ProtoReflect().Descriptor().FullName(), pt.sizeField)
}

// WritePayloads writes a payload image: name is its file name in d, magic the
// go-criu magic name of its type ("PIPES_DATA", "FIFO_DATA" or "SK_QUEUES"),
// and entries[i] is followed in the file by the raw bytes payloads[i]. The
// entries must be of the type magic implies (pipe_data_entry for PIPES_DATA
// and FIFO_DATA, sk_packet_entry for SK_QUEUES), have all required fields
// set, and give the length of their payload in their size field (bytes for
// pipe_data_entry, length for sk_packet_entry). The payloads together may
// not exceed MaxPayloadBytes. Like Write, it writes a temporary file (mode
// 0600) in d, syncs it and renames it to name.
func (d *Dir) WritePayloads(name, magic string, entries []proto.Message, payloads [][]byte) error {
	path, err := d.file(name)
	if err != nil {
		return err
	}
	pt, err := payloadMagic(path, magic)
	if err != nil {
		return err
	}
	if len(entries) != len(payloads) {
		return formatErr(path, -1, "%d entries but %d payloads", len(entries), len(payloads))
	}
	if len(entries) > MaxEntries {
		return formatErr(path, -1, "%d entries, over the limit of %d", len(entries), MaxEntries)
	}
	want := pt.newEntry()
	encoded := make([][]byte, len(entries))
	var total uint64
	for i, m := range entries {
		if err := checkType(path, i, magic, m, want); err != nil {
			return err
		}
		n, ok := pt.payloadSize(m)
		if !ok {
			return formatErr(path, i, "entry has no uint32 field %s", pt.sizeField)
		}
		if n != uint64(len(payloads[i])) {
			return formatErr(path, i, "%s is %d but the payload is %d bytes", pt.sizeFieldName(), n, len(payloads[i]))
		}
		if total += n; total > MaxPayloadBytes {
			return formatErr(path, i, "payloads total over the limit of %d bytes", MaxPayloadBytes)
		}
		if encoded[i], err = appendEntry(nil, path, i, m); err != nil {
			return err
		}
	}
	return d.writeFileFunc(name, path, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		bw.Write(header(magic))
		for i, e := range encoded {
			bw.Write(e)
			bw.Write(payloads[i])
		}
		return bw.Flush() // bufio.Writer keeps the first write error
	})
}

// ReadPayloads reads a payload image written by WritePayloads or by CRIU: the
// named file, which must be of type magic ("PIPES_DATA", "FIFO_DATA" or
// "SK_QUEUES"). It returns the entries, of the type magic implies, and the
// raw bytes that follow each (payloads[i] belongs to entries[i]). Each
// payload's length, given by its entry, is checked against what is left of
// the file before anything is allocated, and all payloads together may not
// exceed MaxPayloadBytes.
func (d *Dir) ReadPayloads(name, magic string) (entries []proto.Message, payloads [][]byte, err error) {
	path, err := d.file(name)
	if err != nil {
		return nil, nil, err
	}
	pt, err := payloadMagic(path, magic)
	if err != nil {
		return nil, nil, err
	}
	rd, f, err := d.open(name, magic)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	return rd.payloadEntries(pt, -1)
}

// payloadEntries reads the remaining entries of a payload image and their
// payloads, of which it keeps the first keep bytes (all if keep < 0) and
// skips the rest.
func (rd *reader) payloadEntries(pt payloadType, keep int) ([]proto.Message, [][]byte, error) {
	var ms []proto.Message
	var ps [][]byte
	var total uint64
	for i := 0; ; i++ {
		b, err := rd.next(i)
		if err == io.EOF {
			return ms, ps, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if i >= MaxEntries {
			return nil, nil, formatErr(rd.path, i, "too many entries (limit %d)", MaxEntries)
		}
		m := pt.newEntry()
		if err := proto.Unmarshal(b, m); err != nil {
			return nil, nil, formatErr(rd.path, i, "bad %s: %v", m.ProtoReflect().Descriptor().FullName(), err)
		}
		n, _ := pt.payloadSize(m)
		if total += n; total > MaxPayloadBytes {
			return nil, nil, formatErr(rd.path, i, "%s is %d: payloads total over the limit of %d bytes",
				pt.sizeFieldName(), n, MaxPayloadBytes)
		}
		p, err := rd.payload(i, pt, n, keep)
		if err != nil {
			return nil, nil, err
		}
		ms = append(ms, m)
		ps = append(ps, p)
	}
}

// payload reads the n raw bytes that follow entry i and returns the first
// keep of them (all if keep < 0), skipping the rest. n must be at most
// MaxPayloadBytes.
func (rd *reader) payload(i int, pt payloadType, n uint64, keep int) ([]byte, error) {
	if rd.remain >= 0 && n > uint64(rd.remain) {
		return nil, formatErr(rd.path, i, "truncated payload: %s says %d bytes, only %d left in file",
			pt.sizeFieldName(), n, rd.remain)
	}
	k := n
	if keep >= 0 && uint64(keep) < k {
		k = uint64(keep)
	}
	var (
		p   []byte
		got int64
		err error
	)
	if rd.remain >= 0 {
		p = make([]byte, k)
		var m int
		m, err = io.ReadFull(rd.r, p)
		got = int64(m)
	} else {
		// Size unknown: let the buffer grow with the data actually there
		// instead of trusting the entry.
		var bb bytes.Buffer
		bb.Grow(int(min(k, 64<<10)))
		got, err = io.CopyN(&bb, rd.r, int64(k))
		p = bb.Bytes()
		if p == nil {
			p = []byte{}
		}
	}
	if err == nil && k < n {
		var m int
		m, err = rd.r.Discard(int(n - k))
		got += int64(m)
	}
	if rd.remain >= 0 {
		rd.remain -= got
	}
	if err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil, formatErr(rd.path, i, "truncated payload: %s says %d bytes, only %d left in file",
				pt.sizeFieldName(), n, got)
		}
		return nil, &FormatError{Path: rd.path, Entry: i, Err: err}
	}
	return p, nil
}
