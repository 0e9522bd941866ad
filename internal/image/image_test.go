package image

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"google.golang.org/protobuf/proto"
)

func newDir(t *testing.T) *Dir {
	t.Helper()
	d, err := Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeSamples(t *testing.T, d *Dir) {
	t.Helper()
	for _, s := range samples() {
		if err := d.Write(s.name, s.magic, s.entries...); err != nil {
			t.Fatalf("Write %s: %v", s.name, err)
		}
	}
	id, es := samplePagemap()
	if err := d.WritePagemap(42, id, es); err != nil {
		t.Fatal(err)
	}
}

func equalMessages(t *testing.T, what string, got, want []proto.Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			t.Errorf("%s: entry %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func TestRoundTrip(t *testing.T) {
	d := newDir(t)
	writeSamples(t, d)
	for _, s := range samples() {
		got, err := d.ReadAll(s.name, s.magic)
		if err != nil {
			t.Fatalf("ReadAll %s: %v", s.name, err)
		}
		equalMessages(t, s.name, got, s.entries)

		magic, got, err := Decode(filepath.Join(d.Path(), s.name))
		if err != nil || magic != s.magic {
			t.Fatalf("Decode %s: %q, %v", s.name, magic, err)
		}
		equalMessages(t, "Decode "+s.name, got, s.entries)
	}

	id, es := samplePagemap()
	gotID, gotEs, err := d.ReadPagemap(42)
	if err != nil {
		t.Fatal(err)
	}
	if gotID != id || len(gotEs) != len(es) {
		t.Fatalf("ReadPagemap: id %d, %d entries; want %d, %d", gotID, len(gotEs), id, len(es))
	}
	for i := range es {
		if !proto.Equal(gotEs[i], es[i]) {
			t.Errorf("pagemap entry %d = %v, want %v", i, gotEs[i], es[i])
		}
	}
	magic, ms, err := Decode(filepath.Join(d.Path(), PagemapName(42)))
	if err != nil || magic != "PAGEMAP" {
		t.Fatalf("Decode pagemap: %q, %v", magic, err)
	}
	equalMessages(t, "Decode pagemap", ms, pagemapMessages(id, es))

	// Typed helpers.
	ps, err := ReadEntries[*pstree.PstreeEntry](d, PstreeName, "PSTREE")
	if err != nil || len(ps) != 2 || ps[1].GetPpid() != 42 {
		t.Fatalf("ReadEntries pstree: %v, %v", ps, err)
	}
	var core criu_core.CoreEntry
	if err := d.ReadOne(CoreName(42), "CORE", &core); err != nil {
		t.Fatal(err)
	}
	if core.GetTc().GetComm() != "sleep" {
		t.Fatalf("ReadOne core: %v", &core)
	}
	if _, err := ReadEntries[*mm.MmEntry](d, CoreName(42), "CORE"); err == nil {
		t.Fatal("ReadEntries with the wrong type succeeded")
	}

	// Overwriting replaces the file and leaves no temporary files behind.
	if err := d.Write(FSName(42), "FS", samples()[5].entries...); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(d.Path())
	for _, de := range des {
		if strings.HasPrefix(de.Name(), ".") {
			t.Errorf("leftover temporary file %s", de.Name())
		}
	}
}

func TestNames(t *testing.T) {
	for got, want := range map[string]string{
		CoreName(1): "core-1.img", MMName(2): "mm-2.img", PagemapName(3): "pagemap-3.img",
		PagesName(4): "pages-4.img", IDsName(5): "ids-5.img", FSName(6): "fs-6.img",
		FdinfoName(7): "fdinfo-7.img", CredsName(8): "creds-8.img",
		FilesName: "files.img", InventoryName: "inventory.img", PstreeName: "pstree.img",
		RegFilesName: "reg-files.img", TmpfsName(41): "tmpfs-dev-41.tar.gz.img",
	} {
		if got != want {
			t.Errorf("%q != %q", got, want)
		}
	}
}

// TestCritCompat proves CRIU compatibility: go-criu's crit decodes what cryo
// writes, and cryo reads what go-criu's crit encodes.
func TestCritCompat(t *testing.T) {
	d := newDir(t)
	writeSamples(t, d)
	critDecode := func(name string, entryType proto.Message) *crit.CriuImage {
		t.Helper()
		f, err := os.Open(filepath.Join(d.Path(), name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		img, err := crit.New(f, nil, "", false, false).Decode(entryType)
		if err != nil {
			t.Fatalf("crit decode %s: %v", name, err)
		}
		return img
	}
	critMessages := func(img *crit.CriuImage) []proto.Message {
		var ms []proto.Message
		for _, e := range img.Entries {
			ms = append(ms, e.Message)
		}
		return ms
	}
	for _, s := range samples() {
		img := critDecode(s.name, NewEntry(s.magic))
		if img.Magic != s.magic {
			t.Errorf("crit: %s has magic %s, want %s", s.name, img.Magic, s.magic)
		}
		equalMessages(t, "crit "+s.name, critMessages(img), s.entries)
	}
	id, es := samplePagemap()
	img := critDecode(PagemapName(42), &pagemap.PagemapEntry{})
	if img.Magic != "PAGEMAP" {
		t.Errorf("crit: pagemap magic %s", img.Magic)
	}
	equalMessages(t, "crit pagemap", critMessages(img), pagemapMessages(id, es))

	// Page contents through crit's memory reader (pagemap + pages-<id>.img).
	f, err := d.CreatePages(id)
	if err != nil {
		t.Fatal(err)
	}
	var pages []byte
	for _, e := range es {
		for p := range e.GetNrPages() {
			pg := bytes.Repeat([]byte{byte(e.GetVaddr()>>12) + byte(p)}, int(pageSize))
			pages = append(pages, pg...)
		}
	}
	if _, err := f.Write(pages); err != nil {
		t.Fatal(err)
	}
	f.Close()
	mr, err := crit.NewMemoryReader(d.Path(), 42, 0)
	if err != nil {
		t.Fatal(err)
	}
	if mr.GetPagesID() != id {
		t.Fatalf("crit pages id %d", mr.GetPagesID())
	}
	va := es[2].GetVaddr() + pageSize // second page of the third entry
	buf, err := mr.GetMemPages(va, va+16)
	if err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat([]byte{byte(es[2].GetVaddr()>>12) + 1}, 16); !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("crit read page bytes %x, want %x", buf.Bytes(), want)
	}

	// The other direction: images encoded by go-criu's crit.
	enc := func(name string, ci *crit.CriuImage) {
		t.Helper()
		f, err := os.Create(filepath.Join(d.Path(), name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := crit.New(nil, f, "", false, false).Encode(ci); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range samples() {
		ci := &crit.CriuImage{Magic: s.magic}
		for _, m := range s.entries {
			ci.Entries = append(ci.Entries, &crit.CriuEntry{Message: m})
		}
		enc("crit-"+s.name, ci)
		got, err := d.ReadAll("crit-"+s.name, s.magic)
		if err != nil {
			t.Fatalf("reading crit-encoded %s: %v", s.name, err)
		}
		equalMessages(t, "crit-encoded "+s.name, got, s.entries)
	}
	// STATS uses the IMG_SERVICE prefix.
	st := &stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime: u32(1), FrozenTime: u32(2), MemdumpTime: u32(3), MemwriteTime: u32(4),
		PagesScanned: u64(5), PagesSkippedParent: u64(6), PagesWritten: u64(7), PagesLazy: u64(0),
	}}
	enc("stats-dump", &crit.CriuImage{Magic: "STATS", Entries: []*crit.CriuEntry{{Message: st}}})
	var gotSt stats.StatsEntry
	if err := d.ReadOne("stats-dump", "STATS", &gotSt); err != nil || !proto.Equal(&gotSt, st) {
		t.Fatalf("stats: %v, %v", &gotSt, err)
	}
	if err := d.Write("stats-dump", "STATS", st); err != nil {
		t.Fatal(err)
	}
	if img := critDecode("stats-dump", &stats.StatsEntry{}); img.Magic != "STATS" {
		t.Fatalf("crit: stats magic %s", img.Magic)
	}
}

func TestPermissions(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)

	base := t.TempDir()
	d, err := Create(filepath.Join(base, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	writeSamples(t, d)
	f, err := d.CreatePages(7)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	checkMode := func(path string, want fs.FileMode) {
		t.Helper()
		st, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s: mode %#o, want %#o", path, got, want)
		}
	}
	checkMode(d.Path(), 0o700)
	des, _ := os.ReadDir(d.Path())
	if len(des) < len(samples())+2 {
		t.Fatalf("only %d files", len(des))
	}
	for _, de := range des {
		checkMode(filepath.Join(d.Path(), de.Name()), 0o600)
	}

	// An existing empty directory, or one of images and logs, is tightened
	// to 0700.
	ex := filepath.Join(base, "existing")
	if err := os.Mkdir(ex, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := Create(ex); err != nil {
		t.Fatal(err)
	}
	checkMode(ex, 0o700)
	os.Chmod(ex, 0o755)
	os.WriteFile(filepath.Join(ex, "dump.log"), nil, 0o600)
	if _, err := Create(ex); err != nil {
		t.Fatal(err)
	}
	checkMode(ex, 0o700)
	os.Chmod(d.Path(), 0o755)
	if _, err := Create(d.Path()); err != nil {
		t.Fatal(err)
	}
	checkMode(d.Path(), 0o700)
	// But a non-empty directory of other things is not chmod-ed...
	other := filepath.Join(base, "other")
	os.Mkdir(other, 0o777)
	os.Chmod(other, 0o777|os.ModeSticky)
	os.WriteFile(filepath.Join(other, "notes.txt"), nil, 0o644)
	if _, err := Create(other); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("Create on a non-empty directory: %v", err)
	}
	if st, _ := os.Stat(other); st.Mode()&os.ModePerm != 0o777 || st.Mode()&os.ModeSticky == 0 {
		t.Fatalf("mode of a refused directory changed to %v", st.Mode())
	}
	// ...unless it already is 0700.
	os.Chmod(other, 0o700)
	if _, err := Create(other); err != nil {
		t.Fatal(err)
	}

	// A pages file that already exists (even as a symlink) is replaced.
	target := filepath.Join(base, "target")
	os.WriteFile(target, []byte("keep"), 0o644)
	os.Remove(filepath.Join(d.Path(), PagesName(9)))
	if err := os.Symlink(target, filepath.Join(d.Path(), PagesName(9))); err != nil {
		t.Fatal(err)
	}
	f, err = d.CreatePages(9)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("new"))
	f.Close()
	if b, _ := os.ReadFile(target); string(b) != "keep" {
		t.Fatalf("CreatePages wrote through a symlink: target now %q", b)
	}
	checkMode(filepath.Join(d.Path(), PagesName(9)), 0o600)

	// Create on a regular file fails.
	if _, err := Create(target); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("Create on a file: %v", err)
	}
	if _, err := Open(target); err == nil {
		t.Fatal("Open on a file succeeded")
	}
	if _, err := Open(filepath.Join(base, "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open missing: %v", err)
	}
}

func TestCorrupt(t *testing.T) {
	d := newDir(t)
	core := samples()[2]
	good := encodeImage("CORE", core.entries...)
	lenWord := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	coreHdr := header("CORE")

	for _, tc := range []struct {
		name string
		data []byte
		want string // substring of the error
		ent  int    // the entry the error must name, -1 for none
	}{
		{"empty", nil, "missing magic", -1},
		{"truncated magic", coreHdr[:2], "truncated magic", -1},
		{"header only prefix", coreHdr[:4], "missing magic", -1},
		{"wrong magic", encodeImage("MM", samples()[4].entries...), "expected CORE (0x55053847), found MM (0x57492820)", -1},
		{"unknown magic", cat(coreHdr[:4], lenWord(0x12345678)), "found unknown magic 0x12345678", -1},
		{"no prefix", good[4:], "found CORE", -1},
		{"service prefix", cat(header("STATS")[:4], coreHdr[4:]), "after IMG_SERVICE", -1},
		{"truncated entry", good[:len(good)-3], "truncated entry", 0},
		{"partial length word", cat(good, []byte{1, 0}), "trailing partial length word", 1},
		{"huge length", cat(coreHdr, lenWord(0xffffffff)), "exceeds the limit", 0},
		{"length beyond file", cat(coreHdr, lenWord(1000), []byte{1, 2}), "only 2 left", 0},
		{"garbage protobuf", cat(good, lenWord(3), []byte{0xff, 0xff, 0xff}), "bad core_entry", 1},
		{"missing required", cat(coreHdr, lenWord(0)), "required field", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "core-1.img"
			if err := os.WriteFile(filepath.Join(d.Path(), name), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := d.ReadAll(name, "CORE")
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, filepath.Join(d.Path(), name)) || !strings.Contains(msg, tc.want) {
				t.Fatalf("error %q does not name the file and say %q", msg, tc.want)
			}
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Entry != tc.ent {
				t.Fatalf("error %q: want FormatError for entry %d", msg, tc.ent)
			}
			if _, _, err := Decode(filepath.Join(d.Path(), name)); err == nil && tc.name != "wrong magic" {
				t.Fatal("Decode: no error")
			}
		})
	}

	// INVENTORY must not carry the IMG_COMMON prefix, STATS must carry IMG_SERVICE.
	inv := samples()[0]
	os.WriteFile(filepath.Join(d.Path(), InventoryName), cat(coreHdr[:4], encodeImage("INVENTORY", inv.entries...)), 0o600)
	if _, err := d.ReadAll(InventoryName, "INVENTORY"); err == nil {
		t.Fatal("inventory with IMG_COMMON accepted")
	}
	os.WriteFile(filepath.Join(d.Path(), "stats-dump"), cat(coreHdr[:4], header("STATS")[4:]), 0o600)
	if _, err := d.ReadAll("stats-dump", "STATS"); err == nil {
		t.Fatal("STATS with IMG_COMMON accepted")
	}

	// Missing file.
	_, err := d.ReadAll("core-999.img", "CORE")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "core-999.img") {
		t.Fatalf("missing file: %v", err)
	}

	// ReadOne wants exactly one entry.
	os.WriteFile(filepath.Join(d.Path(), "core-2.img"), cat(good, good[8:]), 0o600)
	var c criu_core.CoreEntry
	if err := d.ReadOne("core-2.img", "CORE", &c); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("two entries: %v", err)
	}
	os.WriteFile(filepath.Join(d.Path(), "core-3.img"), coreHdr, 0o600)
	if err := d.ReadOne("core-3.img", "CORE", &c); err == nil || !strings.Contains(err.Error(), "found none") {
		t.Fatalf("no entries: %v", err)
	}

	// A FIFO or a symlink planted in the directory is refused (and does not block).
	if err := syscall.Mkfifo(filepath.Join(d.Path(), "core-4.img"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.ReadOne("core-4.img", "CORE", &c); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("fifo: %v", err)
	}
	os.Symlink("core-1.img", filepath.Join(d.Path(), "core-5.img"))
	if err := d.ReadOne("core-5.img", "CORE", &c); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Fatalf("symlink: %v", err)
	}
	if _, err := d.ReadAll("../core-1.img", "CORE"); err == nil {
		t.Fatal("path traversal accepted")
	}
}

