package dump

import (
	"errors"
	"fmt"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"github.com/cryo-cr/cryo/internal/fdkind"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// ghostFile is a regular file deleted while open: its contents go into the
// images (CRIU's ghost files) and come back under its old name, unlinked.
type ghostFile struct {
	id    uint32
	entry *ghostfile.GhostFileEntry
	data  []byte
}

// ghostRemap says that file orig is (a description of) ghost remap: every
// file entry of one deleted inode points at one ghost, so that its
// descriptors and shared mappings come back on one file again.
type ghostRemap struct{ orig, remap uint32 }

type inodeKey struct{ dev, ino uint64 }

// addGhost saves the contents of the deleted file open at procPath (a
// /proc/PID/fd or /proc/PID/map_files link) as file id's ghost, once per
// inode.
func (ft *fileTable) addGhost(id uint32, procPath string, st *unix.Stat_t) error {
	key := inodeKey{st.Dev, st.Ino}
	if remap, ok := ft.ghostByInode[key]; ok {
		ft.ghostRemaps = append(ft.ghostRemaps, ghostRemap{orig: id, remap: remap})
		return nil
	}
	entry, data, err := fdkind.DumpGhost(procPath, st)
	if err != nil {
		return err
	}
	ft.ghosts = append(ft.ghosts, ghostFile{id: id, data: data, entry: entry})
	if ft.ghostByInode == nil {
		ft.ghostByInode = map[inodeKey]uint32{}
	}
	ft.ghostByInode[key] = id
	ft.ghostRemaps = append(ft.ghostRemaps, ghostRemap{orig: id, remap: id})
	return nil
}

// ghostStat describes the inode of a ghost saved already, as stat would.
func (ft *fileTable) ghostStat(key inodeKey) (unix.Stat_t, bool) {
	id, ok := ft.ghostByInode[key]
	if !ok {
		return unix.Stat_t{}, false
	}
	for _, g := range ft.ghosts {
		if g.id == id {
			return fdkind.GhostStat(g.entry, key.dev, key.ino), true
		}
	}
	return unix.Stat_t{}, false
}

// writeGhosts writes ghost-file-N.img for each ghost and remap-fpath.img.
func (ft *fileTable) writeGhosts(dir *image.Dir) error {
	var remaps []proto.Message
	for _, g := range ft.ghosts {
		if err := dir.WriteGhost(g.id, g.entry, g.data); err != nil {
			return err
		}
	}
	for _, r := range ft.ghostRemaps {
		remaps = append(remaps, fdkind.GhostRemap(r.orig, r.remap))
	}
	if len(remaps) == 0 {
		return nil
	}
	return dir.Write(image.RemapName, "REMAP_FPATH", remaps...)
}

// mappedGhost gives the file id of a deleted file mapped at m (read
// through /proc/PID/map_files): every mapping of the same file with the
// same open flags shares one entry and one ghost. map_files needs
// CAP_CHECKPOINT_RESTORE; without it, a file the tree also holds open
// (saved already, from its descriptor) is found by its inode.
func (ft *fileTable) mappedGhost(pid int, m *proc.Mapping, openFlags uint32) (uint32, error) {
	link := fmt.Sprintf("/proc/%d/map_files/%x-%x", pid, m.Start, m.End)
	st, err := proc.FileStat(link)
	if errors.Is(err, unix.EPERM) {
		var ok bool
		if st, ok = ft.ghostStat(inodeKey{unix.Mkdev(m.Major, m.Minor), m.Inode}); !ok {
			return 0, fmt.Errorf("deleted file that no descriptor of the tree holds: reading it through /proc/PID/map_files needs CAP_CHECKPOINT_RESTORE: %w", err)
		}
	} else if err != nil {
		return 0, fmt.Errorf("deleted file: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > fdkind.MaxGhost {
		return 0, fmt.Errorf("deleted file: only regular files up to %d bytes are saved", fdkind.MaxGhost)
	}
	key := fmt.Sprintf("ghost\x00%d\x00%d\x00%d", st.Dev, st.Ino, openFlags)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	id := ft.addReg(fdkind.DumpReg(m.Path, openFlags, 0, uint64(st.Size), st.Mode), key)
	return id, ft.addGhost(id, link, &st)
}
