package seccomp

import (
	"encoding/binary"
	"testing"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// rule is a filter returning ret for call nr of arch, ALLOW otherwise,
// and KILL_PROCESS for any other arch, in the shape programs use.
func rule(t *testing.T, arch uint32, nr int32, ret uint32) Filter {
	t.Helper()
	raw, err := bpf.Assemble([]bpf.Instruction{
		bpf.LoadAbsolute{Off: 4, Size: 4}, // arch
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: arch, SkipTrue: 1},
		bpf.RetConstant{Val: unix.SECCOMP_RET_KILL_PROCESS},
		bpf.LoadAbsolute{Off: 0, Size: 4}, // nr
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(nr), SkipFalse: 1},
		bpf.RetConstant{Val: ret},
		bpf.RetConstant{Val: unix.SECCOMP_RET_ALLOW},
	})
	if err != nil {
		t.Fatal(err)
	}
	var prog []byte
	for _, r := range raw {
		prog = binary.LittleEndian.AppendUint16(prog, r.Op)
		prog = append(prog, r.Jt, r.Jf)
		prog = binary.LittleEndian.AppendUint32(prog, r.K)
	}
	return Filter{Prog: prog}
}

// TestAction: the kernel's choice among a chain's results.
func TestAction(t *testing.T) {
	const arch, other = 0xc000003e, 0x40000003
	eperm := rule(t, arch, 110, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	eacces := rule(t, arch, 110, unix.SECCOMP_RET_ERRNO|uint32(unix.EACCES))
	kill := rule(t, arch, 9, unix.SECCOMP_RET_KILL_PROCESS)
	trap := rule(t, arch, 9, unix.SECCOMP_RET_TRAP)
	for _, tc := range []struct {
		name  string
		chain []Filter
		call  Call
		want  uint32
	}{
		{"matching call", []Filter{eperm}, Call{Nr: 110, Arch: arch}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"other call", []Filter{eperm}, Call{Nr: 39, Arch: arch}, unix.SECCOMP_RET_ALLOW},
		{"other arch", []Filter{eperm}, Call{Nr: 39, Arch: other}, unix.SECCOMP_RET_KILL_PROCESS},
		{"equal actions: the newest wins", []Filter{eperm, eacces}, Call{Nr: 110, Arch: arch}, unix.SECCOMP_RET_ERRNO | uint32(unix.EACCES)},
		{"equal actions, other order", []Filter{eacces, eperm}, Call{Nr: 110, Arch: arch}, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{"kill process over trap", []Filter{kill, trap}, Call{Nr: 9, Arch: arch}, unix.SECCOMP_RET_KILL_PROCESS},
		{"trap over errno", []Filter{trap, eperm}, Call{Nr: 9, Arch: arch}, unix.SECCOMP_RET_TRAP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Action(tc.chain, tc.call)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("Action = %#x, want %#x", got, tc.want)
			}
		})
	}
	for ret, fatal := range map[uint32]bool{
		unix.SECCOMP_RET_KILL_PROCESS: true, unix.SECCOMP_RET_KILL_THREAD: true, unix.SECCOMP_RET_TRAP: true,
		unix.SECCOMP_RET_ERRNO | 1: false, unix.SECCOMP_RET_LOG: false, unix.SECCOMP_RET_ALLOW: false,
		unix.SECCOMP_RET_TRACE: false, unix.SECCOMP_RET_USER_NOTIF: false, 0x7ffe0000: true,
	} {
		if Fatal(ret) != fatal {
			t.Errorf("Fatal(%#x) = %v, want %v", ret, !fatal, fatal)
		}
	}
}
