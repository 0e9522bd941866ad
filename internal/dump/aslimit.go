package dump

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// mapScratch maps the process's scratch memory. A process at its
// RLIMIT_AS has no room for it: the soft limit is lifted (up to the hard
// one) for that one mmap and put back right after, so the process keeps
// its limit (and the image saves it) while cryo gets its few pages. A hard
// limit that leaves no room makes a clear error; the tree is untouched.
func (p *process) mapScratch() error {
	if err := p.memcgRoomFor(p.scratch.sizeFor(p), "cryo's scratch memory"); err != nil {
		return err
	}
	err := p.scratch.mapIn(p)
	if err == nil || !errors.Is(err, unix.ENOMEM) {
		return err
	}
	var old unix.Rlimit
	if lerr := unix.Prlimit(p.pid, unix.RLIMIT_AS, nil, &old); lerr != nil || old.Cur == unix.RLIM_INFINITY {
		return err // not the limit: memory is short
	}
	if old.Max != unix.RLIM_INFINITY && old.Max-old.Cur < p.scratch.sizeFor(p) {
		return fmt.Errorf("process %d is at its RLIMIT_AS (%d bytes, hard limit %d): cryo needs %d bytes of scratch memory in it", p.pid, old.Cur, old.Max, p.scratch.sizeFor(p))
	}
	lifted := unix.Rlimit{Cur: old.Max, Max: old.Max}
	if lerr := unix.Prlimit(p.pid, unix.RLIMIT_AS, &lifted, nil); lerr != nil {
		return fmt.Errorf("process %d is at its RLIMIT_AS (%d bytes) and cryo may not lift it for %d bytes of scratch memory: %w", p.pid, old.Cur, p.scratch.sizeFor(p), lerr)
	}
	mapErr := p.scratch.mapIn(p)
	if lerr := unix.Prlimit(p.pid, unix.RLIMIT_AS, &old, nil); lerr != nil {
		if mapErr == nil {
			p.scratch.unmap()
		}
		return fmt.Errorf("process %d: put back its RLIMIT_AS of %d bytes: %w", p.pid, old.Cur, lerr)
	}
	if mapErr != nil {
		return fmt.Errorf("process %d is at its RLIMIT_AS (%d bytes): %w", p.pid, old.Cur, mapErr)
	}
	p.logf("process %d is at its RLIMIT_AS (%d bytes): lifted for the scratch mapping only", p.pid, old.Cur)
	return nil
}
