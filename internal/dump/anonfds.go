package dump

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/signalfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timerfd"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/mountns"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// anonKinds are the anonymous-inode descriptors cryo saves, by the name
// /proc/PID/fd shows.
var anonKinds = map[string]fdinfo.FdTypes{
	"anon_inode:[eventfd]":   fdinfo.FdTypes_EVENTFD,
	"anon_inode:[timerfd]":   fdinfo.FdTypes_TIMERFD,
	"anon_inode:[signalfd]":  fdinfo.FdTypes_SIGNALFD,
	"anon_inode:[eventpoll]": fdinfo.FdTypes_EVENTPOLL,
	"anon_inode:inotify":     fdinfo.FdTypes_INOTIFY,
}

// dumpAnon describes an eventfd, timerfd or signalfd from its fdinfo.
func (p *process) dumpAnon(ft *fileTable, fd int, target string, kind fdinfo.FdTypes, info *proc.FdInfo) (*fdinfo.FdinfoEntry, error) {
	entry := func(id uint32) *fdinfo.FdinfoEntry {
		return &fdinfo.FdinfoEntry{Id: proto.Uint32(id), Flags: proto.Uint32(0), Type: kind.Enum(), Fd: proto.Uint32(uint32(fd))}
	}
	if id, ok := p.sameFile(ft.byTarget[target], fd); ok {
		return entry(id), nil
	}
	where := fmt.Sprintf("%s (%s)", p.fdName(fd), target)
	flags := proto.Uint32(info.Flags &^ unix.O_CLOEXEC)
	num := func(key string, base int) (uint64, error) {
		v, ok := info.Extra[key]
		if !ok {
			return 0, fmt.Errorf("%s: no %q in fdinfo", where, key)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), base, 64)
		if err != nil {
			return 0, fmt.Errorf("%s: fdinfo %s %q: %w", where, key, v, err)
		}
		return n, nil
	}
	fe := &fdinfo.FileEntry{Type: kind.Enum()}
	switch kind {
	case fdinfo.FdTypes_EVENTFD:
		count, err := num("eventfd-count", 16)
		if err != nil {
			return nil, err
		}
		fe.Efd = &eventfd.EventfdFileEntry{Flags: flags, Fown: noOwner(), Counter: proto.Uint64(count)}
		if sem, err := num("eventfd-semaphore", 10); err == nil {
			image.SetEventfdSemaphore(fe.Efd, sem != 0)
		}
	case fdinfo.FdTypes_TIMERFD:
		clock, err := num("clockid", 10)
		if err != nil {
			return nil, err
		}
		ticks, err := num("ticks", 10)
		if err != nil {
			return nil, err
		}
		setFlags, err := num("settime flags", 8)
		if err != nil {
			return nil, err
		}
		vs, vns, err := pair(info.Extra["it_value"])
		if err != nil {
			return nil, fmt.Errorf("%s: it_value: %w", where, err)
		}
		is, ins, err := pair(info.Extra["it_interval"])
		if err != nil {
			return nil, fmt.Errorf("%s: it_interval: %w", where, err)
		}
		fe.Tfd = &timerfd.TimerfdEntry{Flags: flags, Fown: noOwner(), Clockid: proto.Uint32(uint32(clock)),
			Ticks: proto.Uint64(ticks), SettimeFlags: proto.Uint32(uint32(setFlags)),
			Vsec: proto.Uint64(vs), Vnsec: proto.Uint64(vns), Isec: proto.Uint64(is), Insec: proto.Uint64(ins)}
	case fdinfo.FdTypes_SIGNALFD:
		mask, err := num("sigmask", 16)
		if err != nil {
			return nil, err
		}
		fe.Sgfd = &signalfd.SignalfdEntry{Flags: flags, Fown: noOwner(), Sigmask: proto.Uint64(mask)}
	case fdinfo.FdTypes_EVENTPOLL:
		// "tfd: N events: HEX data: HEX pos:... ino:... sdev:...", one line
		// per watched descriptor, numbered in this process.
		ep := &eventpoll.EventpollFileEntry{Flags: flags, Fown: noOwner()}
		for _, line := range info.Lines {
			var tfd uint32
			var events uint32
			var data uint64
			if _, err := fmt.Sscanf(line, "tfd: %d events: %x data: %x", &tfd, &events, &data); err != nil {
				continue
			}
			ep.Tfd = append(ep.Tfd, &eventpoll.EventpollTfdEntry{Id: proto.Uint32(0), Tfd: proto.Uint32(tfd), Events: proto.Uint32(events), Data: proto.Uint64(data)})
		}
		fe.Epfd = ep
		ft.epolls = append(ft.epolls, epollOwner{p: p, fd: fd, entry: ep})
	case fdinfo.FdTypes_INOTIFY:
		in := &fsnotify.InotifyFileEntry{Flags: flags, Fown: noOwner()}
		for _, line := range info.Lines {
			w, err := parseInotifyWatch(line)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			if w != nil {
				in.Wd = append(in.Wd, w)
			}
		}
		sort.Slice(in.Wd, func(i, j int) bool { return in.Wd[i].GetWd() < in.Wd[j].GetWd() })
		fe.Ify = in
	}
	id := ft.add(fe)
	switch kind {
	case fdinfo.FdTypes_EVENTFD:
		fe.Efd.Id = proto.Uint32(id)
	case fdinfo.FdTypes_TIMERFD:
		fe.Tfd.Id = proto.Uint32(id)
	case fdinfo.FdTypes_SIGNALFD:
		fe.Sgfd.Id = proto.Uint32(id)
	case fdinfo.FdTypes_EVENTPOLL:
		fe.Epfd.Id = proto.Uint32(id)
		for _, t := range fe.Epfd.Tfd {
			t.Id = proto.Uint32(id)
		}
	case fdinfo.FdTypes_INOTIFY:
		fe.Ify.Id = proto.Uint32(id)
		for _, w := range fe.Ify.Wd {
			w.Id = proto.Uint32(id)
		}
	}
	ft.byTarget[target] = append(ft.byTarget[target], seenFile{p.pid, fd, id})
	return entry(id), nil
}

