package check

import "unsafe"

// uintptrOf is the address of b's first byte, for a system call.
func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }
