package restore

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"google.golang.org/protobuf/proto"
)

func pme(addr uint64, pages uint32) *pagemapEntry {
	return &pagemap.PagemapEntry{Vaddr: proto.Uint64(addr), NrPages: proto.Uint32(pages)}
}

// TestSplitFill checks that the slices cover the pages image back to back,
// that no slice exceeds the buffer or IOV_MAX ranges, and that each byte
// goes to the address the pagemap says.
func TestSplitFill(t *testing.T) {
	var pm []*pagemapEntry
	// One big run crossing several buffers, then many one-page runs (more
	// than IOV_MAX in a buffer), then two adjacent runs that merge.
	pm = append(pm, pme(0x100000, 2500))
	for i := uint64(0); i < 1500; i++ {
		pm = append(pm, pme(0x10000000+i*2*pageSize, 1))
	}
	pm = append(pm, pme(0x20000000, 3), pme(0x20003000, 2))
	const buf = 1 << 20
	slices := splitFill(pm, buf, nil)
	// Expected destination of each image page.
	var want []uint64
	for _, pe := range pm {
		for i := uint64(0); i < uint64(pe.GetNrPages()); i++ {
			want = append(want, pe.GetVaddr()+i*pageSize)
		}
	}
	var off uint64
	k := 0
	for i, sl := range slices {
		if sl.off != off {
			t.Fatalf("slice %d at offset %d, want %d", i, sl.off, off)
		}
		if sl.size > buf || len(sl.remote) > maxIovecs || sl.size == 0 {
			t.Fatalf("slice %d: %d bytes in %d ranges", i, sl.size, len(sl.remote))
		}
		var n uint64
		for _, r := range sl.remote {
			for a := uint64(r.Base); a < uint64(r.Base)+uint64(r.Len); a += pageSize {
				if k >= len(want) || want[k] != a {
					t.Fatalf("slice %d: page %d goes to %#x, want %#x", i, k, a, want[k])
				}
				k++
			}
			n += uint64(r.Len)
		}
		if n != sl.size {
			t.Fatalf("slice %d: ranges hold %d bytes, size %d", i, n, sl.size)
		}
		off += sl.size
	}
	if k != len(want) {
		t.Fatalf("%d pages placed, want %d", k, len(want))
	}
	if last := slices[len(slices)-1].remote; last[len(last)-1].Len != 5*pageSize {
		t.Fatalf("adjacent runs not merged: last range %d bytes", last[len(last)-1].Len)
	}
}

// TestSplitFillSkip checks that the runs inside premapped areas are left
// out and that the slices after them still start at their own bytes of the
// pages image.
func TestSplitFillSkip(t *testing.T) {
	pm := []*pagemapEntry{pme(0x100000, 2), pme(0x200000, 3), pme(0x300000, 1), pme(0x301000, 1)}
	skip := []span{{0x200000, 0x210000}}
	slices := splitFill(pm, 1<<20, skip)
	if len(slices) != 2 {
		t.Fatalf("%d slices, want 2: %+v", len(slices), slices)
	}
	if s := slices[0]; s.off != 0 || s.size != 2*pageSize || len(s.remote) != 1 || s.remote[0].Base != 0x100000 {
		t.Fatalf("first slice %+v", s)
	}
	if s := slices[1]; s.off != 5*pageSize || s.size != 2*pageSize || len(s.remote) != 1 || s.remote[0].Base != 0x300000 || s.remote[0].Len != 2*pageSize {
		t.Fatalf("second slice %+v", s)
	}
}
