package cpu

import (
	"encoding/binary"
	"fmt"

	x86 "github.com/checkpoint-restore/go-criu/v7/crit/images/core-x86"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// GPRsToImage converts ptrace's general registers to CRIU's entry.
func GPRsToImage(r *unix.PtraceRegs) *x86.UserX86RegsEntry {
	return &x86.UserX86RegsEntry{
		R15: proto.Uint64(r.R15), R14: proto.Uint64(r.R14), R13: proto.Uint64(r.R13), R12: proto.Uint64(r.R12),
		Bp: proto.Uint64(r.Rbp), Bx: proto.Uint64(r.Rbx), R11: proto.Uint64(r.R11), R10: proto.Uint64(r.R10),
		R9: proto.Uint64(r.R9), R8: proto.Uint64(r.R8), Ax: proto.Uint64(r.Rax), Cx: proto.Uint64(r.Rcx),
		Dx: proto.Uint64(r.Rdx), Si: proto.Uint64(r.Rsi), Di: proto.Uint64(r.Rdi), OrigAx: proto.Uint64(r.Orig_rax),
		Ip: proto.Uint64(r.Rip), Cs: proto.Uint64(r.Cs), Flags: proto.Uint64(r.Eflags), Sp: proto.Uint64(r.Rsp),
		Ss: proto.Uint64(r.Ss), FsBase: proto.Uint64(r.Fs_base), GsBase: proto.Uint64(r.Gs_base),
		Ds: proto.Uint64(r.Ds), Es: proto.Uint64(r.Es), Fs: proto.Uint64(r.Fs), Gs: proto.Uint64(r.Gs),
		Mode: x86.UserX86RegsMode_NATIVE.Enum(),
	}
}

// GPRsFromImage converts CRIU's entry back to ptrace's registers.
func GPRsFromImage(e *x86.UserX86RegsEntry) (unix.PtraceRegs, error) {
	if e.GetMode() != x86.UserX86RegsMode_NATIVE {
		return unix.PtraceRegs{}, fmt.Errorf("registers in %v mode: only 64-bit tasks are supported", e.GetMode())
	}
	return unix.PtraceRegs{
		R15: e.GetR15(), R14: e.GetR14(), R13: e.GetR13(), R12: e.GetR12(),
		Rbp: e.GetBp(), Rbx: e.GetBx(), R11: e.GetR11(), R10: e.GetR10(),
		R9: e.GetR9(), R8: e.GetR8(), Rax: e.GetAx(), Rcx: e.GetCx(),
		Rdx: e.GetDx(), Rsi: e.GetSi(), Rdi: e.GetDi(), Orig_rax: e.GetOrigAx(),
		Rip: e.GetIp(), Cs: e.GetCs(), Eflags: e.GetFlags(), Rsp: e.GetSp(),
		Ss: e.GetSs(), Fs_base: e.GetFsBase(), Gs_base: e.GetGsBase(),
		Ds: e.GetDs(), Es: e.GetEs(), Fs: e.GetFs(), Gs: e.GetGs(),
	}, nil
}

// Offsets in the legacy FXSAVE region and the XSAVE header.
const (
	offCWD, offSWD, offTWD, offFOP = 0, 2, 4, 6
	offRIP, offRDP                 = 8, 16
	offMXCSR, offMXCSRMask         = 24, 28
	offST, lenST                   = 32, 128
	offXMM, lenXMM                 = 160, 256
	// ptrace (like core dumps) puts the kernel's XCR0 in the first word of
	// the FXSAVE area's software-reserved bytes.
	offSWBytes      = 464
	offXstateBV     = 512
	offXcompBV      = 520
	legacyAndHeader = 576
)

// XSAVE state components CRIU's image can hold.
const (
	featFP, featSSE, featYMM           = 0, 1, 2
	featBNDREGS, featBNDCSR            = 3, 4
	featOpmask, featZMMHi256, featHi16 = 5, 6, 7
	featPKRU                           = 9
)

// imageFeatures is the set of components that round-trip through the image.
const imageFeatures = 1<<featFP | 1<<featSSE | 1<<featYMM | 1<<featBNDREGS | 1<<featBNDCSR |
	1<<featOpmask | 1<<featZMMHi256 | 1<<featHi16 | 1<<featPKRU

// Xfeatures returns the feature mask (XCR0) the kernel reports in an XSAVE
// area read with ptrace, or 0 if the area is too short to carry it.
func Xfeatures(area []byte) uint64 {
	if len(area) < offSWBytes+8 {
		return 0
	}
	return binary.LittleEndian.Uint64(area[offSWBytes:])
}

func u32s(b []byte) []uint32 {
	out := make([]uint32, len(b)/4)
	for i := range out {
		out[i] = binary.LittleEndian.Uint32(b[4*i:])
	}
	return out
}

func u64s(b []byte) []uint64 {
	out := make([]uint64, len(b)/8)
	for i := range out {
		out[i] = binary.LittleEndian.Uint64(b[8*i:])
	}
	return out
}

func putU32s(dst []byte, v []uint32) {
	for i := 0; i < len(v) && 4*i+4 <= len(dst); i++ {
		binary.LittleEndian.PutUint32(dst[4*i:], v[i])
	}
}

func putU64s(dst []byte, v []uint64) {
	for i := 0; i < len(v) && 8*i+8 <= len(dst); i++ {
		binary.LittleEndian.PutUint64(dst[8*i:], v[i])
	}
}

// componentBytes returns the bytes of component i inside area, or nil.
func componentBytes(area []byte, i int) []byte {
	c := xsaveComponent(i)
	if c.size == 0 || c.offset+c.size > len(area) {
		return nil
	}
	return area[c.offset : c.offset+c.size]
}

// XsaveToImage converts a ptrace XSAVE area to CRIU's entry. It refuses a
// state that uses a component the image cannot carry (AMX tiles, say)
// rather than silently losing it.
func XsaveToImage(area []byte) (*x86.UserX86FpregsEntry, error) {
	if len(area) < legacyAndHeader {
		return nil, fmt.Errorf("xsave area of %d bytes is too short", len(area))
	}
	le := binary.LittleEndian
	bv := le.Uint64(area[offXstateBV:])
	if extra := bv &^ imageFeatures; extra != 0 {
		return nil, fmt.Errorf("xsave state uses components %#x that the image format cannot hold", extra)
	}
	fp := &x86.UserX86FpregsEntry{
		Cwd:       proto.Uint32(uint32(le.Uint16(area[offCWD:]))),
		Swd:       proto.Uint32(uint32(le.Uint16(area[offSWD:]))),
		Twd:       proto.Uint32(uint32(le.Uint16(area[offTWD:]))),
		Fop:       proto.Uint32(uint32(le.Uint16(area[offFOP:]))),
		Rip:       proto.Uint64(le.Uint64(area[offRIP:])),
		Rdp:       proto.Uint64(le.Uint64(area[offRDP:])),
		Mxcsr:     proto.Uint32(le.Uint32(area[offMXCSR:])),
		MxcsrMask: proto.Uint32(le.Uint32(area[offMXCSRMask:])),
		StSpace:   u32s(area[offST : offST+lenST]),
		XmmSpace:  u32s(area[offXMM : offXMM+lenXMM]),
	}
	xs := &x86.UserX86XsaveEntry{XstateBv: proto.Uint64(bv)}
	get := func(i int) []byte {
		if bv&(1<<i) == 0 {
			return nil
		}
		return componentBytes(area, i)
	}
	if b := get(featYMM); b != nil {
		xs.YmmhSpace = u32s(b)
	}
	if b := get(featBNDREGS); b != nil {
		xs.BndregState = u64s(b)
	}
	if b := get(featBNDCSR); b != nil {
		xs.BndcsrState = u64s(b)
	}
	if b := get(featOpmask); b != nil {
		xs.OpmaskReg = u64s(b)
	}
	if b := get(featZMMHi256); b != nil {
		xs.ZmmUpper = u64s(b)
	}
	if b := get(featHi16); b != nil {
		xs.Hi16Zmm = u64s(b)
	}
	if b := get(featPKRU); b != nil {
		xs.Pkru = u32s(b)
	}
	fp.Xsave = xs
	return fp, nil
}

// XsaveFromImage writes the image's state into template, an XSAVE area
// read from the thread being restored (it has the right size and the
// kernel's software bytes). xfeatures is what this CPU supports.
func XsaveFromImage(fp *x86.UserX86FpregsEntry, template []byte) ([]byte, error) {
	if len(template) < legacyAndHeader {
		return nil, fmt.Errorf("xsave area of %d bytes is too short", len(template))
	}
	area := append([]byte(nil), template...)
	le := binary.LittleEndian
	le.PutUint16(area[offCWD:], uint16(fp.GetCwd()))
	le.PutUint16(area[offSWD:], uint16(fp.GetSwd()))
	le.PutUint16(area[offTWD:], uint16(fp.GetTwd()))
	le.PutUint16(area[offFOP:], uint16(fp.GetFop()))
	le.PutUint64(area[offRIP:], fp.GetRip())
	le.PutUint64(area[offRDP:], fp.GetRdp())
	le.PutUint32(area[offMXCSR:], fp.GetMxcsr())
	// MXCSR_MASK is read-only CPU information: keep the template's.
	clear(area[offST : offST+lenST])
	clear(area[offXMM : offXMM+lenXMM])
	putU32s(area[offST:offST+lenST], fp.GetStSpace())
	putU32s(area[offXMM:offXMM+lenXMM], fp.GetXmmSpace())
	bv := uint64(1<<featFP | 1<<featSSE)
	if xs := fp.GetXsave(); xs != nil {
		bv = xs.GetXstateBv()
		if have := Xfeatures(template); have != 0 && bv&^have != 0 {
			return nil, fmt.Errorf("image uses xsave components %#x that this CPU does not have (%#x)", bv&^have, have)
		}
		put := func(i int, fill func([]byte)) error {
			if bv&(1<<i) == 0 {
				return nil
			}
			b := componentBytes(area, i)
			if b == nil {
				return fmt.Errorf("xsave component %d is not in this CPU's area", i)
			}
			clear(b)
			fill(b)
			return nil
		}
		for _, c := range []struct {
			i    int
			fill func([]byte)
		}{
			{featYMM, func(b []byte) { putU32s(b, xs.GetYmmhSpace()) }},
			{featBNDREGS, func(b []byte) { putU64s(b, xs.GetBndregState()) }},
			{featBNDCSR, func(b []byte) { putU64s(b, xs.GetBndcsrState()) }},
			{featOpmask, func(b []byte) { putU64s(b, xs.GetOpmaskReg()) }},
			{featZMMHi256, func(b []byte) { putU64s(b, xs.GetZmmUpper()) }},
			{featHi16, func(b []byte) { putU64s(b, xs.GetHi16Zmm()) }},
			{featPKRU, func(b []byte) { putU32s(b, xs.GetPkru()) }},
		} {
			if err := put(c.i, c.fill); err != nil {
				return nil, err
			}
		}
	}
	le.PutUint64(area[offXstateBV:], bv)
	le.PutUint64(area[offXcompBV:], 0)
	clear(area[offXcompBV+8 : legacyAndHeader])
	return area, nil
}
