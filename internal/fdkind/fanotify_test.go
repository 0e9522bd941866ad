package fdkind

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"github.com/cryo-cr/cryo/internal/mountns"
	"google.golang.org/protobuf/proto"
)

// A mount mark line is read whole; filesystem and unknown marks are
// refused in one line that names them; a malformed line is an error.
func TestParseFanotifyMark(t *testing.T) {
	m, err := parseFanotifyMark("mnt_id:1a mflags:40 mask:8 ignored_mask:2")
	if err != nil {
		t.Fatal(err)
	}
	if m.GetType() != fsnotify.MarkType_MOUNT || m.GetMe().GetMntId() != 0x1a || m.GetMflags() != 0x40 || m.GetMask() != 8 || m.GetIgnoredMask() != 2 {
		t.Errorf("mount mark: %v", m)
	}
	for line, want := range map[string]string{
		"sdev:fe00000 mflags:0 mask:8 ignored_mask:0":                                                   "filesystem mark (FAN_MARK_FILESYSTEM) is not supported yet",
		"mnt_ns:4 mflags:0 mask:8 ignored_mask:0":                                                       "mark on a mnt_ns is not supported yet",
		"mnt_id:zz mflags:0 mask:8 ignored_mask:0":                                                      "fanotify mark",
		"ino:12 sdev:fe00000 mflags:0 mask:2 ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:00": "bad file handle",
	} {
		if _, err := parseFanotifyMark(line); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error with %q", line, err, want)
		}
	}
	if _, err := mountPoint([]mountns.Mount{{ID: 3, Point: "/a"}}, 4); err == nil {
		t.Error("an unknown mount id was resolved")
	}
}

// Check refuses what restore could not add again.
func TestFanotifyCheck(t *testing.T) {
	mark := func(typ fsnotify.MarkType, path string, mflags uint32) *fsnotify.FanotifyMarkEntry {
		m := &fsnotify.FanotifyMarkEntry{Type: typ.Enum(), Mflags: proto.Uint32(mflags)}
		if typ == fsnotify.MarkType_MOUNT {
			m.Me = &fsnotify.FanotifyMountMarkEntry{Path: proto.String(path)}
		} else {
			m.Ie = &fsnotify.FanotifyInodeMarkEntry{FHandle: &fh.FhEntry{Path: proto.String(path)}}
		}
		return m
	}
	file := func(marks ...*fsnotify.FanotifyMarkEntry) *fdinfo.FileEntry {
		return &fdinfo.FileEntry{Id: proto.Uint32(1), Type: fdinfo.FdTypes_FANOTIFY.Enum(), Ffy: &fsnotify.FanotifyFileEntry{Mark: marks}}
	}
	if err := (Fanotify{}).Check(file(mark(fsnotify.MarkType_INODE, "/a", 0x40), mark(fsnotify.MarkType_MOUNT, "/", 0))); err != nil {
		t.Errorf("good entry: %v", err)
	}
	for name, f := range map[string]*fdinfo.FileEntry{
		"relative path":  file(mark(fsnotify.MarkType_INODE, "a", 0)),
		"no path":        file(mark(fsnotify.MarkType_MOUNT, "", 0)),
		"NUL in path":    file(mark(fsnotify.MarkType_INODE, "/a\x00b", 0)),
		"unknown type":   file(mark(fsnotify.MarkType(7), "/a", 0)),
		"foreign mflags": file(mark(fsnotify.MarkType_INODE, "/a", fanMarkMount)),
		"too many marks": file(make([]*fsnotify.FanotifyMarkEntry, maxFanotifyMarks+1)...),
	} {
		if err := (Fanotify{}).Check(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
