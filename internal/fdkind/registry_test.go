package fdkind

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"google.golang.org/protobuf/proto"
)

// madeByTree are the kinds restore still makes itself: a pty pair with the
// tree's sessions (restore/pty.go), Unix sockets with the links between
// sockets of several processes (restore/unixsk.go). Every other kind is
// made one way: Simple, Planner, Opened or Socket.
var madeByTree = map[fdinfo.FdTypes]bool{fdinfo.FdTypes_TTY: true, fdinfo.FdTypes_UNIXSK: true}

// Every CRIU file type maps to exactly one registry entry, which has a kind
// of that type or a refusal; every moved kind has all its parts (detect and
// dump, check, create) and a /proc name no other kind claims.
func TestRegistryCoversCRIUTypes(t *testing.T) {
	seen := map[fdinfo.FdTypes]bool{}
	targets := map[string]fdinfo.FdTypes{}
	for _, e := range Registry() {
		if seen[e.Type] {
			t.Errorf("%v: two entries", e.Type)
		}
		seen[e.Type] = true
		switch {
		case e.Kind == nil && strings.TrimSpace(e.Refused) == "":
			t.Errorf("%v: neither a kind nor a refusal", e.Type)
		case e.Kind != nil && e.Refused != "":
			t.Errorf("%v: both a kind and a refusal", e.Type)
		case e.Kind != nil && e.Kind.Type() != e.Type:
			t.Errorf("%v: its kind says %v", e.Type, e.Kind.Type())
		}
		if e.Kind == nil {
			continue
		}
		s, simple := e.Kind.(Simple)
		_, planner := e.Kind.(Planner)
		opened, socket := OpenedOf(e.Type), SocketOf(e.Type)
		_, family := e.Kind.(FamilySocket)
		ways := 0
		for _, made := range []bool{simple, planner, opened != nil, socket != nil, family} {
			if made {
				ways++
			}
		}
		if ways > 1 || (ways == 1) == madeByTree[e.Type] {
			t.Errorf("%v: made %d ways (simple %v, planner %v, opened %v, socket %v, family socket %v), made by the tree %v", e.Type, ways, simple, planner, opened != nil, socket != nil, family, madeByTree[e.Type])
		}
		if !simple {
			continue
		}
		if s.Target() == "" {
			t.Errorf("%v: no /proc name", e.Type)
		} else if other, dup := targets[s.Target()]; dup {
			t.Errorf("%v and %v both claim %s", e.Type, other, s.Target())
		}
		targets[s.Target()] = e.Type
		if Detect(s.Target()) != s || SimpleOf(e.Type) != s {
			t.Errorf("%v: not found by Detect or SimpleOf", e.Type)
		}
	}
	for v := range fdinfo.FdTypes_name {
		if !seen[fdinfo.FdTypes(v)] {
			t.Errorf("CRIU file type %v has no registry entry", fdinfo.FdTypes(v))
		}
	}
}

// An entry of any type without its payload, and an entry of a refused
// type, are refused in one line, never used.
func TestCheckFileRefuses(t *testing.T) {
	for _, e := range Registry() {
		f := &fdinfo.FileEntry{Id: proto.Uint32(7), Type: e.Type.Enum()}
		err := CheckFile(f)
		if err == nil {
			t.Errorf("%v without payload: accepted", e.Type)
			continue
		}
		if want := "file 7 of type " + e.Type.String() + " is not supported yet"; err.Error() != want {
			t.Errorf("%v: %q, want %q", e.Type, err, want)
		}
	}
}

// An inotify entry with a watch restore could not add by its path is
// refused; a good one is accepted.
func TestInotifyCheck(t *testing.T) {
	file := func(path string) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Id: proto.Uint32(2), Type: fdinfo.FdTypes_INOTIFY.Enum(), Ify: &fsnotify.InotifyFileEntry{
			Wd: []*fsnotify.InotifyWdEntry{{Wd: proto.Uint32(1), FHandle: &fh.FhEntry{Path: proto.String(path)}}}}}
	}
	if err := (Inotify{}).Check(file("/tmp/x")); err != nil {
		t.Errorf("good entry: %v", err)
	}
	for _, path := range []string{"", "tmp/x", "/a\x00b", "/" + strings.Repeat("a", 5000)} {
		if err := (Inotify{}).Check(file(path)); err == nil {
			t.Errorf("path %.20q: accepted", path)
		}
	}
}
