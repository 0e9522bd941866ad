package proc

import (
	"encoding/binary"
	"fmt"
	"math"
)

// Auxv returns /proc/PID/auxv as native-endian 64-bit words: alternating
// AT_* type and value, ending with an AT_NULL pair.
func Auxv(pid int) ([]uint64, error) {
	path := pidPath(pid, "auxv")
	b, err := readFile(path)
	if err != nil {
		return nil, err
	}
	words, err := ParseAuxv(b)
	if err != nil {
		return nil, parseError(path, err)
	}
	return words, nil
}

// ParseAuxv converts raw auxv bytes to words. The kernel writes the saved
// vector as-is, so the byte order is the host's.
func ParseAuxv(b []byte) ([]uint64, error) {
	if len(b)%8 != 0 {
		return nil, fmt.Errorf("length %d is not a multiple of 8", len(b))
	}
	words := make([]uint64, len(b)/8)
	for i := range words {
		words[i] = binary.NativeEndian.Uint64(b[i*8:])
	}
	return words, nil
}

// Exe returns the target of /proc/PID/exe.
func Exe(pid int) (string, error) { return readLink(pidPath(pid, "exe")) }

// Cwd returns the target of /proc/PID/cwd, as seen from our root.
func Cwd(pid int) (string, error) { return readLink(pidPath(pid, "cwd")) }

// Root returns the target of /proc/PID/root, as seen from our root.
func Root(pid int) (string, error) { return readLink(pidPath(pid, "root")) }

// Cmdline returns the raw /proc/PID/cmdline: NUL-separated arguments, as
// the process currently has them in memory (it may have rewritten them).
func Cmdline(pid int) ([]byte, error) { return readFile(pidPath(pid, "cmdline")) }

// Environ returns the raw /proc/PID/environ: NUL-terminated KEY=value pairs.
func Environ(pid int) ([]byte, error) { return readFile(pidPath(pid, "environ")) }

// Personality returns the personality(2) value from /proc/PID/personality,
// which the kernel prints as 8 hex digits.
func Personality(pid int) (uint32, error) {
	path := pidPath(pid, "personality")
	v, err := readSingleUint(path, 16)
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, parseError(path, fmt.Errorf("value %#x overflows uint32", v))
	}
	return uint32(v), nil
}

// TaskComm returns the comm of one thread from /proc/PID/task/TID/comm, raw
// (unlike the Name line of status) and without the trailing newline.
func TaskComm(pid, tid int) (string, error) {
	var comm string
	err := withFile(taskPath(pid, tid, "comm"), func(b []byte) error {
		if n := len(b); n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
		}
		comm = string(b)
		return nil
	})
	return comm, err
}

// OOMScoreAdj returns /proc/PID/oom_score_adj (-1000 ... 1000).
func OOMScoreAdj(pid int) (int, error) {
	var v int
	err := withFile(pidPath(pid, "oom_score_adj"), func(b []byte) error {
		var err error
		v, err = parseIntField(trimSpace(b))
		return err
	})
	return v, err
}

// LoginUID returns the audit login uid; 4294967295 ((uid_t)-1) means unset.
func LoginUID(pid int) (uint32, error) {
	path := pidPath(pid, "loginuid")
	v, err := readSingleUint(path, 10)
	if err != nil {
		return 0, err
	}
	if v > math.MaxUint32 {
		return 0, parseError(path, fmt.Errorf("value %d overflows uint32", v))
	}
	return uint32(v), nil
}
