// Package seccomp holds what dump and restore agree on about seccomp
// filters: how the filter chains of a tree's threads are kept in CRIU's
// seccomp image (one entry listing every filter, each naming the filter
// installed before it), and the checks a restore makes on that untrusted
// image before it installs anything.
//
// A thread's chain is its filters from the oldest to the newest. Threads
// that share filters (inherited over fork or clone, or synchronized with
// SECCOMP_FILTER_FLAG_TSYNC) share their entries in the image, so the
// image is a forest and each thread's core names the newest filter of its
// chain (ThreadCoreEntry.seccomp_filter), as CRIU does.
package seccomp

import (
	"fmt"

	seccompimg "github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ImageName and Magic name CRIU's seccomp image.
const (
	ImageName = "seccomp.img"
	Magic     = "SECCOMP"
)

// Limits the kernel puts on filters, which bound what a restore accepts.
const (
	// InsnSize is the size of one BPF instruction (struct sock_filter).
	InsnSize = 8
	// MaxInsns is the longest program one filter may have (BPF_MAXINSNS).
	MaxInsns = unix.BPF_MAXINSNS
	// MaxPathInsns is the kernel's limit on a whole chain
	// (MAX_INSNS_PER_PATH in kernel/seccomp.c), where each filter counts
	// 4 instructions more than it has.
	MaxPathInsns = 32768
	// pathPenalty is what each filter adds to a chain's count.
	pathPenalty = 4
	// MaxChain is the most filters a chain can hold under MaxPathInsns.
	MaxChain = MaxPathInsns / (1 + pathPenalty)
)

// KeptFlags are the filter flags a dump records and a restore sets again:
// SECCOMP_FILTER_FLAG_LOG, the only one PTRACE_SECCOMP_GET_METADATA
// reports, and SPEC_ALLOW, which CRIU images may carry. TSYNC is not a
// property of a filter (restore sets it where threads share a chain), and
// the listener flags would need the listener's descriptor.
const KeptFlags = unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW

// Filter is one filter of a chain.
type Filter struct {
	// Prog is the BPF program: struct sock_filter records, 8 bytes each.
	Prog []byte
	// Flags are the SECCOMP_FILTER_FLAG_* it was installed with (KeptFlags).
	Flags uint32
}

// Insns is the number of instructions of f.
func (f Filter) Insns() int { return len(f.Prog) / InsnSize }

// Table collects the chains of a dump's threads into one image entry,
// each distinct filter once: a filter is the same as another when its
// program, its flags and the filters before it are the same.
type Table struct {
	filters []*seccompimg.SeccompFilter
	index   map[tableKey]uint32
}

// tableKey identifies a filter with the chain before it.
type tableKey struct {
	prev  uint32 // index+1 of the filter before, 0 for the first
	flags uint32
	prog  string
}

// Add records a chain (oldest first) and returns the index in the image
// of its newest filter, for the thread's core.
func (t *Table) Add(chain []Filter) (uint32, error) {
	if len(chain) == 0 {
		return 0, fmt.Errorf("seccomp: empty filter chain")
	}
	if t.index == nil {
		t.index = map[tableKey]uint32{}
	}
	var prev uint32
	for _, f := range chain {
		if err := checkFilter(f); err != nil {
			return 0, err
		}
		k := tableKey{prev: prev, flags: f.Flags, prog: string(f.Prog)}
		i, ok := t.index[k]
		if !ok {
			i = uint32(len(t.filters))
			e := &seccompimg.SeccompFilter{Filter: append([]byte(nil), f.Prog...), Flags: proto.Uint32(f.Flags)}
			if prev != 0 {
				e.Prev = proto.Uint32(prev - 1)
			}
			t.filters = append(t.filters, e)
			t.index[k] = i
		}
		prev = i + 1
	}
	return prev - 1, nil
}

// Empty says whether no chain was added.
func (t *Table) Empty() bool { return len(t.filters) == 0 }

// Entry is the image entry of every chain added.
func (t *Table) Entry() *seccompimg.SeccompEntry {
	return &seccompimg.SeccompEntry{SeccompFilters: t.filters}
}

// checkFilter checks one filter's size and flags against the kernel's
// limits.
func checkFilter(f Filter) error {
	if len(f.Prog) == 0 || len(f.Prog)%InsnSize != 0 {
		return fmt.Errorf("seccomp: a filter of %d bytes is not a whole number of BPF instructions", len(f.Prog))
	}
	if f.Insns() > MaxInsns {
		return fmt.Errorf("seccomp: a filter of %d instructions is over the limit of %d", f.Insns(), MaxInsns)
	}
	if f.Flags&^KeptFlags != 0 {
		return fmt.Errorf("seccomp: filter flags %#x are not supported (only LOG and SPEC_ALLOW)", f.Flags)
	}
	return nil
}

// Check checks an image entry read from a dump before any of it is used:
// every filter's size and flags, every prev naming another filter, and no
// chain that loops or is longer than the kernel allows.
func Check(e *seccompimg.SeccompEntry) error {
	fs := e.GetSeccompFilters()
	for i, f := range fs {
		if err := checkFilter(Filter{Prog: f.GetFilter(), Flags: f.GetFlags()}); err != nil {
			return fmt.Errorf("%s: filter %d: %w", ImageName, i, err)
		}
		if f.Prev != nil && int(f.GetPrev()) >= len(fs) {
			return fmt.Errorf("%s: filter %d: previous filter %d does not exist (%d filters)", ImageName, i, f.GetPrev(), len(fs))
		}
	}
	// Walk each chain once; memo[i] is the kernel's count of the chain
	// ending at filter i, 0 before it is walked and -1 while it is (a
	// filter met again then is a loop).
	memo := make([]int, len(fs))
	for i := range fs {
		if _, err := pathLen(fs, memo, i); err != nil {
			return err
		}
	}
	return nil
}

// pathLen is the kernel's count of the chain ending at filter i.
func pathLen(fs []*seccompimg.SeccompFilter, memo []int, i int) (int, error) {
	var walked []int
	n := 0
	for j := i; ; {
		if memo[j] > 0 {
			n += memo[j]
			break
		}
		if memo[j] < 0 {
			return 0, fmt.Errorf("%s: filter %d: its chain loops", ImageName, i)
		}
		memo[j] = -1
		walked = append(walked, j)
		if fs[j].Prev == nil {
			break
		}
		j = int(fs[j].GetPrev())
	}
	// Fill the memo from the oldest walked filter up.
	for k := len(walked) - 1; k >= 0; k-- {
		j := walked[k]
		n += len(fs[j].GetFilter())/InsnSize + pathPenalty
		memo[j] = n
		if n > MaxPathInsns {
			return 0, fmt.Errorf("%s: filter %d: its chain has %d instructions, over the kernel's limit of %d", ImageName, j, n, MaxPathInsns)
		}
	}
	return memo[i], nil
}

// Chain returns the indexes of the filters of the chain ending at filter
// last, oldest first. e must have passed Check.
func Chain(e *seccompimg.SeccompEntry, last uint32) ([]uint32, error) {
	fs := e.GetSeccompFilters()
	if int(last) >= len(fs) {
		return nil, fmt.Errorf("%s: filter %d does not exist (%d filters)", ImageName, last, len(fs))
	}
	var chain []uint32
	for j := last; ; j = fs[j].GetPrev() {
		if len(chain) >= MaxChain {
			return nil, fmt.Errorf("%s: filter %d: chain longer than %d filters", ImageName, last, MaxChain)
		}
		chain = append(chain, j)
		if fs[j].Prev == nil {
			break
		}
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain, nil
}

// Get returns filter i of e (an index Chain returned).
func Get(e *seccompimg.SeccompEntry, i uint32) Filter {
	f := e.GetSeccompFilters()[i]
	return Filter{Prog: f.GetFilter(), Flags: f.GetFlags()}
}