// pair parses fdinfo's "(sec, nsec)".
func pair(s string) (uint64, uint64, error) {
	s = strings.Trim(strings.TrimSpace(s), "()")
	a, b, ok := strings.Cut(s, ",")
	if !ok {
		return 0, 0, fmt.Errorf("%q is not (sec, nsec)", s)
	}
	x, err := strconv.ParseUint(strings.TrimSpace(a), 10, 64)
	if err != nil {
		return 0, 0, err
	}
	y, err := strconv.ParseUint(strings.TrimSpace(b), 10, 64)
	return x, y, err
}

// pokeTimerfds makes the kernel count the expirations of every timerfd
// (it does so lazily): an injected timerfd_gettime updates what fdinfo
// shows, its ticks and its next expiry.
func (p *process) pokeTimerfds() error {
	fds, err := proc.Fds(p.pid)
	if err != nil {
		return fmt.Errorf("process %d: list descriptors: %w", p.pid, err)
	}
	for _, fd := range fds {
		if target, err := proc.FdTarget(p.pid, fd); err != nil || target != "anon_inode:[timerfd]" {
			continue
		}
		if _, err := p.leader().Syscall(unix.SYS_TIMERFD_GETTIME, uint64(fd), p.scratch.addr+scratchStack); err != nil {
			return fmt.Errorf("%s: timerfd_gettime: %w", p.fdName(fd), err)
		}
	}
	return nil
}

// parseInotifyWatch reads one "inotify wd:.. ino:.. sdev:.. mask:..
// ignored_mask:.. fhandle-bytes:.. fhandle-type:.. f_handle:.." line and
// finds the watched path from the file handle (open_by_handle_at, which
// needs CAP_DAC_READ_SEARCH), since inotify watches are added by path.
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
	raw, err := hex.DecodeString(handle)
	if err != nil || len(raw) != int(hbytes) {
		return nil, fmt.Errorf("inotify watch %d: bad file handle %q", wd, handle)
	}
	path, err := handlePath(sdev, htype, raw)
	if err != nil {
		return nil, fmt.Errorf("inotify watch %d (inode %d): %w", wd, ino, err)
	}
	words := make([]uint64, (len(raw)+7)/8)
	for i := range words {
		var b [8]byte
		copy(b[:], raw[8*i:])
		words[i] = binary.LittleEndian.Uint64(b[:])
	}
	return &fsnotify.InotifyWdEntry{
		IIno: proto.Uint64(ino), Mask: proto.Uint32(mask), IgnoredMask: proto.Uint32(ignored),
		SDev: proto.Uint32(sdev), Wd: proto.Uint32(wd),
		FHandle: &fh.FhEntry{Bytes: proto.Uint32(hbytes), Type: proto.Uint32(uint32(htype)), Handle: words, Path: proto.String(path)},
	}, nil
}

// handlePath resolves a file handle on the filesystem of device sdev (the
// kernel's encoding: major<<20 | minor) to a path, through a mount of it.
func handlePath(sdev uint32, htype int32, raw []byte) (string, error) {
	mounts, err := mountns.Read(os.Getpid())
	if err != nil {
		return "", err
	}
	dev := fmt.Sprintf("%d:%d", sdev>>20, sdev&0xfffff)
	for _, m := range mounts {
		if m.Dev != sdev {
			continue
		}
		mfd, err := unix.Open(m.Point, unix.O_RDONLY|unix.O_CLOEXEC, 0) // not O_PATH: open_by_handle_at refuses it
		if err != nil {
			continue
		}
		fd, err := unix.OpenByHandleAt(mfd, unix.NewFileHandle(htype, raw), unix.O_PATH|unix.O_CLOEXEC)
		unix.Close(mfd)
		if errors.Is(err, unix.EPERM) {
			return "", fmt.Errorf("finding the watched file by its handle (open_by_handle_at) needs CAP_DAC_READ_SEARCH: %w", err)
		}
		if err != nil {
			continue
		}
		path, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
		unix.Close(fd)
		if err == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("no mount of device %s reaches the watched file", dev)
}
