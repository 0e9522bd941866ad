package fdkind

import (
	"fmt"
	"sort"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// Inotify is an inotify instance and its watches (by the path their file
// handle leads to). Queued events are not saved.
type Inotify struct{}

// Type is INOTIFY.
func (Inotify) Type() fdinfo.FdTypes { return fdinfo.FdTypes_INOTIFY }

// Target is how /proc/PID/fd names an inotify instance.
func (Inotify) Target() string { return "anon_inode:inotify" }

// maxInotifyWatches bounds an entry's watches (the kernel's default
// max_user_watches is far lower).
const maxInotifyWatches = 1 << 20

// Check refuses an entry without its payload, with too many watches, or
// with a watch whose path is not one restore may add it by.
func (Inotify) Check(f *fdinfo.FileEntry) error {
	e := f.GetIfy()
	if err := needPayload(f, e != nil); err != nil {
		return err
	}
	if n := len(e.GetWd()); n > maxInotifyWatches {
		return fmt.Errorf("inotify %d: %d watches", f.GetId(), n)
	}
	for _, w := range e.GetWd() {
		if err := checkPath(w.GetFHandle().GetPath()); err != nil {
			return fmt.Errorf("inotify %d: watch %d: %w", f.GetId(), w.GetWd(), err)
		}
	}
	return nil
}

// Dump reads the watches from fdinfo, in the order of their descriptors.
func (Inotify) Dump(d Dumped, id uint32) (*fdinfo.FileEntry, error) {
	in := &fsnotify.InotifyFileEntry{Id: proto.Uint32(id), Flags: fileFlags(d), Fown: noOwner()}
	for _, line := range d.Info().Lines {
		w, err := parseInotifyWatch(line)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", d.Where(), err)
		}
		if w != nil {
			w.Id = proto.Uint32(id)
			in.Wd = append(in.Wd, w)
		}
	}
	sort.Slice(in.Wd, func(i, j int) bool { return in.Wd[i].GetWd() < in.Wd[j].GetWd() })
	return &fdinfo.FileEntry{Type: fdinfo.FdTypes_INOTIFY.Enum(), Ify: in}, nil
}

// parseInotifyWatch reads one "inotify wd:.. ino:.. sdev:.. mask:..
// ignored_mask:.. fhandle-bytes:.. fhandle-type:.. f_handle:.." line; nil
// for other lines.
func parseInotifyWatch(line string) (*fsnotify.InotifyWdEntry, error) {
	if !strings.HasPrefix(line, "inotify ") {
		return nil, nil
	}
	var wd, mask, ignored, sdev, hbytes uint32
	var ino uint64
	var htype int32
	var handle string
	if _, err := fmt.Sscanf(line, "inotify wd:%x ino:%x sdev:%x mask:%x ignored_mask:%x fhandle-bytes:%x fhandle-type:%x f_handle:%s",
		&wd, &ino, &sdev, &mask, &ignored, &hbytes, &htype, &handle); err != nil {
		return nil, fmt.Errorf("inotify watch %q: %w", line, err)
	}
	h, err := fileHandle(fmt.Sprintf("inotify watch %d", wd), ino, sdev, hbytes, htype, handle)
	if err != nil {
		return nil, err
	}
	return &fsnotify.InotifyWdEntry{
		IIno: proto.Uint64(ino), Mask: proto.Uint32(mask), IgnoredMask: proto.Uint32(ignored),
		SDev: proto.Uint32(sdev), Wd: proto.Uint32(wd), FHandle: h,
	}, nil
}

// Create makes the instance and adds its watches by path, in the order of
// their descriptors, which the kernel hands out one after the other; as
// the process (AsOwner): a watch needs read access to what it watches,
// which a symlink planted since must not give.
func (Inotify) Create(m Maker, f *fdinfo.FileEntry) (uint64, error) {
	e := f.GetIfy()
	fd, err := m.Syscall(unix.SYS_INOTIFY_INIT1, uint64(e.GetFlags()&unix.O_NONBLOCK)|unix.IN_CLOEXEC)
	add := func() error {
		for _, w := range e.GetWd() {
			addr, err := m.PutString(w.GetFHandle().GetPath())
			if err != nil {
				return err
			}
			wd, err := m.Syscall(unix.SYS_INOTIFY_ADD_WATCH, fd, addr, uint64(w.GetMask()))
			if err == nil && wd != uint64(w.GetWd()) {
				err = fmt.Errorf("watch of %s came back as %d, not %d (the watches had gaps)", w.GetFHandle().GetPath(), wd, w.GetWd())
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err == nil {
		err = m.AsOwner(add)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", m.Where(), err)
	}
	return fd, nil
}
