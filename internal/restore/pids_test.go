package restore

import "testing"

// TestInnerPidsSeenBy: an image PID is translated once, for a process
// inside a pid namespace, even when the inner PID it gets is also the
// image PID of another process; a process outside keeps the image's ids.
func TestInnerPidsSeenBy(t *testing.T) {
	a := &process{c: &checkpoint{pid: 100, nsPids: []uint32{3}}}
	b := &process{c: &checkpoint{pid: 3, nsPids: []uint32{7}}}
	outside := &process{c: &checkpoint{pid: 50}}
	inner := innerPidsOf([]*process{a, b, outside})
	for _, c := range []struct {
		p         *process
		pid, want uint32
	}{
		{b, 100, 3},
		{a, 3, 7},
		{a, 50, 50},
		{outside, 100, 100},
	} {
		if got := inner.seenBy(c.p, c.pid); got != c.want {
			t.Errorf("pid %d seen by image pid %d: %d, want %d", c.pid, c.p.c.pid, got, c.want)
		}
	}
}
