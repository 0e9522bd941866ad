package dump

import "testing"

// TestSliceRunsFrozen: a slice never mixes runs copied while frozen with
// runs copied from a snapshot, and the offsets stay back to back.
func TestSliceRunsFrozen(t *testing.T) {
	runs := []pageRun{
		{addr: 0x10000, size: 0x2000},
		{addr: 0x20000, size: 0x1000, frozen: true},
		{addr: 0x30000, size: 0x3000},
	}
	sl := sliceRuns(runs)
	if len(sl) != 3 {
		t.Fatalf("got %d slices, want 3: %+v", len(sl), sl)
	}
	var off int64
	for i, s := range sl {
		if s.off != off {
			t.Errorf("slice %d at offset %#x, want %#x", i, s.off, off)
		}
		for _, p := range s.parts {
			if p.frozen != s.parts[0].frozen {
				t.Errorf("slice %d mixes frozen and other runs", i)
			}
			off += int64(p.size)
		}
	}
	if !sl[1].parts[0].frozen || sl[0].parts[0].frozen || sl[2].parts[0].frozen {
		t.Errorf("frozen run not alone in the middle slice: %+v", sl)
	}
}

// TestMarkParent: a page goes to the parent only inside the parent's
// tracked pages and outside the written ones; runs are split there and
// never merged across areas.
func TestMarkParent(t *testing.T) {
	const pg = 0x1000
	runs := []pageRun{{addr: 0x10000, size: 4 * pg}, {addr: 0x14000, size: 2 * pg}}
	ok := []span{{0x10000, 0x16000}}
	dirty := []span{{0x11000, 0x12000}}
	got := markParent(runs, intersect(ok, []span{{0x10000, 0x15000}}), dirty, pg)
	want := []pageRun{
		{addr: 0x10000, size: pg, parent: true},
		{addr: 0x11000, size: pg},
		{addr: 0x12000, size: 2 * pg, parent: true},
		{addr: 0x14000, size: pg, parent: true},
		{addr: 0x15000, size: pg},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
}
