package fdkind

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Tty is a terminal file of a pseudo-terminal pair the tree owns (its
// master is in the tree, or it is an orphan slave whose master the caller
// keeps): a side of the pair, or /dev/tty standing for the slave. Its
// entry points at the info entry of its side (tty-info.img), which holds
// the pair's settings. Which pairs are the tree's, and which process
// reads them, is decided by dump (dump/pty.go); which process makes a pair
// again and which session takes it, by restore (restore/pty.go). A
// terminal outside the tree is a Reg (-j, --inherit-fd).
type Tty struct{}

// Type is TTY.
func (Tty) Type() fdinfo.FdTypes { return fdinfo.FdTypes_TTY }

// Check refuses an entry without its payload; LoadPtys checks it against
// its pair.
func (Tty) Check(f *fdinfo.FileEntry) error { return needPayload(f, f.GetTty() != nil) }

// Device numbers of Unix98 pseudo-terminals: the master is /dev/ptmx (5:2),
// slave N is 136:N. The kernel numbers every Unix98 slave under major 136
// (its minors reach 1<<20); majors 137-143 are reserved but never used.
const (
	ptmxMajor, ptmxMinor = 5, 2
	ptsMajor             = 136
)

// PtmxRdev is the device of /dev/ptmx.
func PtmxRdev() uint64 { return unix.Mkdev(ptmxMajor, ptmxMinor) }

// PtsRdev is the device of pty slave index.
func PtsRdev(index uint32) uint64 { return unix.Mkdev(ptsMajor, index) }

// IsDevTty tells whether rdev is /dev/tty (5:0), which opens the caller's
// controlling terminal.
func IsDevTty(rdev uint64) bool { return unix.Major(rdev) == 5 && unix.Minor(rdev) == 0 }

// IsPtyMaster tells whether rdev is /dev/ptmx, a pty master.
func IsPtyMaster(rdev uint64) bool {
	return unix.Major(rdev) == ptmxMajor && unix.Minor(rdev) == ptmxMinor
}

// PtsIndex gives the pty index of a slave device.
func PtsIndex(rdev uint64) (uint32, bool) {
	if unix.Major(rdev) != ptsMajor {
		return 0, false
	}
	return unix.Minor(rdev), true
}

// IsTerminal tells whether a character device is a terminal: a pty slave
// (136-143), a virtual console or serial line (4), /dev/tty, console or
// ptmx (5).
func IsTerminal(rdev uint64) bool {
	major := unix.Major(rdev)
	return major == 4 || major == 5 || (major >= 136 && major <= 143)
}

// DumpTty describes a terminal file of pty index, its master's or its
// slave's side, opened with flags (the file's), as file entry id. regf,
// when not 0, is the regular-file entry of the path it was opened through
// (/dev/tty).
func DumpTty(index uint32, master bool, flags, regf, id uint32) *fdinfo.FileEntry {
	tf := &tty.TtyFileEntry{Id: proto.Uint32(id), TtyInfoId: proto.Uint32(image.TtyInfoID(index, master)), Flags: proto.Uint32(flags), Fown: noOwner()}
	if regf != 0 {
		tf.RegfId = proto.Uint32(regf)
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_TTY.Enum(), Tty: tf}
}

// PtyInfo is what a dump reads of a pty pair, for tty-info.img.
type PtyInfo struct {
	// Index is the pair's number.
	Index uint32
	// termios, termiosLocked and winsize are read by ReadSettings.
	termios, termiosLocked *tty.TermiosEntry
	winsize                *tty.WinsizeEntry
	// Locked, Packet: the slave is locked (TIOCGPTLCK), the master in
	// packet mode (TIOCGPKT).
	Locked, Packet bool
	// MasterExcl, SlaveExcl: each side's exclusive flag (TIOCGEXCL).
	MasterExcl, SlaveExcl bool
	// Sid, Pgrp: the session it controls, its foreground group.
	Sid, Pgrp uint32
	// SlaveRdev, MasterRdev: the devices of its sides.
	SlaveRdev, MasterRdev uint64
	// SlaveUID, SlaveGID: the owner of /dev/pts/N (grantpt), when
	// HaveSlaveOwner.
	SlaveUID, SlaveGID uint32
	HaveSlaveOwner     bool
}

// ReadSettings takes the terminal's termios, locked termios and window
// size through fd, a copy of either end.
func (pi *PtyInfo) ReadSettings(fd int) error {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	pi.termios = termiosEntry(t)
	lt, err := unix.IoctlGetTermios(fd, unix.TIOCGLCKTRMIOS)
	if err != nil {
		return fmt.Errorf("locked termios: %w", err)
	}
	pi.termiosLocked = termiosEntry(lt)
	ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
	if err != nil {
		return fmt.Errorf("window size: %w", err)
	}
	pi.winsize = &tty.WinsizeEntry{WsRow: proto.Uint32(uint32(ws.Row)), WsCol: proto.Uint32(uint32(ws.Col)),
		WsXpixel: proto.Uint32(uint32(ws.Xpixel)), WsYpixel: proto.Uint32(uint32(ws.Ypixel))}
	return nil
}

// termiosEntry is a termios as CRIU saves it.
func termiosEntry(t *unix.Termios) *tty.TermiosEntry {
	cc := make([]uint32, len(t.Cc))
	for i, c := range t.Cc {
		cc[i] = uint32(c)
	}
	return &tty.TermiosEntry{CIflag: proto.Uint32(t.Iflag), COflag: proto.Uint32(t.Oflag), CCflag: proto.Uint32(t.Cflag),
		CLflag: proto.Uint32(t.Lflag), CLine: proto.Uint32(uint32(t.Line)), CIspeed: proto.Uint32(t.Ispeed),
		COspeed: proto.Uint32(t.Ospeed), CCc: cc}
}

// Entries are the pair's two entries of tty-info.img, slave then master.
func (pi *PtyInfo) Entries() []proto.Message {
	var entries []proto.Message
	for _, master := range []bool{false, true} {
		e := &tty.TtyInfoEntry{
			Id: proto.Uint32(image.TtyInfoID(pi.Index, master)), Type: tty.TtyType_PTY.Enum(),
			Locked: proto.Bool(pi.Locked), Exclusive: proto.Bool(pi.SlaveExcl), PacketMode: proto.Bool(pi.Packet),
			Sid: proto.Uint32(pi.Sid), Pgrp: proto.Uint32(pi.Pgrp), Rdev: proto.Uint32(uint32(pi.SlaveRdev)),
			Termios: pi.termios, TermiosLocked: pi.termiosLocked, Winsize: pi.winsize,
			Pty: &tty.TtyPtyEntry{Index: proto.Uint32(pi.Index)},
		}
		if master {
			e.Exclusive, e.Rdev = proto.Bool(pi.MasterExcl), proto.Uint32(uint32(pi.MasterRdev))
		}
		if !master && pi.HaveSlaveOwner {
			e.Uid, e.Gid = proto.Uint32(pi.SlaveUID), proto.Uint32(pi.SlaveGID)
		}
		entries = append(entries, e)
	}
	return entries
}

// PtyOutput is the entry of tty-data.img for the bytes queued for the
// master of pty index.
func PtyOutput(index uint32, data []byte) proto.Message {
	return &tty.TtyDataEntry{TtyId: proto.Uint32(image.TtyInfoID(index, true)), Data: data}
}
