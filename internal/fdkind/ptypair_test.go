package fdkind

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// writePty writes, in a new image directory, tty-info.img for pty index 3
// controlling session 40 and tty-data.img with output for the terminal
// id given, and returns the directory.
func writePty(t *testing.T, dataFor uint32, output []byte) *image.Dir {
	t.Helper()
	dir, err := image.Create(filepath.Join(t.TempDir(), "img"))
	if err != nil {
		t.Fatal(err)
	}
	pi := &PtyInfo{Index: 3, Sid: 40, Pgrp: 41, SlaveRdev: PtsRdev(3), MasterRdev: PtmxRdev(),
		SlaveUID: 1000, SlaveGID: 5, HaveSlaveOwner: true}
	pi.termios, pi.termiosLocked = termiosEntry(&unix.Termios{Lflag: unix.ICANON}), termiosEntry(&unix.Termios{})
	pi.winsize = &tty.WinsizeEntry{WsRow: proto.Uint32(24), WsCol: proto.Uint32(80), WsXpixel: proto.Uint32(0), WsYpixel: proto.Uint32(0)}
	if err := dir.Write(image.TtyInfoName, "TTY_INFO", pi.Entries()...); err != nil {
		t.Fatal(err)
	}
	if output != nil {
		if err := dir.Write(image.TtyDataName, "TTY_DATA", &tty.TtyDataEntry{TtyId: proto.Uint32(dataFor), Data: output}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A pair dump describes is loaded back with its files and queued output;
// a second master, output for the slave, and a terminal file of no pair
// are refused.
func TestPtyPairRoundTrip(t *testing.T) {
	files := map[uint32]*fdinfo.FileEntry{
		1: DumpTty(3, true, unix.O_RDWR, 0, 1),
		2: DumpTty(3, false, unix.O_RDWR, 0, 2),
		3: DumpTty(3, false, unix.O_WRONLY, 0, 3),
	}
	ptys, err := LoadPtys(writePty(t, image.TtyInfoID(3, true), []byte("hello")), files)
	if err != nil {
		t.Fatal(err)
	}
	pair := ptys[3]
	if pair == nil || pair.MasterFile != 1 || len(pair.SlaveFiles) != 2 || pair.Orphan || string(pair.Output) != "hello" {
		t.Fatalf("pair %+v", pair)
	}
	if uid, gid, ok := pair.SlaveOwner(); pair.Sid() != 40 || pair.Pgrp() != 41 || !ok || uid != 1000 || gid != 5 {
		t.Errorf("session %d, group %d, owner %d:%d (%v)", pair.Sid(), pair.Pgrp(), uid, gid, ok)
	}
	if _, err := LoadPtys(writePty(t, image.TtyInfoID(3, false), []byte("x")), files); err == nil || !strings.Contains(err.Error(), "not the master") {
		t.Errorf("output for the slave: %v", err)
	}
	files[4] = DumpTty(3, true, unix.O_RDWR, 0, 4)
	if _, err := LoadPtys(writePty(t, 0, nil), files); err == nil || !strings.Contains(err.Error(), "two master files") {
		t.Errorf("two masters: %v", err)
	}
	delete(files, 4)
	files[5] = DumpTty(9, false, unix.O_RDWR, 0, 5)
	if _, err := LoadPtys(writePty(t, 0, nil), files); err == nil || !strings.Contains(err.Error(), "unknown terminal") {
		t.Errorf("file of no pair: %v", err)
	}
	files[5].GetTty().TtyInfoId = proto.Uint32(image.TtyInfoID(3, false))
	files[5].GetTty().RegfId = proto.Uint32(1) // not /dev/tty's entry
	if _, err := LoadPtys(writePty(t, 0, nil), files); err == nil || !strings.Contains(err.Error(), "/dev/tty") {
		t.Errorf("slave opened through another path: %v", err)
	}
}
