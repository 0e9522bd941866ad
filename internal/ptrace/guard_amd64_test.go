package ptrace

import (
	"encoding/binary"
	"testing"

	"golang.org/x/sys/unix"
)

// TestResumable: a thread interrupted in a call that asked for a restart
// enters it again; RESTARTBLOCK gives restart_syscall only on the tracer's
// path; other stops are left alone, and orig_rax is always -1.
func TestResumable(t *testing.T) {
	const rip = 0x1000
	for _, c := range []struct {
		rax      int64
		tracer   bool
		wantRax  uint64
		wantRip  uint64
		syscallN int64
	}{
		{-512, false, 35, rip - 2, 35},
		{-513, true, 35, rip - 2, 35},
		{-514, false, 35, rip - 2, 35},
		{-516, false, 35, rip - 2, 35},
		{-516, true, unix.SYS_RESTART_SYSCALL, rip - 2, 35},
		{-4, false, ^uint64(3), rip, 35}, // EINTR: a result, kept
		{-512, false, ^uint64(511), rip, -1},
	} {
		r := unix.PtraceRegs{Rax: uint64(c.rax), Orig_rax: uint64(c.syscallN), Rip: rip}
		got := resumable(r, c.tracer)
		if got.Rax != c.wantRax || got.Rip != c.wantRip || got.Orig_rax != ^uint64(0) {
			t.Errorf("resumable(rax %d, orig %d, tracer %v) = rax %#x rip %#x orig %#x; want rax %#x rip %#x orig -1",
				c.rax, c.syscallN, c.tracer, got.Rax, got.Rip, got.Orig_rax, c.wantRax, c.wantRip)
		}
	}
}

// TestBuildFrame: the fields rt_sigreturn reads are where the kernel's
// struct rt_sigframe has them, and the XSAVE area carries the signal
// frame's magic numbers instead of ptrace's XCR0.
func TestBuildFrame(t *testing.T) {
	x := make([]byte, 2432)
	binary.LittleEndian.PutUint64(x[swReserved:], 0xe7)
	r := unix.PtraceRegs{R8: 8, R15: 15, Rdi: 0xd1, Rax: 0xa0, Rsp: 0x5000, Rip: 0x4000, Eflags: 0x246, Cs: 0x33, Ss: 0x2b}
	const at = 0x7000
	f, err := buildFrame(r, 0xfeed, x, 0x1234, at)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	for _, c := range []struct {
		off  int
		want uint64
	}{
		{0, 0x1234},           // pretcode
		{8, 7},                // uc_flags
		{48, 8},               // r8
		{48 + 7*8, 15},        // r15
		{48 + 8*8, 0xd1},      // rdi
		{48 + 13*8, 0xa0},     // rax
		{48 + 15*8, 0x5000},   // rsp
		{48 + 16*8, 0x4000},   // rip
		{48 + 17*8, 0x246},    // eflags
		{232, at + sfFpstate}, // fpstate pointer
		{304, 0xfeed},         // uc_sigmask
		{448 + 472, 0xe7},     // fpx_sw_bytes.xfeatures
	} {
		if got := le.Uint64(f[c.off:]); got != c.want {
			t.Errorf("frame at %d = %#x, want %#x", c.off, got, c.want)
		}
	}
	if got := le.Uint16(f[192:]); got != 0x33 {
		t.Errorf("cs = %#x", got)
	}
	if got := le.Uint16(f[198:]); got != 0x2b {
		t.Errorf("ss = %#x", got)
	}
	fp := f[sfFpstate:]
	if le.Uint32(fp[swReserved:]) != fpxMagic1 || le.Uint32(fp[swReserved+4:]) != 2436 || le.Uint32(fp[swReserved+16:]) != 2432 {
		t.Errorf("fpx_sw_bytes = % x", fp[swReserved:swReserved+20])
	}
	if le.Uint32(fp[2432:]) != fpxMagic2 {
		t.Errorf("no FP_XSTATE_MAGIC2 after the XSAVE area")
	}
	if len(f)%64 != 0 {
		t.Errorf("frame length %d is not a multiple of 64", len(f))
	}
}
