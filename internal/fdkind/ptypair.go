package fdkind

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// maxPtyIndex is the kernel's bound on Unix98 pty indexes.
const maxPtyIndex = 1 << 20

// PtyPair is one pseudo-terminal pair of an image, checked: its two info
// entries (tty-info.img), the files of each side and the bytes queued
// for its master (tty-data.img). Restore decides which process makes it
// and which session takes it (restore/pty.go); the pair's own settings are
// applied here (Apply).
type PtyPair struct {
	// Index is the pair's number: its slave is /dev/pts/Index.
	Index         uint32
	master, slave *tty.TtyInfoEntry
	// MasterFile is the master's one open file description (0 for an
	// orphan pair).
	MasterFile uint32
	// SlaveFiles are the slave's, each opened by its path.
	SlaveFiles []uint32
	// CttyFiles are the slave's opened through /dev/tty.
	CttyFiles []uint32
	// Output was written on the slave, for the master to read.
	Output []byte
	// Orphan: the master was outside the tree (no master file): the pair
	// is made in the tree's devpts and its master handed to the caller.
	Orphan bool
}

// Sid is the session the pair controls (0: none).
func (pair *PtyPair) Sid() uint32 { return pair.slave.GetSid() }

// Pgrp is its foreground process group (0: none).
func (pair *PtyPair) Pgrp() uint32 { return pair.slave.GetPgrp() }

// SlaveOwner is the owner of the slave's device node, when it was read.
func (pair *PtyPair) SlaveOwner() (uid, gid uint32, ok bool) {
	return pair.slave.GetUid(), pair.slave.GetGid(), pair.slave.Uid != nil && pair.slave.Gid != nil
}

// SlaveExclusive tells whether the slave was exclusive (TIOCEXCL): set
// last, since it refuses further opens.
func (pair *PtyPair) SlaveExclusive() bool { return pair.slave.GetExclusive() }

// TtyFlags are the flags to open a terminal file again with.
func TtyFlags(f *fdinfo.FileEntry) uint64 { return reopenFlags(f.GetTty().GetFlags()) }

// LoadPtys reads tty-info.img and tty-data.img, and checks every TTY file
// of files (files.img, by id) against them.
func LoadPtys(dir *image.Dir, files map[uint32]*fdinfo.FileEntry) (map[uint32]*PtyPair, error) {
	infos, err := image.ReadEntries[*tty.TtyInfoEntry](dir, image.TtyInfoName, "TTY_INFO")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	byID := map[uint32]*tty.TtyInfoEntry{}
	for _, e := range infos {
		index := e.GetPty().GetIndex()
		if e.GetType() != tty.TtyType_PTY || e.GetPty() == nil || index >= maxPtyIndex || e.GetId()>>1 != index {
			return nil, fmt.Errorf("%s: terminal %d of type %v (index %d) is not supported", image.TtyInfoName, e.GetId(), e.GetType(), index)
		}
		for _, t := range []*tty.TermiosEntry{e.GetTermios(), e.GetTermiosLocked()} {
			if t == nil || len(t.GetCCc()) > len(unix.Termios{}.Cc) {
				return nil, fmt.Errorf("%s: terminal %d: missing or oversized termios", image.TtyInfoName, e.GetId())
			}
		}
		if e.GetWinsize() == nil || byID[e.GetId()] != nil {
			return nil, fmt.Errorf("%s: terminal %d: no window size, or twice", image.TtyInfoName, e.GetId())
		}
		byID[e.GetId()] = e
	}
	ptys := map[uint32]*PtyPair{}
	for id, f := range files {
		t := f.GetTty()
		if t == nil {
			continue
		}
		info := byID[t.GetTtyInfoId()]
		if info == nil {
			return nil, fmt.Errorf("%s: terminal file %d refers to unknown terminal %d", image.FilesName, id, t.GetTtyInfoId())
		}
		index := info.GetPty().GetIndex()
		pair := ptys[index]
		if pair == nil {
			pair = &PtyPair{Index: index, master: byID[image.TtyInfoID(index, true)], slave: byID[image.TtyInfoID(index, false)]}
			if pair.master == nil || pair.slave == nil {
				return nil, fmt.Errorf("%s: pty %d lacks the info of its master or slave", image.TtyInfoName, index)
			}
			ptys[index] = pair
		}
		if t.RegfId != nil {
			// Opened through a path: only /dev/tty, the controlling
			// terminal, is.
			if files[t.GetRegfId()].GetReg().GetName() != "/dev/tty" || info != pair.slave {
				return nil, fmt.Errorf("%s: terminal file %d opened through file %d: only the slave through /dev/tty is supported", image.FilesName, id, t.GetRegfId())
			}
			pair.CttyFiles = append(pair.CttyFiles, id)
		} else if info == pair.master {
			if pair.MasterFile != 0 {
				return nil, fmt.Errorf("%s: pty %d has two master files (%d, %d)", image.FilesName, index, pair.MasterFile, id)
			}
			pair.MasterFile = id
		} else {
			pair.SlaveFiles = append(pair.SlaveFiles, id)
		}
	}
	for index, pair := range ptys {
		slices.Sort(pair.SlaveFiles)
		slices.Sort(pair.CttyFiles)
		if pair.MasterFile == 0 {
			if len(pair.Output) > 0 || pair.slave.GetLocked() || pair.master.GetPacketMode() {
				return nil, fmt.Errorf("%s: orphan pty %d: locked, in packet mode or with queued output", image.TtyInfoName, index)
			}
			pair.Orphan = true
		}
		if pair.slave.GetLocked() && len(pair.SlaveFiles) > 0 {
			return nil, fmt.Errorf("%s: pty %d is locked but its slave is open", image.TtyInfoName, index)
		}
	}
	return ptys, loadPtyData(dir, ptys)
}

