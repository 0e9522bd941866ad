package dump

import (
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/pty"

	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// flipSettle is how long the dump waits for bytes still in a pty's flip
// buffers, which a kernel worker moves to the line discipline.
const flipSettle = 20 // ms

// takeOutput takes the bytes the slave wrote that the master has not read
// yet: a terminal cannot be peeked, so they are read, saved in
// tty-data.img, and put back (putBack) if the tree runs on. In packet mode
// each read starts with a status byte: 0 before data; a lone status change
// is dropped.
func (pair *ptyPair) takeOutput(master int) error {
	buf := make([]byte, 4096+1)
	for {
		n, err := unix.IoctlGetInt(master, unix.TIOCINQ)
		if err != nil {
			return fmt.Errorf("TIOCINQ: %w", err)
		}
		if n == 0 {
			fds := []unix.PollFd{{Fd: int32(master), Events: unix.POLLIN}}
			if k, _ := unix.Poll(fds, flipSettle); k <= 0 {
				return nil
			}
			if n, err = unix.IoctlGetInt(master, unix.TIOCINQ); err != nil || n == 0 {
				return nil // a status change, or the slave closed: no bytes
			}
		}
		if len(pair.output)+n > image.MaxTtyData {
			return fmt.Errorf("more than %d bytes queued for the master: not supported", image.MaxTtyData)
		}
		r, err := unix.Read(master, buf[:min(n, 4096)+1])
		if err != nil {
			return fmt.Errorf("read the queued bytes: %w", err)
		}
		data := buf[:r]
		if pair.Packet {
			if r == 0 || data[0] != 0 {
				continue
			}
			data = data[1:]
		}
		pair.output = append(pair.output, data...)
	}
}

// putBack queues the taken bytes for the master again, for a tree that
// runs on (a failed dump, --leave-running); idempotent.
func (pt *ptyTable) putBack() error {
	var errs []error
	for _, index := range pt.order {
		pair := pt.owned[index]
		if len(pair.output) == 0 {
			continue
		}
		if err := pair.putBack(); err != nil {
			errs = append(errs, fmt.Errorf("pty %d: put back %d queued bytes: %w", index, len(pair.output), err))
		}
		pair.output = nil
	}
	return errors.Join(errs...)
}

func (pair *ptyPair) putBack() error {
	master, err := proc.CopyFd(pair.masterPid, pair.masterFd)
	if err != nil {
		return err
	}
	defer unix.Close(master)
	return pty.QueueForMaster(master, pair.output)
}

// writeData writes tty-data.img: the bytes queued for each master.
func (pt *ptyTable) writeData(dir *image.Dir) error {
	var entries []proto.Message
	for _, index := range pt.order {
		if out := pt.owned[index].output; len(out) > 0 {
			entries = append(entries, fdkind.PtyOutput(index, out))
		}
	}
	if len(entries) == 0 {
		return nil
	}
	return dir.Write(image.TtyDataName, "TTY_DATA", entries...)
}
