package userns

import (
	"os"
	"testing"

	"github.com/cryo-cr/cryo/internal/proc"
)

func TestMapConversion(t *testing.T) {
	m := Map{{Inside: 0, Outside: 1000, Count: 1}, {Inside: 1, Outside: 100000, Count: 65536}}
	cases := []struct{ host, inside uint32 }{{1000, 0}, {100000, 1}, {165535, 65536}, {0, Overflow}, {1001, Overflow}}
	for _, c := range cases {
		if got := m.ToInside(c.host); got != c.inside {
			t.Errorf("ToInside(%d) = %d, want %d", c.host, got, c.inside)
		}
		if c.inside != Overflow {
			if got, ok := m.ToHost(c.inside); !ok || got != c.host {
				t.Errorf("ToHost(%d) = %d %v, want %d", c.inside, got, ok, c.host)
			}
		}
	}
	if _, ok := m.ToHost(70000); ok {
		t.Error("ToHost of an unmapped id succeeded")
	}
	if s := FormatMap(Map{proc.IDMapEntry{Inside: 0, Outside: 1000, Count: 1}}); s != "0 1000 1\n" {
		t.Errorf("FormatMap = %q", s)
	}
}

func TestReadInitial(t *testing.T) {
	info, err := Read(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(info.UIDMap) != 1 || info.UIDMap[0].Count != 4294967295 {
		t.Errorf("initial uid_map = %v", info.UIDMap)
	}
	if info.Setgroups != "allow" {
		t.Errorf("setgroups = %q", info.Setgroups)
	}
}

func TestEmptyMapIsIdentity(t *testing.T) {
	var m Map
	if got := m.ToInside(1234); got != 1234 {
		t.Errorf("ToInside = %d", got)
	}
	if got, ok := m.ToHost(0); !ok || got != 0 {
		t.Errorf("ToHost = %d %v", got, ok)
	}
}
