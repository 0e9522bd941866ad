package fdkind

import (
	"fmt"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/remote"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Fanotify is a fanotify group: its fanotify_init flags and event file
// flags, and its marks: inode marks (added again by the path their file
// handle leads to, as CRIU does) and mount marks (by the mount point of
// their mount in the process's mount namespace). Filesystem and mount
// namespace marks are refused at dump. Events queued or waiting for a
// permission answer are not saved: the group comes back empty.
type Fanotify struct{}

// fanotify_mark flags as the kernel shows them in fdinfo's mflags and
// takes them (linux/fanotify.h).
const (
	fanMarkAdd               = 0x1
	fanMarkDontFollow        = 0x4
	fanMarkMount             = 0x10
	fanMarkIgnoredMask       = 0x20
	fanMarkIgnoredSurvModify = 0x40
	fanMarkEvictable         = 0x200
	fanMarkIgnore            = 0x400
	fanMarkFlagsKept         = fanMarkIgnoredSurvModify | fanMarkEvictable | fanMarkIgnore
	fanInitCloexecNonblock   = unix.FAN_CLOEXEC | unix.FAN_NONBLOCK
	maxFanotifyMarks         = 1 << 16
)

// Type is FANOTIFY.
func (Fanotify) Type() fdinfo.FdTypes { return fdinfo.FdTypes_FANOTIFY }

// Target is how /proc/PID/fd names a fanotify group.
func (Fanotify) Target() string { return "anon_inode:[fanotify]" }

// Check refuses an entry without its payload, with too many marks, or
// with a mark restore could not add again: of an unknown type, without the
// path it is added by, or with flags fanotify_mark would take for others.
func (Fanotify) Check(f *fdinfo.FileEntry) error {
	e := f.GetFfy()
	if err := needPayload(f, e != nil); err != nil {
		return err
	}
	if n := len(e.GetMark()); n > maxFanotifyMarks {
		return fmt.Errorf("fanotify %d: %d marks", f.GetId(), n)
	}
	for i, m := range e.GetMark() {
		var path string
		switch m.GetType() {
		case fsnotify.MarkType_INODE:
			path = m.GetIe().GetFHandle().GetPath()
		case fsnotify.MarkType_MOUNT:
			path = m.GetMe().GetPath()
		default:
			return fmt.Errorf("fanotify %d: mark %d of type %v", f.GetId(), i, m.GetType())
		}
		if err := checkPath(path); err != nil {
			return fmt.Errorf("fanotify %d: mark %d: %w", f.GetId(), i, err)
		}
		if m.GetMflags()&^fanMarkFlagsKept != 0 {
			return fmt.Errorf("fanotify %d: mark %d: flags %#x", f.GetId(), i, m.GetMflags())
		}
	}
	return nil
}

// Dump reads the group and its marks from fdinfo.
func (Fanotify) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	e := &fsnotify.FanotifyFileEntry{Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner()}
	var mounts []mountns.Mount
	group := false
	for _, line := range d.Info().Lines {
		rest, ok := strings.CutPrefix(line, "fanotify ")
		if !ok {
			continue
		}
		if strings.HasPrefix(rest, "flags:") {
			var flags, evflags uint32
			if _, err := fmt.Sscanf(rest, "flags:%x event-flags:%x", &flags, &evflags); err != nil {
				return nil, fmt.Errorf("%s: fanotify group %q: %w", d.Where(), line, err)
			}
			e.Faflags, e.Evflags, group = proto.Uint32(flags), proto.Uint32(evflags), true
			continue
		}
		m, err := parseFanotifyMark(rest)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Where(), err)
		}
		m.Id = proto.Uint32(id)
		if me := m.GetMe(); me != nil {
			if mounts == nil {
				if mounts, err = mountns.Read(d.Pid()); err != nil {
					return nil, fmt.Errorf("%s: fanotify mount mark: %w", d.Where(), err)
				}
			}
			path, err := mountPoint(mounts, me.GetMntId())
			if err != nil {
				return nil, fmt.Errorf("%s: %w", d.Where(), err)
			}
			me.Path = proto.String(path)
		}
		e.Mark = append(e.Mark, m)
	}
	if !group {
		return nil, fmt.Errorf("%s: no fanotify group line in fdinfo", d.Where())
	}
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_FANOTIFY.Enum(), Ffy: e}, nil
}

