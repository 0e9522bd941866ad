package image

import (
	"bytes"
	"io"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/proto"
)

// onlyReader hides the size of the input, exercising the unknown-size path.
type onlyReader struct{ io.Reader }

func fuzzSeeds(f *testing.F) {
	for _, s := range samples() {
		good := encodeImage(s.magic, s.entries...)
		f.Add(good)
		if len(good) > 9 {
			f.Add(good[:len(good)-1])
		}
	}
	id, es := samplePagemap()
	f.Add(encodeImage("PAGEMAP", pagemapMessages(id, es)...))
	f.Add(append(header("CORE"), 0xff, 0xff, 0xff, 0xff))
	f.Add(append(header("CORE"), 3, 0, 0, 0, 0xff, 0xff, 0xff))
	f.Add(header("STATS"))
	f.Add([]byte{})
}

func FuzzReadImage(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		magic, ms, err := decode(bytes.NewReader(data), int64(len(data)), "fuzz.img")
		magic2, ms2, err2 := decode(onlyReader{bytes.NewReader(data)}, -1, "fuzz.img")
		if (err == nil) != (err2 == nil) || magic != magic2 || len(ms) != len(ms2) {
			t.Fatalf("known vs unknown size disagree: %q %d %v / %q %d %v", magic, len(ms), err, magic2, len(ms2), err2)
		}
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("error is %T, not *FormatError: %v", err, err)
			}
			return
		}
		if _, err := imageToJSON("fuzz.img", magic, ms); err != nil {
			t.Fatalf("to JSON: %v", err)
		}
		// What was read re-encodes and reads back the same.
		b := header(magic)
		for i, m := range ms {
			if b, err = appendEntry(b, "fuzz.img", i, m); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
		magic3, ms3, err := decode(bytes.NewReader(b), int64(len(b)), "fuzz.img")
		if err != nil || magic3 != magic || len(ms3) != len(ms) {
			t.Fatalf("re-decode: %q %d %v", magic3, len(ms3), err)
		}
		for i := range ms {
			if !proto.Equal(ms[i], ms3[i]) {
				t.Fatalf("entry %d changed: %v -> %v", i, ms[i], ms3[i])
			}
		}
	})
}

func FuzzReadPagemap(f *testing.F) {
	fuzzSeeds(f)
	ps := pageSize
	for _, es := range [][]*pagemap.PagemapEntry{
		{{Vaddr: u64(0), NrPages: u32(1)}, {Vaddr: u64(ps), NrPages: u32(0xffffffff)}},
		{{Vaddr: u64(0 - ps), NrPages: u32(1)}},
		{{Vaddr: u64(ps), NrPages: u32(2)}, {Vaddr: u64(ps), NrPages: u32(1)}},
	} {
		f.Add(encodeImage("PAGEMAP", pagemapMessages(1, es)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		id, es, err := readPagemap(newReader(bytes.NewReader(data), int64(len(data)), "pagemap-1.img"))
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("error is %T, not *FormatError: %v", err, err)
			}
			return
		}
		var prevEnd uint64
		for i, e := range es {
			va, n := e.GetVaddr(), uint64(e.GetNrPages())
			end := va + n*pageSize
			if va%pageSize != 0 || n == 0 || end <= va || (i > 0 && va < prevEnd) {
				t.Fatalf("accepted bad entry %d: %v", i, e)
			}
			prevEnd = end
		}
		// Writing the same pagemap gives a file that reads back equal.
		b := header("PAGEMAP")
		for i, m := range pagemapMessages(id, es) {
			if b, err = appendEntry(b, "pagemap-1.img", i, m); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
		}
		id2, es2, err := readPagemap(newReader(bytes.NewReader(b), int64(len(b)), "pagemap-1.img"))
		if err != nil || id2 != id || len(es2) != len(es) {
			t.Fatalf("re-read: %d %d %v", id2, len(es2), err)
		}
		for i := range es {
			if !proto.Equal(es[i], es2[i]) {
				t.Fatalf("entry %d changed: %v -> %v", i, es[i], es2[i])
			}
		}
	})
}
