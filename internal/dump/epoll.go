package dump

import (
	"fmt"
	"sort"

	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// kcmpEpollTFD is KCMP_EPOLL_TFD of linux/kcmp.h (x/sys/unix lacks it).
const kcmpEpollTFD = 7

// resolveEpollTargets finds the file behind every epoll watch, once every
// descriptor of the tree has its file id. A watch names the descriptor
// number it was added with, but belongs to the file: the number may have
// been closed since (the file still held under another number, or by
// another process) or given to another file. kcmp KCMP_EPOLL_TFD tells
// which descriptor of the tree holds the watched file; its id is saved
// with the watch (image.SetEpollTarget), and restore watches that file
// under the saved number. A watch whose file no descriptor of the tree
// holds is refused.
func (d *dumper) resolveEpollTargets() error {
	for _, o := range d.files.origins {
		if o.entry.GetEpfd() == nil {
			continue
		}
		// toff: the watches with one tfd are told apart by their rank among
		// those with that tfd, in fdinfo's (the kernel's tree) order.
		seen := map[uint32]uint32{}
		for _, w := range o.entry.GetEpfd().GetTfd() {
			tfd := w.GetTfd()
			toff := seen[tfd]
			seen[tfd]++
			id, err := d.findEpollTarget(o, tfd, toff)
			if err != nil {
				return err
			}
			image.SetEpollTarget(w, id)
		}
	}
	return nil
}

// findEpollTarget returns the file id of the descriptor that holds the
// file of watch (tfd, toff): the owner's own descriptor tfd first, then
// its other descriptors, then the other processes'.
func (d *dumper) findEpollTarget(o fileOrigin, tfd, toff uint32) (uint32, error) {
	type cand struct {
		p  *process
		fd int
	}
	var cands []cand
	if _, ok := o.p.fdIDs[int(tfd)]; ok {
		cands = append(cands, cand{o.p, int(tfd)})
	}
	for _, q := range append([]*process{o.p}, d.procs...) {
		fds := make([]int, 0, len(q.fdIDs))
		for fd := range q.fdIDs {
			fds = append(fds, fd)
		}
		sort.Ints(fds)
		for _, fd := range fds {
			cands = append(cands, cand{q, fd})
		}
	}
	for _, c := range cands {
		same, err := kcmpEpollTfd(c.p.pid, c.fd, o.p.pid, o.fd, tfd, toff)
		if err == unix.EINVAL || err == unix.ENOSYS || err == unix.EOPNOTSUPP {
			return 0, fmt.Errorf("%s (epoll): watch of descriptor %d: kcmp KCMP_EPOLL_TFD: %w", o.p.fdName(o.fd), tfd, err)
		}
		if err == nil && same {
			return c.p.fdIDs[c.fd], nil
		}
	}
	return 0, fmt.Errorf("%s (epoll): the file watched under descriptor %d is held by no descriptor of the tree: not supported", o.p.fdName(o.fd), tfd)
}
