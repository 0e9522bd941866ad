package image

import (
	"bytes"
	"io"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	pipe_data "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
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
	for _, s := range samplePayloads() {
		good := encodePayloadImage(s.magic, s.entries, s.payloads)
		f.Add(good)
		if len(good) > 9 {
			f.Add(good[:len(good)-1])
		}
	}
	small := []byte("abc")
	pde := &pipe_data.PipeDataEntry{PipeId: u32(1), Bytes: u32(3)}
	f.Add(encodePayloadImage("PIPES_DATA", []proto.Message{pde, pde}, [][]byte{small, small[:2]}))
	pde = &pipe_data.PipeDataEntry{PipeId: u32(1), Bytes: u32(0xffffffff)}
	f.Add(encodePayloadImage("PIPES_DATA", []proto.Message{pde}, [][]byte{small}))
	ske := &sk_packet.SkPacketEntry{IdFor: u32(1), Length: u32(MaxPayloadBytes / 2)}
	f.Add(encodePayloadImage("SK_QUEUES", []proto.Message{ske, ske, ske}, [][]byte{small, small, small}))
}

func FuzzReadImage(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		magic, ms, ps, err := decode(bytes.NewReader(data), int64(len(data)), "fuzz.img", -1)
		magic2, ms2, ps2, err2 := decode(onlyReader{bytes.NewReader(data)}, -1, "fuzz.img", -1)
		if (err == nil) != (err2 == nil) || magic != magic2 || len(ms) != len(ms2) || len(ps) != len(ps2) {
			t.Fatalf("known vs unknown size disagree: %q %d %v / %q %d %v", magic, len(ms), err, magic2, len(ms2), err2)
		}
		for i := range ps {
			if !bytes.Equal(ps[i], ps2[i]) {
				t.Fatalf("known vs unknown size: payload %d differs", i)
			}
		}
		// Decode (which skips payloads) and Show (which keeps a prefix) agree.
		_, ms4, ps4, err4 := decode(bytes.NewReader(data), int64(len(data)), "fuzz.img", showPayloadMax)
		if (err == nil) != (err4 == nil) || len(ms4) != len(ms) || len(ps4) != len(ps) {
			t.Fatalf("keep all vs keep %d disagree: %d %v / %d %v", showPayloadMax, len(ms), err, len(ms4), err4)
		}
		if err != nil {
			if _, ok := err.(*FormatError); !ok {
				t.Fatalf("error is %T, not *FormatError: %v", err, err)
			}
			return
		}
		pt, isPayload := payloadTypes[magic]
		if (!isPayload && ps != nil) || (isPayload && len(ps) != len(ms)) {
			t.Fatalf("%s image: %d entries, %d payloads", magic, len(ms), len(ps))
		}
		for i, p := range ps {
			if n, _ := pt.payloadSize(ms[i]); n != uint64(len(p)) {
				t.Fatalf("entry %d: size field %d, payload %d bytes", i, n, len(p))
			}
		}
		if _, err := imageToJSON("fuzz.img", magic, ms, ps); err != nil {
			t.Fatalf("to JSON: %v", err)
		}
		if _, err := imageToJSON("fuzz.img", magic, ms4, ps4); err != nil {
			t.Fatalf("to JSON (cut payloads): %v", err)
		}
		// What was read re-encodes and reads back the same.
		b := header(magic)
		for i, m := range ms {
			if b, err = appendEntry(b, "fuzz.img", i, m); err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if ps != nil {
				b = append(b, ps[i]...)
			}
		}
		magic3, ms3, ps3, err := decode(bytes.NewReader(b), int64(len(b)), "fuzz.img", -1)
		if err != nil || magic3 != magic || len(ms3) != len(ms) || len(ps3) != len(ps) {
			t.Fatalf("re-decode: %q %d %v", magic3, len(ms3), err)
		}
		for i := range ms {
			if !proto.Equal(ms[i], ms3[i]) {
				t.Fatalf("entry %d changed: %v -> %v", i, ms[i], ms3[i])
			}
		}
		for i := range ps {
			if !bytes.Equal(ps[i], ps3[i]) {
				t.Fatalf("payload %d changed", i)
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
