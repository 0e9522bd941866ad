package dump

import (
	"testing"

	"github.com/cryo-cr/cryo/internal/image"
)

// TestParseLockLine: the fdinfo "lock:" lines of each kind Linux prints,
// and the ones a dump refuses.
func TestParseLockLine(t *testing.T) {
	for _, c := range []struct {
		line       string
		flag       uint32
		write      bool
		start, end int64
		ino        uint64
	}{
		{"1: FLOCK  ADVISORY  WRITE 30092 fe:00:9977942 0 EOF", image.LockFlock, true, 0, -1, 9977942},
		{"1: POSIX  ADVISORY  WRITE 30092 fe:00:9977944 5 14", image.LockPosix, true, 5, 14, 9977944},
		{"2: OFDLCK ADVISORY  READ -1 00:2d:12 100 EOF", image.LockOFD, false, 100, -1, 12},
	} {
		l, err := parseLockLine(c.line)
		if err != nil || l.flag != c.flag || l.write != c.write || l.start != c.start || l.end != c.end || l.ino != c.ino {
			t.Errorf("%q: got %+v, %v", c.line, l, err)
		}
	}
	for _, bad := range []string{
		"1: LEASE  ACTIVE    READ 1 fe:00:1 0 EOF",
		"1: POSIX  ADVISORY  WRITE 1 fe:00:1 9 3",
		"1: POSIX  ADVISORY  WRITE 1 fe:00:x 0 EOF",
		"1: POSIX  ADVISORY",
	} {
		if _, err := parseLockLine(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}
