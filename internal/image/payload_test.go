package image

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	pipe_data "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	"google.golang.org/protobuf/proto"
)

func writePayloadSamples(t *testing.T, d *Dir) {
	t.Helper()
	for _, s := range samplePayloads() {
		if err := d.WritePayloads(s.name, s.magic, s.entries, s.payloads); err != nil {
			t.Fatalf("WritePayloads %s: %v", s.name, err)
		}
	}
}

func equalPayloads(t *testing.T, what string, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d payloads, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Errorf("%s: payload %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	d := newDir(t)
	writePayloadSamples(t, d)
	for _, s := range samplePayloads() {
		ms, ps, err := d.ReadPayloads(s.name, s.magic)
		if err != nil {
			t.Fatalf("ReadPayloads %s: %v", s.name, err)
		}
		equalMessages(t, s.name, ms, s.entries)
		equalPayloads(t, s.name, ps, s.payloads)

		path := filepath.Join(d.Path(), s.name)
		want := encodePayloadImage(s.magic, s.entries, s.payloads)
		if b, _ := os.ReadFile(path); !bytes.Equal(b, want) {
			t.Errorf("%s: file bytes differ from entry, payload, entry, payload...", s.name)
		}
		if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v", s.name, st.Mode(), err)
		}
		// Decode gives the entries and skips the payloads.
		magic, ms, err := Decode(path)
		if err != nil || magic != s.magic {
			t.Fatalf("Decode %s: %q, %v", s.name, magic, err)
		}
		equalMessages(t, "Decode "+s.name, ms, s.entries)
	}
	des, _ := os.ReadDir(d.Path())
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("leftover temporary file %s", de.Name())
		}
	}

	// The plain-entry API points to the payload API and back.
	if _, err := d.ReadAll("pipes-data.img", "PIPES_DATA"); err == nil || !strings.Contains(err.Error(), "ReadPayloads") {
		t.Fatalf("ReadAll of a payload image: %v", err)
	}
	if err := d.Write(CoreName(1), "CORE", samples()[2].entries...); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.ReadPayloads(CoreName(1), "CORE"); err == nil || !strings.Contains(err.Error(), "no payload") {
		t.Fatalf("ReadPayloads of a core image: %v", err)
	}
	// A payload image of another type is refused by its magic.
	if _, _, err := d.ReadPayloads("pipes-data.img", "SK_QUEUES"); err == nil ||
		!strings.Contains(err.Error(), "expected SK_QUEUES") {
		t.Fatalf("ReadPayloads with the wrong magic: %v", err)
	}
	if _, _, err := d.ReadPayloads("nope.img", "PIPES_DATA"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// TestPayloadCritCompat checks payload images against go-criu's crit, both
// ways, byte for byte.
func TestPayloadCritCompat(t *testing.T) {
	d := newDir(t)
	writePayloadSamples(t, d)
	for _, s := range samplePayloads() {
		f, err := os.Open(filepath.Join(d.Path(), s.name))
		if err != nil {
			t.Fatal(err)
		}
		img, err := crit.New(f, nil, "", false, false).Decode(payloadTypes[s.magic].newEntry())
		f.Close()
		if err != nil {
			t.Fatalf("crit decode %s: %v", s.name, err)
		}
		if img.Magic != s.magic || len(img.Entries) != len(s.entries) {
			t.Fatalf("crit decode %s: magic %s, %d entries", s.name, img.Magic, len(img.Entries))
		}
		for i, e := range img.Entries {
			if !proto.Equal(e.Message, s.entries[i]) {
				t.Errorf("crit %s: entry %d = %v, want %v", s.name, i, e.Message, s.entries[i])
			}
			if want := base64.StdEncoding.EncodeToString(s.payloads[i]); e.Extra != want {
				t.Errorf("crit %s: entry %d extra %.40q, want %.40q", s.name, i, e.Extra, want)
			}
		}

		// crit encodes the same bytes, and cryo reads them.
		name := "crit-" + s.name
		out, err := os.Create(filepath.Join(d.Path(), name))
		if err != nil {
			t.Fatal(err)
		}
		err = crit.New(nil, out, "", false, false).Encode(img)
		out.Close()
		if err != nil {
			t.Fatalf("crit encode %s: %v", s.name, err)
		}
		ours, _ := os.ReadFile(filepath.Join(d.Path(), s.name))
		theirs, _ := os.ReadFile(filepath.Join(d.Path(), name))
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s: crit encodes %d bytes, cryo wrote %d, or they differ", s.name, len(theirs), len(ours))
		}
		ms, ps, err := d.ReadPayloads(name, s.magic)
		if err != nil {
			t.Fatalf("reading crit-encoded %s: %v", s.name, err)
		}
		equalMessages(t, name, ms, s.entries)
		equalPayloads(t, name, ps, s.payloads)
	}
}

// TestPayloadCRIUCrit decodes cryo's payload images with CRIU's python crit,
// and encodes them back with it.
func TestPayloadCRIUCrit(t *testing.T) {
	critPath, err := exec.LookPath("crit")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CRIU's crit is not installed: scripts/install-test-deps.sh should have installed package criu")
		}
		t.Skip("CRIU's crit is not installed (apt-get install criu)")
	}
	d := newDir(t)
	writePayloadSamples(t, d)
	for _, s := range samplePayloads() {
		path := filepath.Join(d.Path(), s.name)
		out, err := exec.Command(critPath, "decode", "-i", path).CombinedOutput()
		if err != nil {
			t.Fatalf("crit decode %s: %v\n%s", s.name, err, out)
		}
		var img struct {
			Magic   string
			Entries []map[string]any
		}
		if err := json.Unmarshal(out, &img); err != nil {
			t.Fatalf("crit decode %s: %v\n%s", s.name, err, out)
		}
		if img.Magic != s.magic || len(img.Entries) != len(s.entries) {
			t.Fatalf("crit decode %s: magic %s, %d entries; want %s, %d", s.name, img.Magic, len(img.Entries), s.magic, len(s.entries))
		}
		field := string(payloadTypes[s.magic].sizeField)
		for i, e := range img.Entries {
			// python's base64.encodebytes breaks lines every 76 characters.
			extra, _ := e["extra"].(string)
			extra = strings.ReplaceAll(extra, "\n", "")
			if want := base64.StdEncoding.EncodeToString(s.payloads[i]); extra != want {
				t.Errorf("crit decode %s: entry %d extra %.40q, want %.40q", s.name, i, extra, want)
			}
			if e[field] != float64(len(s.payloads[i])) {
				t.Errorf("crit decode %s: entry %d %s = %v, want %d", s.name, i, field, e[field], len(s.payloads[i]))
			}
		}
		// crit encode of crit's own JSON gives back the same bytes.
		js := filepath.Join(t.TempDir(), "img.json")
		enc := path + ".crit"
		os.WriteFile(js, out, 0o600)
		if out, err := exec.Command(critPath, "encode", "-i", js, "-o", enc).CombinedOutput(); err != nil {
			t.Fatalf("crit encode %s: %v\n%s", s.name, err, out)
		}
		ours, _ := os.ReadFile(path)
		theirs, _ := os.ReadFile(enc)
		if !bytes.Equal(ours, theirs) {
			t.Errorf("%s: CRIU's crit encodes %d bytes, cryo wrote %d, or they differ", s.name, len(theirs), len(ours))
		}
	}
}

func TestPayloadCorrupt(t *testing.T) {
	d := newDir(t)
	lenWord := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	pde := func(n uint32) *pipe_data.PipeDataEntry {
		return &pipe_data.PipeDataEntry{PipeId: u32(1), Bytes: u32(n)}
	}
	s := samplePayloads()[0]
	good := encodePayloadImage(s.magic, s.entries, s.payloads)
	last := len(s.entries) - 1
	abc := []byte("abc")

	for _, tc := range []struct {
		name string
		data []byte
		want string // substring of the error
		ent  int    // the entry the error must name, -1 for none
	}{
		{"payload truncated", good[:len(good)-1], "truncated payload: pipe_data_entry.bytes says 6 bytes, only 5 left", last},
		{"payload missing", encodePayloadImage("PIPES_DATA", []proto.Message{pde(3)}, [][]byte{nil}), "only 0 left", 0},
		{"size beyond file", encodePayloadImage("PIPES_DATA", []proto.Message{pde(1000)}, [][]byte{abc}), "says 1000 bytes, only 3 left", 0},
		{"size absurd", encodePayloadImage("PIPES_DATA", []proto.Message{pde(0xffffffff)}, [][]byte{abc}), "over the limit", 0},
		{"entry length absurd", cat(header("PIPES_DATA"), lenWord(0xffffffff)), "exceeds the limit", 0},
		{"partial length word", cat(good, []byte{1}), "trailing partial length word", last + 1},
		{"payload eaten as next entry", cat(good, lenWord(2), []byte{0x08, 0x01}, abc), "required field", last + 1},
		{"missing required", cat(header("PIPES_DATA"), lenWord(2), []byte{0x08, 0x01}), "required field", 0},
		{"wrong magic", encodePayloadImage("SK_QUEUES", nil, nil), "expected PIPES_DATA", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "pipes-data.img"
			path := filepath.Join(d.Path(), name)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, _, err := d.ReadPayloads(name, "PIPES_DATA")
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, path) || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not name the file and say %q", msg, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Entry != tc.ent {
				t.Fatalf("error %q: want FormatError for entry %d", msg, tc.ent)
			}
			if tc.name == "wrong magic" {
				return
			}
			if _, _, err := Decode(path); err == nil {
				t.Fatal("Decode: no error")
			}
			if err := Show(new(bytes.Buffer), path); err == nil {
				t.Fatal("Show: no error")
			}
			if _, _, _, err := decode(onlyReader{bytes.NewReader(tc.data)}, -1, path, -1); err == nil {
				t.Fatal("decode of unknown size: no error")
			}
		})
	}

	// Payloads over MaxPayloadBytes in all, the first one there (in a hole
	// of a sparse file): Decode, which skips payloads, refuses the second.
	half := uint32(MaxPayloadBytes/2 + 1)
	e := encodePayloadImage("PIPES_DATA", []proto.Message{pde(half)}, [][]byte{nil})
	path := filepath.Join(d.Path(), "pipes-data-big.img")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(e)
	f.Seek(int64(half), 1)
	f.Write(e[8:])
	f.Write(make([]byte, 16))
	f.Close()
	if _, _, err := Decode(path); err == nil || !strings.Contains(err.Error(), "entry 1: pipe_data_entry.bytes is 536870913: payloads total over the limit") {
		t.Fatalf("Decode: %v", err)
	}
}

