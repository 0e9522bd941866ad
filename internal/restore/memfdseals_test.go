package restore

import (
	"testing"

	"golang.org/x/sys/unix"
)

// A memfd sealed against exec alone is made without exec permission
// (MFD_NOEXEC_SEAL); one sealed otherwise allows sealing; one without
// seals needs neither.
func TestMemfdCreateFlags(t *testing.T) {
	for _, c := range []struct {
		seals uint32
		want  uint64
	}{
		{0, 0},
		{unix.F_SEAL_SHRINK | unix.F_SEAL_GROW, 2},
		{0x37, 8}, // Firefox's: SEAL, SHRINK, GROW, FUTURE_WRITE, EXEC
		{sealExec | unix.F_SEAL_WRITE, 2},
	} {
		if got := memfdCreateFlags(c.seals); got != c.want {
			t.Errorf("seals %#x: flags %#x, want %#x", c.seals, got, c.want)
		}
	}
}
