package fdkind

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/cryo-cr/cryo/internal/mountns"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// maxHandle bounds a file handle's bytes (the kernel's MAX_HANDLE_SZ).
const maxHandle = 128

// fileHandle decodes fdinfo's "fhandle-bytes:N fhandle-type:T f_handle:HEX"
// of a watched inode on device sdev and finds the watched path from it
// (open_by_handle_at, which needs CAP_DAC_READ_SEARCH): inotify watches and
// fanotify inode marks are added again by path, as CRIU does. what names
// the watch in errors.
func fileHandle(what string, ino uint64, sdev, hbytes uint32, htype int32, handle string) (*fh.FhEntry, error) {
	raw, err := hex.DecodeString(handle)
	if err != nil || len(raw) != int(hbytes) || hbytes > maxHandle {
		return nil, fmt.Errorf("%s: bad file handle %q", what, handle)
	}
	path, err := handlePath(sdev, htype, raw)
	if err != nil {
		return nil, fmt.Errorf("%s (inode %d): %w", what, ino, err)
	}
	words := make([]uint64, (len(raw)+7)/8)
	for i := range words {
		var b [8]byte
		copy(b[:], raw[8*i:])
		words[i] = binary.LittleEndian.Uint64(b[:])
	}
	return &fh.FhEntry{Bytes: proto.Uint32(hbytes), Type: proto.Uint32(uint32(htype)), Handle: words, Path: proto.String(path)}, nil
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
