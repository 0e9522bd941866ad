package userns

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOwnIDOnly(t *testing.T) {
	uid, gid := uint32(os.Geteuid()), uint32(os.Getegid())
	cases := []struct {
		kind IDKind
		m    Map
		want bool
	}{
		{UIDs, Map{{Inside: 0, Outside: uid, Count: 1}}, true},
		{GIDs, Map{{Inside: 5, Outside: gid, Count: 1}}, true},
		{UIDs, Map{{Inside: 0, Outside: uid, Count: 2}}, false},
		{UIDs, Map{{Inside: 0, Outside: uid + 1, Count: 1}}, false},
		{UIDs, Map{{Inside: 0, Outside: uid, Count: 1}, {Inside: 1, Outside: 100000, Count: 10}}, false},
		{GIDs, nil, false},
	}
	for _, c := range cases {
		if got := c.kind.ownIDOnly(c.m); got != c.want {
			t.Errorf("%s %v: ownIDOnly = %v, want %v", c.kind.File(), c.m, got, c.want)
		}
	}
}

// Without the helper on PATH nor in the usual directory: a one-line error
// naming it. With it on PATH: found there.
func TestFindHelper(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PATH", dir)
	_, err := UIDs.findHelper(t.TempDir())
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "newuidmap") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("FindHelper without newuidmap: %v", err)
	}
	path := filepath.Join(dir, "newgidmap")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := GIDs.findHelper(t.TempDir()); err != nil || got != path {
		t.Fatalf("FindHelper = %q, %v; want %s", got, err, path)
	}
}