// parseFanotifyMark reads one mark line of fdinfo, after "fanotify ":
// "ino:.. sdev:.. mflags:.. mask:.. ignored_mask:.. fhandle-bytes:..
// fhandle-type:.. f_handle:.." for an inode, "mnt_id:.. mflags:.. mask:..
// ignored_mask:.." for a mount. Other marks are refused.
func parseFanotifyMark(rest string) (*fsnotify.FanotifyMarkEntry, error) {
	var mflags, mask, ignored uint32
	switch {
	case strings.HasPrefix(rest, "ino:"):
		var sdev, hbytes uint32
		var ino uint64
		var htype int32
		var handle string
		if _, err := fmt.Sscanf(rest, "ino:%x sdev:%x mflags:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%s",
			&ino, &sdev, &mflags, &mask, &ignored, &hbytes, &htype, &handle); err != nil {
			return nil, fmt.Errorf("fanotify mark %q: %w", rest, err)
		}
		h, err := fileHandle("fanotify inode mark", ino, sdev, hbytes, htype, handle)
		if err != nil {
			return nil, err
		}
		return &fsnotify.FanotifyMarkEntry{Type: fsnotify.MarkType_INODE.Enum(), Mflags: proto.Uint32(mflags),
			Mask: proto.Uint32(mask), IgnoredMask: proto.Uint32(ignored), SDev: proto.Uint32(sdev),
			Ie: &fsnotify.FanotifyInodeMarkEntry{IIno: proto.Uint64(ino), FHandle: h}}, nil
	case strings.HasPrefix(rest, "mnt_id:"):
		var mnt uint32
		if _, err := fmt.Sscanf(rest, "mnt_id:%x mflags:%x mask:%x ignored_mask:%x", &mnt, &mflags, &mask, &ignored); err != nil {
			return nil, fmt.Errorf("fanotify mark %q: %w", rest, err)
		}
		return &fsnotify.FanotifyMarkEntry{Type: fsnotify.MarkType_MOUNT.Enum(), Mflags: proto.Uint32(mflags),
			Mask: proto.Uint32(mask), IgnoredMask: proto.Uint32(ignored), SDev: proto.Uint32(0),
			Me: &fsnotify.FanotifyMountMarkEntry{MntId: proto.Uint32(mnt)}}, nil
	case strings.HasPrefix(rest, "sdev:"):
		return nil, fmt.Errorf("fanotify filesystem mark (FAN_MARK_FILESYSTEM) is not supported yet")
	}
	what, _, _ := strings.Cut(rest, ":")
	return nil, fmt.Errorf("fanotify mark on a %s is not supported yet", what)
}

// mountPoint is where mount mnt is, seen from the process's root.
func mountPoint(mounts []mountns.Mount, mnt uint32) (string, error) {
	for _, m := range mounts {
		if m.ID == mnt {
			return m.Point, nil
		}
	}
	return "", fmt.Errorf("fanotify mount mark: mount %d is not in the process's mount namespace", mnt)
}

// Create makes the group and adds its marks by path, as the process
// (AsOwner), without following a last symbolic link: an inode mark's path
// names the marked inode itself.
func (Fanotify) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetFfy()
	// The group is made with the flags it was made with, which its fdinfo
	// shows; the file then gets its flags of now (F_SETFL may have
	// changed O_NONBLOCK since).
	fd, err := m.Syscall(unix.SYS_FANOTIFY_INIT, uint64(e.GetFaflags()), uint64(e.GetEvflags()))
	if err != nil {
		return 0, fmt.Errorf("%s: fanotify_init: %w", m.Where(), err)
	}
	if _, err := m.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(e.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return 0, fmt.Errorf("%s: flags: %w", m.Where(), err)
	}
	add := func() error {
		for _, mk := range e.GetMark() {
			if err := addFanotifyMark(m, fd, mk); err != nil {
				return err
			}
		}
		return nil
	}
	if err := m.AsOwner(add); err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}

// addFanotifyMark adds one mark's mask, then its ignored mask.
func addFanotifyMark(m Maker, fd uint64, mk *fsnotify.FanotifyMarkEntry) error {
	path, flags := mk.GetIe().GetFHandle().GetPath(), uint64(fanMarkAdd|fanMarkDontFollow)
	if mk.GetType() == fsnotify.MarkType_MOUNT {
		path, flags = mk.GetMe().GetPath(), fanMarkAdd|fanMarkMount
	}
	flags |= uint64(mk.GetMflags() & fanMarkEvictable)
	addr, err := m.PutString(path)
	if err != nil {
		return err
	}
	if mask := mk.GetMask(); mask != 0 {
		if _, err := m.Syscall(unix.SYS_FANOTIFY_MARK, fd, flags, uint64(mask), remote.AtFdcwd, addr); err != nil {
			return fmt.Errorf("fanotify_mark %s mask %#x: %w", path, mask, err)
		}
	}
	if ignored := mk.GetIgnoredMask(); ignored != 0 {
		iflags := flags | uint64(mk.GetMflags()&fanMarkIgnoredSurvModify)
		if mk.GetMflags()&fanMarkIgnore != 0 {
			iflags |= fanMarkIgnore
		} else {
			iflags |= fanMarkIgnoredMask
		}
		if _, err := m.Syscall(unix.SYS_FANOTIFY_MARK, fd, iflags, uint64(ignored), remote.AtFdcwd, addr); err != nil {
			return fmt.Errorf("fanotify_mark %s ignored mask %#x: %w", path, ignored, err)
		}
	}
	return nil
}
