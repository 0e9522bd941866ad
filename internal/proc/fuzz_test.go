package proc

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// The fuzz targets only demand that the parsers never panic and that what
// they accept is self-consistent. Seeds are the fixed samples plus live
// files of this process, so `go test` exercises real kernel output too.

func addLiveSeed(f *testing.F, path string) {
	if b, err := readFile(path); err == nil {
		f.Add(b)
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte(statLine("1", "a) (b")))
	f.Add([]byte(statLine("1", "")))
	f.Add([]byte("1 (x) S"))
	addLiveSeed(f, "/proc/self/stat")
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := ParseStat(b)
		if err != nil {
			return
		}
		// The comm must be exactly what lies between the first '(' and
		// the last ')'.
		if i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')'); string(b[i+1:j]) != st.Comm {
			t.Errorf("comm %q does not match input %q", st.Comm, b)
		}
	})
}

func FuzzParseStatus(f *testing.F) {
	f.Add([]byte(sampleStatus))
	addLiveSeed(f, "/proc/self/status")
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStatus(b)
		if err == nil && s.HasUmask && s.Umask > 0o37777777777 {
			t.Errorf("umask %o", s.Umask)
		}
	})
}

func FuzzParseSmaps(f *testing.F) {
	f.Add([]byte(sampleSmaps))
	addLiveSeed(f, "/proc/self/smaps")
	f.Fuzz(func(t *testing.T, b []byte) {
		maps, err := ParseSmaps(bytes.NewReader(b))
		if err != nil {
			return
		}
		for _, m := range maps {
			if m.End < m.Start {
				t.Errorf("inverted mapping %+v", m)
			}
			if m.Deleted && !bytes.Contains(b, []byte(m.Path+" (deleted)")) {
				t.Errorf("Deleted mapping %q not in input", m.Path)
			}
		}
	})
}

func FuzzParseLimits(f *testing.F) {
	f.Add([]byte(sampleLimits))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseLimits(b)
	})
}

func FuzzParseFdInfo(f *testing.F) {
	f.Add([]byte("pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\ntfd:        5 events:       19 data:                5  pos:0 ino:3 sdev:e\n"))
	addLiveSeed(f, "/proc/self/fdinfo/0")
	f.Fuzz(func(t *testing.T, b []byte) {
		fi, err := ParseFdInfo(b)
		if err != nil {
			return
		}
		for _, l := range fi.Lines {
			if strings.Contains(l, "\n") {
				t.Errorf("line %q contains a newline", l)
			}
		}
	})
}

func FuzzSmallParsers(f *testing.F) {
	f.Add([]byte("         0          0 4294967295\n"))
	f.Add([]byte("user:[4026531837]"))
	f.Add([]byte(`a\\b\nc`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseIDMap(b)
		ParseNsLink(string(b))
		ParseVmFlags(b)
		ParseAuxv(b)
		if s := unescapeStatusName(b); utf8.ValidString(string(b)) && !utf8.ValidString(s) {
			t.Errorf("unescape made %q invalid UTF-8: %q", b, s)
		}
	})
}
