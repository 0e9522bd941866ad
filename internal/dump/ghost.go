package dump

import (
	"fmt"
	"io"
	"os"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	remap "github.com/checkpoint-restore/go-criu/v7/crit/images/remap-file-path"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// RemapName is CRIU's image that says which files are ghosts.
const RemapName = "remap-fpath.img"

// maxGhost bounds the size of a deleted file cryo saves.
const maxGhost = 64 << 20

// ghostFile is a regular file deleted while open: its contents go into the
// images (CRIU's ghost files) and come back under its old name, unlinked.
type ghostFile struct {
	id    uint32
	entry *ghostfile.GhostFileEntry
	data  []byte
}

func (ft *fileTable) addGhost(id uint32, pid, fd int, st *unix.Stat_t) error {
	f, err := os.Open(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
	if err != nil {
		return fmt.Errorf("read the deleted file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxGhost+1))
	if err != nil {
		return fmt.Errorf("read the deleted file: %w", err)
	}
	if int64(len(data)) != st.Size {
		return fmt.Errorf("deleted file of %d bytes read as %d", st.Size, len(data))
	}
	ft.ghosts = append(ft.ghosts, ghostFile{id: id, data: data, entry: &ghostfile.GhostFileEntry{
		Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid), Mode: proto.Uint32(st.Mode),
		Ino: proto.Uint64(st.Ino), Size: proto.Uint64(uint64(len(data))), Chunks: proto.Bool(false),
	}})
	return nil
}

// writeGhosts writes ghost-file-N.img for each ghost and remap-fpath.img.
func (ft *fileTable) writeGhosts(dir *image.Dir) error {
	var remaps []proto.Message
	for _, g := range ft.ghosts {
		if err := dir.WriteGhost(g.id, g.entry, g.data); err != nil {
			return err
		}
		remaps = append(remaps, &remap.RemapFilePathEntry{OrigId: proto.Uint32(g.id), RemapId: proto.Uint32(g.id), RemapType: remap.RemapType_GHOST.Enum()})
	}
	if len(remaps) == 0 {
		return nil
	}
	return dir.Write(RemapName, "REMAP_FPATH", remaps...)
}
