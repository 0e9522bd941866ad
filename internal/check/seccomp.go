package check

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/cryo-cr/cryo/internal/ptrace"
	"golang.org/x/sys/unix"
)

// probeSeccompSuspend checks that cryo may set PTRACE_O_SUSPEND_SECCOMP,
// which it needs to dump or restore (as root) a thread under seccomp.
func probeSeccompSuspend() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		return "", t.SuspendSeccomp(true)
	})
}

// probeSeccomp checks both what a dump of a thread under seccomp needs.
func probeSeccomp() (string, error) {
	if _, err := probeSeccompSuspend(); err != nil {
		return "", err
	}
	return probeSeccompFilters()
}

// allowAll is a one-instruction seccomp filter (struct sock_filter: code,
// jt, jf, k): BPF_RET|BPF_K SECCOMP_RET_ALLOW.
var allowAll = []byte{unix.BPF_RET | unix.BPF_K, 0, 0, 0, 0x00, 0x00, 0xff, 0x7f}

// probeSeccompFilters installs a filter with SECCOMP_FILTER_FLAG_LOG in a
// stub (by injected calls, after no_new_privs) and reads it back with
// PTRACE_SECCOMP_GET_FILTER and PTRACE_GET_SECCOMP_METADATA, as a dump
// does.
func probeSeccompFilters() (string, error) {
	return withStub(func(t *ptrace.Tracee) (string, error) {
		if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return "", fmt.Errorf("no_new_privs: %w", err)
		}
		page, err := t.Syscall(unix.SYS_MMAP, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS, ^uint64(0), 0)
		if err != nil {
			return "", fmt.Errorf("mmap: %w", err)
		}
		// struct sock_fprog, then the program.
		fprog := make([]byte, 16, 16+len(allowAll))
		binary.LittleEndian.PutUint16(fprog, uint16(len(allowAll)/8))
		binary.LittleEndian.PutUint64(fprog[8:], page+16)
		fprog = append(fprog, allowAll...)
		if err := ptrace.WriteMem(t.Pid, page, fprog); err != nil {
			return "", err
		}
		if _, err := t.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_LOG, page); err != nil {
			return "", fmt.Errorf("install a filter: %w", err)
		}
		chain, err := t.SeccompFilters()
		if err != nil {
			return "", err
		}
		if len(chain) != 1 || !bytes.Equal(chain[0].Prog, allowAll) || chain[0].Flags != unix.SECCOMP_FILTER_FLAG_LOG {
			return "", fmt.Errorf("read back %d filters, not the one installed with its LOG flag", len(chain))
		}
		return "", nil
	})
}
