package fdkind

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPtsIndex: every Unix98 slave is under major 136, minors past 255
// included; majors 137-143 never name one, nor does the master or /dev/tty.
func TestPtsIndex(t *testing.T) {
	for _, c := range []struct {
		rdev  uint64
		index uint32
		ok    bool
	}{
		{unix.Mkdev(136, 0), 0, true},
		{unix.Mkdev(136, 300), 300, true},
		{unix.Mkdev(136, 1<<20-1), 1<<20 - 1, true},
		{unix.Mkdev(137, 0), 0, false},
		{unix.Mkdev(143, 5), 0, false},
		{unix.Mkdev(5, 2), 0, false},
		{unix.Mkdev(5, 0), 0, false},
	} {
		index, ok := PtsIndex(c.rdev)
		if index != c.index || ok != c.ok {
			t.Errorf("PtsIndex(%d:%d) = %d, %v; want %d, %v", unix.Major(c.rdev), unix.Minor(c.rdev), index, ok, c.index, c.ok)
		}
	}
}
