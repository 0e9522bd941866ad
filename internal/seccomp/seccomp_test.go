package seccomp

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	seccompimg "github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// prog is a program of n instructions, told apart by tag.
func prog(n int, tag byte) []byte {
	b := make([]byte, n*InsnSize)
	for i := range b {
		b[i] = tag
	}
	return b
}

// TestTableShares: chains with a common start share its entries, the
// same chain twice is stored once, and Chain gives each back in order.
func TestTableShares(t *testing.T) {
	var tab Table
	a, b, c := Filter{Prog: prog(1, 'a')}, Filter{Prog: prog(2, 'b'), Flags: unix.SECCOMP_FILTER_FLAG_LOG}, Filter{Prog: prog(3, 'c')}
	lastAB, err := tab.Add([]Filter{a, b})
	if err != nil {
		t.Fatal(err)
	}
	lastAC, err := tab.Add([]Filter{a, c})
	if err != nil {
		t.Fatal(err)
	}
	again, err := tab.Add([]Filter{a, b})
	if err != nil {
		t.Fatal(err)
	}
	// b alone is not the b after a.
	lastB, err := tab.Add([]Filter{b})
	if err != nil {
		t.Fatal(err)
	}
	e := tab.Entry()
	if n := len(e.GetSeccompFilters()); n != 4 {
		t.Fatalf("%d filters stored, want 4 (a, b after a, c after a, b alone)", n)
	}
	if again != lastAB {
		t.Errorf("the same chain got filter %d, then %d", lastAB, again)
	}
	if err := Check(e); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		last uint32
		want []Filter
	}{{lastAB, []Filter{a, b}}, {lastAC, []Filter{a, c}}, {lastB, []Filter{b}}} {
		idx, err := Chain(e, tc.last)
		if err != nil {
			t.Fatal(err)
		}
		var got []Filter
		for _, i := range idx {
			got = append(got, Get(e, i))
		}
		if !slices.EqualFunc(got, tc.want, func(x, y Filter) bool { return bytes.Equal(x.Prog, y.Prog) && x.Flags == y.Flags }) {
			t.Errorf("chain ending at %d: got %v, want %v", tc.last, got, tc.want)
		}
	}
}

// TestCheckRefuses: what an untrusted image may not hold.
func TestCheckRefuses(t *testing.T) {
	f := func(p []byte, prev *uint32, flags uint32) *seccompimg.SeccompFilter {
		return &seccompimg.SeccompFilter{Filter: p, Prev: prev, Flags: proto.Uint32(flags)}
	}
	long := []*seccompimg.SeccompFilter{f(prog(MaxInsns, 1), nil, 0)}
	for i := 1; i*(MaxInsns+pathPenalty) <= MaxPathInsns; i++ {
		long = append(long, f(prog(MaxInsns, 1), proto.Uint32(uint32(i-1)), 0))
	}
	for _, tc := range []struct {
		name    string
		filters []*seccompimg.SeccompFilter
		want    string
	}{
		{"empty program", []*seccompimg.SeccompFilter{f(nil, nil, 0)}, "whole number"},
		{"partial instruction", []*seccompimg.SeccompFilter{f(make([]byte, 12), nil, 0)}, "whole number"},
		{"too long", []*seccompimg.SeccompFilter{f(prog(MaxInsns+1, 1), nil, 0)}, "over the limit"},
		{"listener flag", []*seccompimg.SeccompFilter{f(prog(1, 1), nil, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)}, "not supported"},
		{"tsync flag", []*seccompimg.SeccompFilter{f(prog(1, 1), nil, unix.SECCOMP_FILTER_FLAG_TSYNC)}, "not supported"},
		{"dangling prev", []*seccompimg.SeccompFilter{f(prog(1, 1), proto.Uint32(1), 0)}, "does not exist"},
		{"self loop", []*seccompimg.SeccompFilter{f(prog(1, 1), proto.Uint32(0), 0)}, "loops"},
		{"loop", []*seccompimg.SeccompFilter{f(prog(1, 1), proto.Uint32(1), 0), f(prog(1, 1), proto.Uint32(0), 0)}, "loops"},
		{"chain over the kernel's limit", long, "kernel's limit"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "-"), func(t *testing.T) {
			err := Check(&seccompimg.SeccompEntry{SeccompFilters: tc.filters})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v, want an error saying %q", err, tc.want)
			}
		})
	}
	// One filter less fits.
	if err := Check(&seccompimg.SeccompEntry{SeccompFilters: long[:len(long)-1]}); err != nil {
		t.Errorf("a chain within the limit: %v", err)
	}
	if _, err := Chain(&seccompimg.SeccompEntry{SeccompFilters: long[:1]}, 1); err == nil {
		t.Errorf("Chain of a filter that does not exist: no error")
	}
}
