package restore

import (
	"encoding/binary"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// inCryoUserns tells whether p is in cryo's user namespace, where cryo
// (root) has the capability to choose ids in every pid namespace: the
// blank stub unless it entered the tree's user namespace to make the
// root's pid namespace (rootUserns), a process of the tree until it
// enters its own user namespace.
func (p *process) inCryoUserns() bool {
	if p.r.stub != nil && p.leader == p.r.stub {
		return p.r.rootUserns == 0
	}
	return p.userns == nil
}

// cloneBothLevels injects a clone3 that gives the new task id inner in
// the pid namespace it is born in (1 when it makes one) and outer in the
// one above, cryo's, by set_tid: no other task can take either meanwhile,
// unlike ns_last_pid. p must be in cryo's user namespace (inCryoUserns).
// It returns the id the parent sees, as clone3 does.
func (p *process) cloneBothLevels(inner, outer uint32, flags, exitSignal uint64) (uint64, error) {
	if flags&unix.CLONE_NEWPID != 0 {
		inner = 1
	}
	args := ptrace.CloneArgs{Flags: flags, ExitSignal: exitSignal, SetTid: p.scratch + 128, SetTidSize: 2}
	// set_tid points to an array of pid_t (32 bits), innermost first.
	ids := binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, inner), outer)
	if _, err := p.putAt(128, ids); err != nil {
		return 0, err
	}
	if _, err := p.put(args.Bytes()); err != nil {
		return 0, err
	}
	p.r.logf("restore pid %d: clone3 with set_tid {%d, %d}: both ids chosen", outer, inner, outer)
	return p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
}

// cloneSetTid injects a clone3 whose set_tid array of n ids the caller
// put at scratch+128, innermost first.
func (p *process) cloneSetTid(flags, exitSignal uint64, n uint64) (uint64, error) {
	args := ptrace.CloneArgs{Flags: flags, ExitSignal: exitSignal, SetTid: p.scratch + 128, SetTidSize: n}
	if _, err := p.put(args.Bytes()); err != nil {
		return 0, err
	}
	return p.leader.Syscall(unix.SYS_CLONE3, p.scratch, uint64(len(args.Bytes())))
}
