package image

import (
	"os"
	"path/filepath"
	"testing"
)

// TestParentLink: only a relative link to a real sibling directory is
// followed; absolute links, links leaving the parent directory, links
// into a subdirectory and links through another symbolic link are not.
func TestParentLink(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"d1", "d2", "x/y"} {
		if err := os.MkdirAll(filepath.Join(base, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("d1", filepath.Join(base, "alias")); err != nil {
		t.Fatal(err)
	}
	d2, err := Open(filepath.Join(base, "d2"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err := d2.Parent(); p != nil || err != nil {
		t.Errorf("no link: got %v, %v; want nothing", p, err)
	}
	if err := d2.LinkParent("../d1"); err != nil {
		t.Fatal(err)
	}
	if p, err := d2.Parent(); err != nil || p == nil || p.Path() != filepath.Join(base, "d1") {
		t.Errorf("../d1: got %v, %v", p, err)
	}
	for _, bad := range []string{filepath.Join(base, "d1"), "../../etc", "../x/y", "../alias", "d1", "../d3"} {
		if err := d2.LinkParent(bad); err != nil {
			t.Fatal(err)
		}
		if p, err := d2.Parent(); err == nil {
			t.Errorf("link %q followed to %s", bad, p.Path())
		}
	}
}
