// Package cpu converts a thread's CPU state between what ptrace gives
// (general registers, the XSAVE area) and CRIU's image entries, and tells
// which XSAVE features this CPU has, so that a restore on a CPU lacking a
// feature the image uses is refused instead of corrupting registers.
package cpu