func TestPayloadWriteChecks(t *testing.T) {
	d := newDir(t)
	abc := []byte("abc")
	pde := &pipe_data.PipeDataEntry{PipeId: u32(1), Bytes: u32(3)}
	for _, tc := range []struct {
		name, magic string
		entries     []proto.Message
		payloads    [][]byte
		want        string
	}{
		{"pipes-data.img", "PIPES_DATA", []proto.Message{pde}, nil, "1 entries but 0 payloads"},
		{"pipes-data.img", "PIPES_DATA", []proto.Message{pde}, [][]byte{abc[:2]}, "entry 0: pipe_data_entry.bytes is 3 but the payload is 2 bytes"},
		{"pipes-data.img", "PIPES_DATA", []proto.Message{pde, pde}, [][]byte{abc, nil}, "entry 1: pipe_data_entry.bytes is 3 but the payload is 0 bytes"},
		{"sk-queues.img", "SK_QUEUES", []proto.Message{&sk_packet.SkPacketEntry{IdFor: u32(1), Length: u32(2)}}, [][]byte{abc}, "sk_packet_entry.length is 2"},
		{"sk-queues.img", "SK_QUEUES", []proto.Message{pde}, [][]byte{abc}, "holds sk_packet_entry entries, not pipe_data_entry"},
		{"pipes-data.img", "PIPES_DATA", []proto.Message{&pipe_data.PipeDataEntry{Bytes: u32(3)}}, [][]byte{abc}, "required field"},
		{"pipes-data.img", "PIPES_DATA", []proto.Message{nil}, [][]byte{nil}, "nil entry"},
		{"pipes-data.img", "PIPES_DATA", []proto.Message{(*pipe_data.PipeDataEntry)(nil)}, [][]byte{nil}, "nil entry"},
		{"core-1.img", "CORE", []proto.Message{&criu_core.CoreEntry{}}, [][]byte{nil}, "use Write/ReadAll"},
		{"ghost-file-1.img", "GHOST_FILE", nil, nil, "does not support"},
		{"ipcns-msg-1.img", "IPCNS_MSG", nil, nil, "does not support"},
		{"pagemap-1.img", "PAGEMAP", nil, nil, "WritePagemap"},
		{"x.img", "NOPE", nil, nil, "unknown magic"},
		{"a/b.img", "PIPES_DATA", nil, nil, "invalid image file name"},
	} {
		err := d.WritePayloads(tc.name, tc.magic, tc.entries, tc.payloads)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("WritePayloads(%s, %s): %v, want %q", tc.name, tc.magic, err, tc.want)
		}
	}
	des, _ := os.ReadDir(d.Path())
	if len(des) != 0 {
		t.Fatalf("failed writes left %d files", len(des))
	}
}

func TestPayloadShow(t *testing.T) {
	d := newDir(t)
	writePayloadSamples(t, d)
	var buf bytes.Buffer
	if err := Show(&buf, d.Path()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]struct {
		Magic   string
		Entries []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	for _, s := range samplePayloads() {
		img := doc[s.name]
		if img.Magic != s.magic || len(img.Entries) != len(s.entries) {
			t.Fatalf("%s: %v", s.name, img)
		}
		for i, e := range img.Entries {
			p := s.payloads[i]
			if e["extra_size"] != float64(len(p)) {
				t.Errorf("%s entry %d: extra_size %v, want %d", s.name, i, e["extra_size"], len(p))
			}
			if len(p) <= showPayloadMax {
				if e["extra"] != base64.StdEncoding.EncodeToString(p) || e["extra_prefix"] != nil {
					t.Errorf("%s entry %d: extra %v, prefix %v", s.name, i, e["extra"], e["extra_prefix"])
				}
			} else if e["extra_prefix"] != base64.StdEncoding.EncodeToString(p[:showPayloadPrefix]) || e["extra"] != nil {
				t.Errorf("%s entry %d: extra %v, prefix %v", s.name, i, e["extra"], e["extra_prefix"])
			}
		}
	}
	if e := doc["sk-queues.img"].Entries[3]; e["id_for"] != float64(5) || e["scm"] == nil {
		t.Errorf("sk-queues entry 3: %v", e)
	}

	buf.Reset()
	if err := Show(&buf, filepath.Join(d.Path(), "fifo-data.img")); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"extra": "AP/+CgAB"`) || !strings.Contains(buf.String(), `"pipe_id": 11`) {
		t.Errorf("show fifo-data:\n%s", buf.String())
	}
}
