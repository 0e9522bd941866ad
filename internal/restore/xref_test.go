package restore

import (
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"google.golang.org/protobuf/proto"
)

// xrefProc makes a checkpoint of a live process for the reference checks.
func xrefProc(pid, ppid, pgid, sid uint32, nsPids ...uint32) *checkpoint {
	t := &pstree.PstreeEntry{Pid: proto.Uint32(pid), Ppid: proto.Uint32(ppid), Pgid: proto.Uint32(pgid), Sid: proto.Uint32(sid), Threads: []uint32{pid}}
	c := &checkpoint{pid: int(pid), tree: t}
	if len(nsPids) > 0 {
		c.nsPids = nsPids
	}
	return c
}

func TestCheckTreeRefs(t *testing.T) {
	for _, tc := range []struct {
		name  string
		procs []*checkpoint
		want  string // "" for accepted
	}{
		{"plain", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 11, 10)}, ""},
		{"shell job", []*checkpoint{xrefProc(10, 1, 5, 4), xrefProc(11, 10, 5, 4)}, ""},
		{"foreign group", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 99, 10)}, "process group 99"},
		{"foreign session", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 11, 98)}, "session 98"},
		{"pidns", []*checkpoint{xrefProc(10, 1, 10, 10, 1), xrefProc(11, 10, 10, 10, 2)}, ""},
		{"pidns duplicate", []*checkpoint{xrefProc(10, 1, 10, 10, 1), xrefProc(11, 10, 10, 10, 1)}, "both have id 1"},
		{"pidns missing", []*checkpoint{xrefProc(10, 1, 10, 10, 1), xrefProc(11, 10, 10, 10)}, "no id in the tree's pid namespace"},
		{"nested", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 10, 10, 1), xrefProc(12, 11, 10, 10, 2)}, ""},
		{"nested not init", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 10, 10, 2)}, "only its init"},
		{"nested child outside", []*checkpoint{xrefProc(10, 1, 10, 10), xrefProc(11, 10, 10, 10, 1), xrefProc(12, 11, 10, 10)}, "no id in the nested pid namespace"},
	} {
		err := (&snapshot{procs: tc.procs}).checkTreeRefs()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error naming %q", tc.name, err, tc.want)
		}
	}
}
