package dump

import (
	"fmt"
	"strings"

	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// deletedSuffix is what the kernel appends to the path of a file or
// directory that was removed while a process held it.
const deletedSuffix = " (deleted)"

// isGhostDir tells whether st, reached through a /proc link whose target
// was target, is a directory removed while held: its link says so and
// the directory has no links left (an empty directory removed has none).
func isGhostDir(target string, st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Nlink == 0 && strings.HasSuffix(target, deletedSuffix)
}

// dirFile describes a working directory or root (read through via, a
// /proc/PID link whose target is path): as pathFile, except that a
// removed directory becomes a ghost (CRIU's ghost file of a directory:
// its mode and owner, no contents), made again for the restore and
// removed once the process holds it. One entry per removed inode.
func (ft *fileTable) dirFile(path, via string) (uint32, error) {
	st, err := proc.FileStat(via)
	if err != nil {
		return 0, fmt.Errorf("directory %s: %w", path, err)
	}
	if !isGhostDir(path, &st) {
		return ft.pathFile(path, via, unix.O_RDONLY|unix.O_DIRECTORY, false)
	}
	key := fmt.Sprintf("ghostdir\x00%d\x00%d", st.Dev, st.Ino)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	id := ft.addReg(fdkind.DumpReg(strings.TrimSuffix(path, deletedSuffix), unix.O_RDONLY|unix.O_DIRECTORY, 0, 0, st.Mode), key)
	return id, ft.addGhost(id, via, &st)
}
