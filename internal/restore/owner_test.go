package restore

import (
	"strings"
	"testing"

	regfile "github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

func TestSafeGhostName(t *testing.T) {
	for name, want := range map[string]bool{
		"/home/u/f":      true,
		"/f":             true,
		"/":              false,
		"f":              false,
		"/home/u/../etc": false,
		"/home/./u":      false,
		"/home//u":       false,
		"/home/u/":       false,
		"/home/u/f\x00x": false,
	} {
		if got := safeGhostName(name); got != want {
			t.Errorf("safeGhostName(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestWantFileCheck(t *testing.T) {
	f := &regfile.RegFileEntry{Mode: proto.Uint32(unix.S_IFREG | 0o640), Size: proto.Uint64(100)}
	reg := unix.Stat_t{Mode: unix.S_IFREG | 0o640, Size: 100, Dev: 1, Ino: 2}
	for _, c := range []struct {
		name string
		w    wantFile
		st   unix.Stat_t
		err  string // "" : accepted
	}{
		{"same", wantFile{f: f, size: true}, reg, ""},
		{"fifo", wantFile{f: f}, unix.Stat_t{Mode: unix.S_IFIFO | 0o640}, "it is a FIFO now, the images say a regular file"},
		{"directory", wantFile{f: f}, unix.Stat_t{Mode: unix.S_IFDIR | 0o640}, "it is a directory now"},
		{"device", wantFile{f: f}, unix.Stat_t{Mode: unix.S_IFCHR | 0o640}, "a character device"},
		{"mode", wantFile{f: f}, unix.Stat_t{Mode: unix.S_IFREG | 0o4640, Size: 100}, "mode"},
		{"grown descriptor", wantFile{f: f}, unix.Stat_t{Mode: unix.S_IFREG | 0o640, Size: 200}, ""},
		{"grown mapping", wantFile{f: f, size: true}, unix.Stat_t{Mode: unix.S_IFREG | 0o640, Size: 200}, "size"},
		{"ghost", wantFile{f: f, dev: 1, ino: 2, size: true}, reg, ""},
		{"other inode", wantFile{f: f, dev: 1, ino: 3, size: true}, reg, "not the file cryo put back"},
	} {
		err := c.w.check(&c.st)
		if (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%s: %v, want %q", c.name, err, c.err)
		}
	}
}