func TestWriteChecks(t *testing.T) {
	d := newDir(t)
	for _, tc := range []struct {
		name, magic string
		entries     []proto.Message
		want        string
	}{
		{"core-1.img", "CORE", []proto.Message{&mm.MmEntry{}}, "holds core_entry entries, not mm_entry"},
		{"core-1.img", "CORE", []proto.Message{&criu_core.CoreEntry{}}, "required field"},
		{"core-1.img", "CORE", []proto.Message{(*criu_core.CoreEntry)(nil)}, "nil entry"},
		{"core-1.img", "CORE", []proto.Message{nil}, "nil entry"},
		{"core-1.img", "NOPE", nil, "unknown magic"},
		{"pagemap-1.img", "PAGEMAP", nil, "WritePagemap"},
		{"pipes-data.img", "PIPES_DATA", nil, "raw payload"},
		{"a/b.img", "CORE", nil, "invalid image file name"},
	} {
		err := d.Write(tc.name, tc.magic, tc.entries...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Write(%s, %s): %v, want %q", tc.name, tc.magic, err, tc.want)
		}
	}
	des, _ := os.ReadDir(d.Path())
	if len(des) != 0 {
		t.Fatalf("failed writes left %d files", len(des))
	}
}

func TestPagemapChecks(t *testing.T) {
	d := newDir(t)
	ps := pageSize
	e := func(va uint64, n uint32) *pagemap.PagemapEntry {
		return &pagemap.PagemapEntry{Vaddr: u64(va), NrPages: u32(n), Flags: u32(PagemapPresent)}
	}
	for _, tc := range []struct {
		name    string
		entries []*pagemap.PagemapEntry
		bad     int // index in the list
		want    string
	}{
		{"unaligned", []*pagemap.PagemapEntry{e(ps, 1), e(3*ps+1, 1)}, 1, "not page-aligned"},
		{"zero pages", []*pagemap.PagemapEntry{e(ps, 0)}, 0, "nr_pages is 0"},
		{"overflow", []*pagemap.PagemapEntry{e(0-2*ps, 3)}, 0, "overflows"},
		{"top of space", []*pagemap.PagemapEntry{e(0-2*ps, 2)}, 0, "overflows"},
		{"overlap", []*pagemap.PagemapEntry{e(ps, 4), e(4*ps, 1)}, 1, "below the end"},
		{"unsorted", []*pagemap.PagemapEntry{e(8*ps, 1), e(ps, 1)}, 1, "below the end"},
		{"missing required", []*pagemap.PagemapEntry{{Vaddr: u64(ps)}}, 0, "nr_pages is 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := d.WritePagemap(1, 1, tc.entries)
			var fe *FormatError
			if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.As(err, &fe) || fe.Entry != tc.bad+1 {
				t.Fatalf("WritePagemap: %v, want %q at entry %d", err, tc.want, tc.bad+1)
			}
			// The same list written without checks must fail to read.
			path := filepath.Join(d.Path(), PagemapName(2))
			os.WriteFile(path, encodeImage("PAGEMAP", pagemapMessages(1, tc.entries)...), 0o600)
			_, _, err = d.ReadPagemap(2)
			if tc.name == "missing required" {
				// Proto itself rejects the missing required nr_pages.
				if err == nil || !strings.Contains(err.Error(), "required") {
					t.Fatalf("ReadPagemap: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) ||
				!errors.As(err, &fe) || fe.Entry != tc.bad+1 {
				t.Fatalf("ReadPagemap: %v, want %q at entry %d", err, tc.want, tc.bad+1)
			}
		})
	}
	// No head, and a head of the wrong shape.
	path := filepath.Join(d.Path(), PagemapName(3))
	os.WriteFile(path, header("PAGEMAP"), 0o600)
	if _, _, err := d.ReadPagemap(3); err == nil || !strings.Contains(err.Error(), "missing pagemap head") {
		t.Fatalf("no head: %v", err)
	}
	// An empty pagemap is fine.
	if err := d.WritePagemap(4, 3, nil); err != nil {
		t.Fatal(err)
	}
	if id, es, err := d.ReadPagemap(4); err != nil || id != 3 || len(es) != 0 {
		t.Fatalf("empty pagemap: %d %v %v", id, es, err)
	}
	if _, _, err := d.ReadPagemap(5); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing pagemap: %v", err)
	}
}

func TestShow(t *testing.T) {
	d := newDir(t)
	writeSamples(t, d)
	f, _ := d.CreatePages(7)
	f.Write(make([]byte, 3*pageSize))
	f.Close()
	if err := d.WriteTmpfs(41, func(w io.Writer) error { _, err := w.Write([]byte("\x1f\x8b tar")); return err }); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(d.Path(), "dump.log"), []byte("log text\n"), 0o600)
	os.WriteFile(filepath.Join(d.Path(), "core-9.img"), []byte("junk"), 0o600)
	os.WriteFile(filepath.Join(d.Path(), ".core-1.img.tmp-1"), []byte("junk"), 0o600)
	os.Mkdir(filepath.Join(d.Path(), "sub"), 0o700)
	// File names are bytes, not necessarily UTF-8.
	rf := proto.Clone(samples()[7].entries[0]).(*fdinfo.FileEntry).GetReg()
	rf.Name = proto.String("/tmp/caf\xe9")
	if err := d.Write(RegFilesName, "REG_FILES", rf); err != nil {
		t.Fatal(err)
	}

	var buf bytes.Buffer
	if err := Show(&buf, d.Path()); err != nil {
		t.Fatal(err)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatalf("%v\n%s", err, buf.Bytes())
	}
	for _, s := range samples() {
		if doc[s.name]["magic"] != s.magic {
			t.Errorf("%s: %v", s.name, doc[s.name])
		}
	}
	if doc["pages-7.img"]["magic"] != "PAGES" || doc["pages-7.img"]["size"] != float64(3*pageSize) {
		t.Errorf("pages: %v", doc["pages-7.img"])
	}
	if doc[TmpfsName(41)]["magic"] != "TMPFS_TAR" || doc[TmpfsName(41)]["size"] != float64(6) {
		t.Errorf("tmpfs: %v", doc[TmpfsName(41)])
	}
	if f, err := d.OpenTmpfs(41); err != nil {
		t.Errorf("open tmpfs image: %v", err)
	} else {
		f.Close()
	}
	if err := os.Symlink(TmpfsName(41), filepath.Join(d.Path(), TmpfsName(42))); err != nil {
		t.Fatal(err)
	}
	if f, err := d.OpenTmpfs(42); err == nil {
		f.Close()
		t.Error("a tmpfs image that is a symlink was opened")
	}
	if doc[PagemapName(42)]["magic"] != "PAGEMAP" {
		t.Errorf("pagemap: %v", doc[PagemapName(42)])
	}
	if e, _ := doc["core-9.img"]["error"].(string); !strings.Contains(e, "core-9.img") {
		t.Errorf("corrupt image: %v", doc["core-9.img"])
	}
	for _, n := range []string{"dump.log", ".core-1.img.tmp-1", "sub"} {
		if _, ok := doc[n]; ok {
			t.Errorf("%s shown", n)
		}
	}
	if !strings.Contains(buf.String(), `"/tmp/caf\\xe9"`) {
		t.Errorf("non-UTF-8 name not escaped:\n%s", buf.String())
	}
	// Proto field names, as crit shows them.
	if !strings.Contains(buf.String(), `"blk_sigset"`) || !strings.Contains(buf.String(), `"pages_id"`) {
		t.Errorf("proto names missing:\n%s", buf.String())
	}

	buf.Reset()
	if err := Show(&buf, filepath.Join(d.Path(), PstreeName)); err != nil {
		t.Fatal(err)
	}
	var one struct {
		Magic   string
		Entries []map[string]any
	}
	if err := json.Unmarshal(buf.Bytes(), &one); err != nil || one.Magic != "PSTREE" || len(one.Entries) != 2 {
		t.Fatalf("show pstree: %v\n%s", err, buf.Bytes())
	}
	if err := Show(&buf, filepath.Join(d.Path(), "core-9.img")); err == nil {
		t.Fatal("show of a corrupt file succeeded")
	}
	if err := Show(&buf, filepath.Join(d.Path(), "nope.img")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("show missing: %v", err)
	}
}

