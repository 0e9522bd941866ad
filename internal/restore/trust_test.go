package restore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckImagesTrusted: as root, a directory only root could write
// passes; one a user owns, a file a user owns, a directory writable by
// all or below a user's directory is refused naming the cause; the flag
// passes them all. A link among the files is refused too. A sticky, world-writable parent (as /tmp) is fine.
func TestCheckImagesTrusted(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the check applies to root only; run as root")
	}
	base := t.TempDir()
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	sticky := filepath.Join(base, "sticky")
	if err := os.Mkdir(sticky, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(sticky, 0o777|os.ModeSticky); err != nil {
		t.Fatal(err)
	}
	mk := func(parent string) string {
		dir, err := os.MkdirTemp(parent, "img")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "inventory.img"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	good := mk(sticky)
	if err := CheckImagesTrusted(good, false); err != nil {
		t.Errorf("root's images under a sticky directory: %v", err)
	}
	userOwned := mk(base)
	os.Chown(userOwned, 4243, 4243)
	fileOwned := mk(base)
	os.Chown(filepath.Join(fileOwned, "inventory.img"), 4243, 4243)
	open := mk(base)
	os.Chmod(open, 0o777)
	userParent := filepath.Join(base, "u")
	os.Mkdir(userParent, 0o755)
	os.Chown(userParent, 4243, 4243)
	below := mk(userParent)
	linked := mk(base)
	os.Symlink(filepath.Join(good, "inventory.img"), filepath.Join(linked, "pstree.img"))
	for _, c := range []struct{ dir, want string }{
		{userOwned, "is owned by uid 4243"},
		{fileOwned, "inventory.img is owned by uid 4243"},
		{open, "writable by every user"},
		{below, userParent + " is owned by uid 4243"},
		{linked, "pstree.img is not a regular file"},
	} {
		err := CheckImagesTrusted(c.dir, false)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "--trust-images") {
			t.Errorf("%s: %v, want a refusal saying %q and --trust-images", c.dir, err, c.want)
		}
		if err := CheckImagesTrusted(c.dir, true); err != nil {
			t.Errorf("%s with the flag: %v", c.dir, err)
		}
	}
}

// TestIdentityMap: only the initial user namespace's map is the identity
// over every id.
func TestIdentityMap(t *testing.T) {
	for m, want := range map[string]bool{
		"         0          0 4294967295\n": true,
		"0 4242 1\n":                         false,
		"0 4242 1\n1 100000 65536\n":         false,
		"0 0 65536\n":                        false,
		"":                                   false,
	} {
		if got := identityMap(m); got != want {
			t.Errorf("identityMap(%q) = %v, want %v", m, got, want)
		}
	}
}
