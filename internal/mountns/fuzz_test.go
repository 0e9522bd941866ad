package mountns

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzExtract feeds arbitrary bytes to the tmpfs archive reader (a
// gzipped tar from an image directory: untrusted). It must fail or
// extract, never panic, and never make anything outside its directory.
func FuzzExtract(f *testing.F) {
	src := f.TempDir()
	if err := os.WriteFile(filepath.Join(src, "data"), []byte("cryo"), 0o600); err != nil {
		f.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(src, "sub"), 0o700); err != nil {
		f.Fatal(err)
	}
	if err := os.Symlink("../data", filepath.Join(src, "sub", "link")); err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := Archive(&buf, src); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:buf.Len()/2])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		outer := t.TempDir()
		dst := filepath.Join(outer, "dst")
		if err := os.Mkdir(dst, 0o700); err != nil {
			t.Fatal(err)
		}
		Extract(bytes.NewReader(data), dst)
		ents, err := os.ReadDir(outer)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		if len(names) != 1 {
			t.Fatalf("the archive made %s beside its directory", strings.Join(names, ", "))
		}
	})
}
