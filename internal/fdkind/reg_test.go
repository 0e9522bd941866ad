package fdkind

import (
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// A regular file's entry carries its id twice (entry and payload), is
// named by its path for --inherit-fd, and keeps its status flags for a
// file the caller gives; a terminal is handed over with -j only when the
// entry names one.
func TestRegEntry(t *testing.T) {
	f := DumpReg("/var/log/app.log", unix.O_WRONLY|unix.O_APPEND, 12, 34, unix.S_IFREG|0o640)
	SetID(f, 9)
	if err := CheckFile(f); err != nil {
		t.Fatal(err)
	}
	if f.GetId() != 9 || f.GetReg().GetId() != 9 || RegName(f) != "/var/log/app.log" {
		t.Errorf("entry %v", f)
	}
	if keys := InheritKeys(f, nil); !slices.Equal(keys, []string{"/var/log/app.log", "var/log/app.log"}) {
		t.Errorf("keys %q", keys)
	}
	if flags, ok := InheritFlags(f); !ok || flags != unix.O_WRONLY|unix.O_APPEND {
		t.Errorf("flags %#o, %v", flags, ok)
	}
	for _, c := range []struct {
		name string
		mode uint32
		want bool
	}{
		{"/dev/pts/3", unix.S_IFCHR | 0o620, true},
		{"/dev/tty", unix.S_IFCHR | 0o666, true},
		{"/dev/null", unix.S_IFCHR | 0o666, false},
		{"/dev/pts/3", unix.S_IFREG | 0o600, false},
	} {
		if got := isTerminalPath(c.name, c.mode); got != c.want {
			t.Errorf("isTerminalPath(%s, %#o) = %v", c.name, c.mode, got)
		}
	}
}
