package dump

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/proc"
)

// A process in a memory cgroup near its limit: memory cryo makes the
// kernel charge there (the pages of its scratch mapping, which cryo
// writes; a snapshot child's page tables, and the pages the tree then
// writes, copied on write) can exceed the limit, and the kernel then
// kills a process of that cgroup, a process of the tree, to make room.
// So the dump looks at the room the process's memory cgroups leave
// (limit - usage + reclaimable file cache, over the cgroup and its
// ancestors) before it maps scratch memory (too little: the dump is
// refused, the tree untouched) and before it takes a snapshot (too
// little: no snapshot, the memory is copied while frozen, as the log
// says).

// memcgMargin is added to what cryo's own pages need: page tables, the
// kernel's structures, the tree's own allocations meanwhile.
const memcgMargin = 256 << 10

// memcgRoomFor fails if the memory cgroups of p leave less than need
// bytes (plus memcgMargin) for what; the error says how much there is.
func (p *process) memcgRoomFor(need uint64, what string) error {
	room, ok := proc.MemcgHeadroom(p.pid)
	if !ok || room.Bytes >= need+memcgMargin {
		return nil
	}
	return fmt.Errorf("process %d: its memory cgroup %s has %d bytes left, and %s needs %d more: the kernel would kill a process of the cgroup to make room; raise its limit", p.pid, room.Dir, room.Bytes, what, need+memcgMargin)
}

// snapshotCharge is what a snapshot of p may make its memory cgroup
// charge, at worst: every page still to copy from it written by the tree
// meanwhile (copied on write), and the child's page tables.
func snapshotCharge(runs []pageRun) uint64 {
	var n uint64
	for _, r := range runs {
		if !r.frozen && !r.parent {
			n += r.size
		}
	}
	return n + n/512
}
