package restore

import (
	"slices"
	"testing"
)

// TestDenseHugeBlocks checks which 2 MiB blocks collapseHuge asks for:
// only aligned blocks the image covers whole, inside the area, merged,
// lowest first, at most the limit.
func TestDenseHugeBlocks(t *testing.T) {
	const M = 1 << 20
	base := uint64(0x7f0000000000)
	runs := []span{
		{base + 1*M, base + 7*M},   // covers blocks 2-4 (2..6 MiB) whole
		{base + 8*M, base + 9*M},   // half a block: never
		{base + 10*M, base + 16*M}, // blocks 10-14 whole
	}
	for _, c := range []struct {
		name       string
		start, end uint64
		limit      uint64
		want       []span
	}{
		{"all", base, base + 16*M, 100, []span{{base + 2*M, base + 6*M}, {base + 10*M, base + 16*M}}},
		{"limit", base, base + 16*M, 3, []span{{base + 2*M, base + 6*M}, {base + 10*M, base + 12*M}}},
		{"area cuts a run", base + 3*M, base + 12*M, 100, []span{{base + 4*M, base + 6*M}, {base + 10*M, base + 12*M}}},
		{"sparse only", base + 7*M, base + 10*M, 100, nil},
	} {
		got := denseHugeBlocks(runs, c.start, c.end, c.limit)
		if !slices.Equal(got, c.want) {
			t.Errorf("%s: got %x, want %x", c.name, got, c.want)
		}
	}
}
