package dump

import (
	"errors"
	"fmt"
	"io"
	"os"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	remap "github.com/checkpoint-restore/go-criu/v7/crit/images/remap-file-path"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// maxGhost bounds the size of a deleted file cryo saves.
const maxGhost = 64 << 20

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
	var data []byte
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// A removed directory is empty: its ghost is its mode and owner.
		f, err := proc.Open(procPath, os.O_RDONLY)
		if err != nil {
			return fmt.Errorf("read the deleted file: %w", err)
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, maxGhost+1)); err != nil {
			return fmt.Errorf("read the deleted file: %w", err)
		}
		if int64(len(data)) != st.Size {
			return fmt.Errorf("deleted file of %d bytes read as %d", st.Size, len(data))
		}
	}
	ft.ghosts = append(ft.ghosts, ghostFile{id: id, data: data, entry: &ghostfile.GhostFileEntry{
		Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid), Mode: proto.Uint32(st.Mode),
		Ino: proto.Uint64(st.Ino), Size: proto.Uint64(uint64(len(data))), Chunks: proto.Bool(false),
	}})
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
			e := g.entry
			return unix.Stat_t{Dev: key.dev, Ino: key.ino, Mode: e.GetMode(), Uid: e.GetUid(), Gid: e.GetGid(), Size: int64(e.GetSize())}, true
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
		remaps = append(remaps, &remap.RemapFilePathEntry{OrigId: proto.Uint32(r.orig), RemapId: proto.Uint32(r.remap), RemapType: remap.RemapType_GHOST.Enum()})
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
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size > maxGhost {
		return 0, fmt.Errorf("deleted file: only regular files up to %d bytes are saved", maxGhost)
	}
	key := fmt.Sprintf("ghost\x00%d\x00%d\x00%d", st.Dev, st.Ino, openFlags)
	if id, ok := ft.byKey[key]; ok {
		return id, nil
	}
	id := ft.addReg(&regfile.RegFileEntry{
		Flags: proto.Uint32(openFlags), Pos: proto.Uint64(0), Fown: noOwner(),
		Name: proto.String(m.Path), Size: proto.Uint64(uint64(st.Size)), Mode: proto.Uint32(st.Mode),
	}, key)
	return id, ft.addGhost(id, link, &st)
}