// TestCRIUCrit decodes cryo's images with CRIU's own (python) crit. CI
// installs it (scripts/install-test-deps.sh), so there a missing crit fails.
func TestCRIUCrit(t *testing.T) {
	critPath, err := exec.LookPath("crit")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CRIU's crit is not installed: scripts/install-test-deps.sh should have installed package criu")
		}
		t.Skip("CRIU's crit is not installed (apt-get install criu): skipping the check that it reads cryo's images")
	}
	d := newDir(t)
	writeSamples(t, d)
	for _, s := range samples() {
		out, err := exec.Command(critPath, "decode", "-i", filepath.Join(d.Path(), s.name)).CombinedOutput()
		if err != nil {
			t.Fatalf("crit decode %s: %v\n%s", s.name, err, out)
		}
		var img struct {
			Magic   string
			Entries []json.RawMessage
		}
		if err := json.Unmarshal(out, &img); err != nil {
			t.Fatalf("crit decode %s: %v\n%s", s.name, err, out)
		}
		if img.Magic != s.magic || len(img.Entries) != len(s.entries) {
			t.Errorf("crit decode %s: magic %s, %d entries; want %s, %d", s.name, img.Magic, len(img.Entries), s.magic, len(s.entries))
		}
	}
	out, err := exec.Command(critPath, "decode", "-i", filepath.Join(d.Path(), PagemapName(42))).CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"PAGEMAP"`) || !strings.Contains(string(out), `"pages_id": 7`) {
		t.Fatalf("crit decode pagemap: %v\n%s", err, out)
	}
	// crit x DIR ps walks pstree.img and the core images of every process.
	if err := d.Write(CoreName(44), "CORE", samples()[2].entries...); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(critPath, "x", d.Path(), "ps").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "sleep") {
		t.Fatalf("crit x ps: %v\n%s", err, out)
	}
}
