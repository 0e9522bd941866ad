package seccomp

import (
	"encoding/binary"
	"fmt"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Call is a system call as a filter sees it (struct seccomp_data).
type Call struct {
	Nr   int32
	Arch uint32 // AUDIT_ARCH_*
	IP   uint64
	Args [6]uint64
}

// data is c as the input of golang.org/x/net/bpf's VM. Seccomp programs
// load only aligned 32-bit words of struct seccomp_data, in the CPU's
// byte order (x86-64 and arm64: little-endian), while the VM loads
// network order: each word is stored byte-swapped so that the VM reads
// the value the kernel would.
func (c Call) data() []byte {
	le := make([]byte, 64)
	binary.LittleEndian.PutUint32(le[0:], uint32(c.Nr))
	binary.LittleEndian.PutUint32(le[4:], c.Arch)
	binary.LittleEndian.PutUint64(le[8:], c.IP)
	for i, a := range c.Args {
		binary.LittleEndian.PutUint64(le[16+8*i:], a)
	}
	be := make([]byte, 64)
	for off := 0; off < 64; off += 4 {
		binary.BigEndian.PutUint32(be[off:], binary.LittleEndian.Uint32(le[off:]))
	}
	return be
}

// Action returns what a chain (oldest first) decides for c, as the kernel
// decides it: every filter runs, newest first, and the result whose
// action (SECCOMP_RET_ACTION_FULL, compared as a signed number) is the
// lowest wins; among equal actions the newest filter's.
func Action(chain []Filter, c Call) (uint32, error) {
	in := c.data()
	ret := uint32(unix.SECCOMP_RET_ALLOW)
	for i := len(chain) - 1; i >= 0; i-- {
		raw := make([]bpf.RawInstruction, chain[i].Insns())
		for j := range raw {
			b := chain[i].Prog[j*InsnSize:]
			raw[j] = bpf.RawInstruction{
				Op: binary.LittleEndian.Uint16(b[0:]),
				Jt: b[2], Jf: b[3],
				K: binary.LittleEndian.Uint32(b[4:]),
			}
		}
		insns, ok := bpf.Disassemble(raw)
		if !ok {
			return 0, fmt.Errorf("seccomp: filter %d holds an instruction cryo cannot evaluate", i)
		}
		vm, err := bpf.NewVM(insns)
		if err != nil {
			return 0, fmt.Errorf("seccomp: filter %d: %w", i, err)
		}
		n, err := vm.Run(in)
		if err != nil {
			return 0, fmt.Errorf("seccomp: filter %d: %w", i, err)
		}
		cur := uint32(n)
		if int32(cur&unix.SECCOMP_RET_ACTION_FULL) < int32(ret&unix.SECCOMP_RET_ACTION_FULL) {
			ret = cur
		}
	}
	return ret, nil
}

// Fatal says whether a filter's result kills the thread or the process
// of a thread whose signals are all blocked: KILL_THREAD, KILL_PROCESS,
// and TRAP (a blocked SIGSYS is delivered with its default action), and
// any action the kernel does not know (it kills then too).
func Fatal(ret uint32) bool {
	switch ret & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_ERRNO, unix.SECCOMP_RET_USER_NOTIF, unix.SECCOMP_RET_TRACE,
		unix.SECCOMP_RET_LOG, unix.SECCOMP_RET_ALLOW:
		return false
	}
	return true
}
