package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// checkpointRestore is the basic flow: start the workload, dump it (which
// kills it), reap it, restore it (cryo stays its parent), SIGTERM it and
// check it passes with exit status 0.
func checkpointRestore(t *testing.T, bin string, args ...string) {
	t.Helper()
	w := startWorkload(t, bin, args...)
	w.Checkpoint()
	w.Restore()
	w.Finish()
}

// forEachVariant runs fn for both linkages and each thread count, as
// subtests "dynamic/threads=1", ...
func forEachVariant(t *testing.T, workload string, threads []int, fn func(t *testing.T, bin string, threads int)) {
	requireRoot(t)
	for _, link := range []string{linkDynamic, linkStatic} {
		t.Run(link, func(t *testing.T) {
			for _, n := range threads {
				t.Run(fmt.Sprintf("threads=%d", n), func(t *testing.T) {
					requireRoot(t)
					fn(t, workloadBin(t, workload, link), n)
				})
			}
		})
	}
}

func nthreads(n int) string { return fmt.Sprint(n) }

// TestE2EMemory: private anonymous memory (8 MiB pattern, untouched pages
// stay zero), malloc heap and brk (sbrk(0) unchanged), MAP_PRIVATE file
// mapping (COW pages keep their data, untouched pages keep tracking the
// file), PROT_NONE pages written before protecting, read-only data, stack
// data in main (grown [stack]) and threads, /proc/self/maps identical,
// [vdso] at AT_SYSINFO_EHDR.
func TestE2EMemory(t *testing.T) {
	forEachVariant(t, "memory", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2ERegisters: values kept only in registers across the checkpoint, in
// every thread: general registers and DF, x87 stack and control word,
// xmm0-15 and MXCSR, ymm0-15, zmm0-31 and k0-k7, PKRU; TLS and fs/gs base.
func TestE2ERegisters(t *testing.T) {
	requireRoot(t)
	cpu := cpuFlags(t)
	need := map[string][]string{
		"avx":    {"avx"},
		"avx512": {"avx512f"},
		"pkru":   {"pku", "ospke"},
	}
	for _, mode := range []string{"gpr", "x87", "sse", "avx", "avx512", "pkru"} {
		t.Run(mode, func(t *testing.T) {
			for _, f := range need[mode] {
				if !cpu[f] {
					t.Skipf("/proc/cpuinfo has no %q flag: %s registers cannot be tested on this machine", f, mode)
				}
			}
			forEachVariant(t, "regs", []int{1, 4}, func(t *testing.T, bin string, n int) {
				checkpointRestore(t, bin, "-t", nthreads(n), mode)
			})
		})
	}
}

// TestE2EThreads: per-thread state: TIDs, TLS, names, blocked masks,
// sigaltstack (and SA_ONSTACK delivery on it), clear_child_tid, robust futex
// list, rseq registration (EBUSY on re-registration), pthread_join.
func TestE2EThreads(t *testing.T) {
	forEachVariant(t, "threads", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2ESignals: all 64 signal dispositions (handler, flags, restorer,
// mask) and the blocked mask of every thread.
func TestE2ESignals(t *testing.T) {
	forEachVariant(t, "signals", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2ESignalsPending: blocked pending signals (process-wide and
// per-thread, standard and queued real-time with values) are neither lost,
// doubled nor reordered, and keep si_code/si_pid/si_value.
func TestE2ESignalsPending(t *testing.T) {
	forEachVariant(t, "signals", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "pending")
	})
}

// TestE2EProcAttrs: rlimits, umask, personality, cwd, root, exe, cmdline,
// environ, auxv, comm, session and process group, dumpable.
func TestE2EProcAttrs(t *testing.T) {
	forEachVariant(t, "attrs", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2ECredentials: a root workload switches to uids 1000/1001/1002, gids
// 1001/1002/1003, groups {1004,1005}, keeps CAP_NET_BIND_SERVICE (permitted,
// effective, inheritable, ambient), a reduced bounding set, securebits and
// no_new_privs; every thread compares them after restore (plus everything
// TestE2EProcAttrs checks).
func TestE2ECredentials(t *testing.T) {
	forEachVariant(t, "attrs", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n), "creds")
	})
}

// TestE2EFiles: fd table: numbers, targets, F_GETFL/F_GETFD, offsets, shared
// open file descriptions (dup, stdout/stderr), O_APPEND log continuity,
// access modes, /dev/null and /dev/zero, a directory fd.
func TestE2EFiles(t *testing.T) {
	forEachVariant(t, "files", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// TestE2EBlockedSyscalls: threads blocked at dump time in nanosleep (main:
// 30 s; worker: 1 s loop), FUTEX_WAIT and sigsuspend resume correctly.
func TestE2EBlockedSyscalls(t *testing.T) {
	forEachVariant(t, "blocked", []int{1, 4}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}

// cpuFlags returns the flags of the first CPU in /proc/cpuinfo.
func cpuFlags(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			for _, f := range strings.Fields(v) {
				flags[f] = true
			}
			break
		}
	}
	return flags
}