// loadPtyData reads tty-data.img: the bytes queued for each master.
func loadPtyData(dir *image.Dir, ptys map[uint32]*PtyPair) error {
	entries, err := image.ReadEntries[*tty.TtyDataEntry](dir, image.TtyDataName, "TTY_DATA")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		pair := ptys[e.GetTtyId()>>1]
		if pair == nil || e.GetTtyId()&1 == 0 || len(pair.Output)+len(e.GetData()) > image.MaxTtyData {
			return fmt.Errorf("%s: %d bytes for terminal %d: not the master of a pty of the image, or too many", image.TtyDataName, len(e.GetData()), e.GetTtyId())
		}
		pair.Output = append(pair.Output, e.GetData()...)
	}
	return nil
}

// Apply gives the pair its settings through its master (ioctls on a
// master act on the slave's terminal). Packet mode comes last: turning it
// on drops the status changes the other settings raised, as nothing read
// them before the dump either.
func (pair *PtyPair) Apply(master int) error {
	if err := unix.IoctlSetTermios(master, unix.TCSETS, termios(pair.slave.GetTermios())); err != nil {
		return fmt.Errorf("termios: %w", err)
	}
	// Setting the locked termios needs CAP_SYS_ADMIN: skipped when the
	// new pair has them already (none locked, as almost always).
	locked := termios(pair.slave.GetTermiosLocked())
	if have, err := unix.IoctlGetTermios(master, unix.TIOCGLCKTRMIOS); err != nil || *have != *locked {
		if err := unix.IoctlSetTermios(master, unix.TIOCSLCKTRMIOS, locked); err != nil {
			return fmt.Errorf("locked termios: %w", err)
		}
	}
	w := pair.slave.GetWinsize()
	ws := &unix.Winsize{Row: uint16(w.GetWsRow()), Col: uint16(w.GetWsCol()), Xpixel: uint16(w.GetWsXpixel()), Ypixel: uint16(w.GetWsYpixel())}
	if err := unix.IoctlSetWinsize(master, unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("window size: %w", err)
	}
	if pair.master.GetExclusive() {
		if err := unix.IoctlSetInt(master, unix.TIOCEXCL, 0); err != nil {
			return fmt.Errorf("exclusive master: %w", err)
		}
	}
	if pair.slave.GetLocked() {
		if err := unix.IoctlSetPointerInt(master, unix.TIOCSPTLCK, 1); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
	}
	if pair.master.GetPacketMode() {
		if err := unix.IoctlSetPointerInt(master, unix.TIOCPKT, 1); err != nil {
			return fmt.Errorf("packet mode: %w", err)
		}
	}
	return nil
}

// termios is a saved termios as the kernel takes it.
func termios(e *tty.TermiosEntry) *unix.Termios {
	t := &unix.Termios{Iflag: e.GetCIflag(), Oflag: e.GetCOflag(), Cflag: e.GetCCflag(), Lflag: e.GetCLflag(),
		Line: uint8(e.GetCLine()), Ispeed: e.GetCIspeed(), Ospeed: e.GetCOspeed()}
	for i, c := range e.GetCCc() {
		t.Cc[i] = uint8(c)
	}
	return t
}
