package restore

import (
	"fmt"
	"os"

	"github.com/cryo-cr/cryo/internal/proc"
)

// checkMemcgRoom refuses a restore whose memory cannot fit in the room
// cryo's memory cgroups leave (the restored processes are cryo's children
// and are charged there): filling them would make the kernel kill a
// process of the cgroup, a half-built one or cryo itself, and cryo killed
// could not say why. The count is the pages of the images (private and
// shared), an upper bound: pages shared copy-on-write are counted once per
// process.
func (s *snapshot) checkMemcgRoom() error {
	var need uint64
	for _, c := range s.procs {
		if c.zombie {
			continue
		}
		for _, pe := range c.pagemap {
			need += uint64(pe.GetNrPages()) * pageSize
		}
	}
	for _, obj := range s.shmem {
		for _, pe := range obj.pages {
			need += uint64(pe.GetNrPages()) * pageSize
		}
	}
	room, ok := proc.MemcgHeadroom(os.Getpid())
	if !ok || room.Bytes >= need {
		return nil
	}
	return fmt.Errorf("restore: the images hold %d bytes of memory, and cryo's memory cgroup %s has %d bytes left: the kernel would kill a process of the cgroup to make room; raise its limit or restore elsewhere", need, room.Dir, room.Bytes)
}
