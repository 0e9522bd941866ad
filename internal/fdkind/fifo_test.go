package fdkind

import (
	"slices"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"golang.org/x/sys/unix"
)

// A FIFO is two entries, its path's and its own: the FIFO refers to the
// path, which a crafted image cannot point elsewhere, and --inherit-fd
// names it by its path.
func TestFifoEntries(t *testing.T) {
	files := map[uint32]*fdinfo.FileEntry{}
	add := func(f *fdinfo.FileEntry) uint32 {
		id := uint32(len(files) + 1)
		SetID(f, id)
		files[id] = f
		return id
	}
	id := DumpFifo("/run/app/in", unix.O_RDONLY|unix.O_CLOEXEC, unix.S_IFIFO|0o600, 4242, add)
	file := func(id uint32) *fdinfo.FileEntry { return files[id] }
	f := files[id]
	if err := CheckFile(f); err != nil {
		t.Fatal(err)
	}
	if err := CheckRefs(f, file); err != nil {
		t.Errorf("good FIFO: %v", err)
	}
	reg := file(f.GetFifo().GetRegfId()).GetReg()
	if reg.GetFlags()&unix.O_CLOEXEC != 0 || reg.GetName() != "/run/app/in" || f.GetFifo().GetPipeId() != 4242 {
		t.Errorf("path entry %v, FIFO %v", reg, f.GetFifo())
	}
	if keys := InheritKeys(f, file); !slices.Equal(keys, []string{"/run/app/in", "run/app/in"}) {
		t.Errorf("keys %q", keys)
	}
	f.GetFifo().RegfId = &id // itself: not a regular-file entry
	if err := CheckRefs(f, file); err == nil {
		t.Errorf("FIFO referring to itself: accepted")
	}
}
