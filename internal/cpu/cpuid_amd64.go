package cpu

func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// component is where one XSAVE state component lives in the standard
// (non-compacted) format, as CPUID leaf 0xD enumerates it. Offsets differ
// between vendors (PKRU is at 0xa80 on Intel, 0x980 on AMD CPUs without
// MPX/AVX-512), so they are read from the CPU, never assumed.
type component struct{ offset, size int }

func xsaveComponent(i int) component {
	eax, ebx, _, _ := cpuid(0xd, uint32(i))
	return component{offset: int(ebx), size: int(eax)}
}

// SupportedXfeatures returns the XSAVE components the CPU supports (CPUID
// leaf 0xD, sub-leaf 0), for `cryo check`.
func SupportedXfeatures() uint64 {
	eax, _, _, edx := cpuid(0xd, 0)
	return uint64(eax) | uint64(edx)<<32
}
