package fdkind

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	remap "github.com/checkpoint-restore/go-criu/v7/crit/images/remap-file-path"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// A regular file or directory deleted while open is saved as a ghost
// (CRIU's ghost-file-N.img: its owner, mode and contents) that every file
// entry of its inode is remapped to (remap-fpath.img). Which entries share
// one ghost is the tree's business (dump/ghost.go); restore puts the ghost
// back under its old name as the process that opens it, and removes it
// once the tree holds it (restore/ghosts.go, offered to Reg.Open as
// Opener.Ghost).

// MaxGhost bounds the size of a deleted file cryo saves.
const MaxGhost = 64 << 20

// DumpGhost reads the deleted file open at procPath (a /proc/PID/fd or
// /proc/PID/map_files link), whose stat is st, as a ghost: its entry and
// contents. A removed directory is empty: its ghost is its mode and owner.
func DumpGhost(procPath string, st *unix.Stat_t) (*ghostfile.GhostFileEntry, []byte, error) {
	var data []byte
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		f, err := proc.Open(procPath, os.O_RDONLY)
		if err != nil {
			return nil, nil, fmt.Errorf("read the deleted file: %w", err)
		}
		defer f.Close()
		if data, err = io.ReadAll(io.LimitReader(f, MaxGhost+1)); err != nil {
			return nil, nil, fmt.Errorf("read the deleted file: %w", err)
		}
		if int64(len(data)) != st.Size {
			return nil, nil, fmt.Errorf("deleted file of %d bytes read as %d", st.Size, len(data))
		}
	}
	return &ghostfile.GhostFileEntry{
		Uid: proto.Uint32(st.Uid), Gid: proto.Uint32(st.Gid), Mode: proto.Uint32(st.Mode),
		Ino: proto.Uint64(st.Ino), Size: proto.Uint64(uint64(len(data))), Chunks: proto.Bool(false),
	}, data, nil
}

// GhostStat describes the inode dev:ino of a ghost saved already, as
// stat would.
func GhostStat(g *ghostfile.GhostFileEntry, dev, ino uint64) unix.Stat_t {
	return unix.Stat_t{Dev: dev, Ino: ino, Mode: g.GetMode(), Uid: g.GetUid(), Gid: g.GetGid(), Size: int64(g.GetSize())}
}

// GhostRemap says that file entry orig is (a description of) the deleted
// file whose ghost is saved as file entry id remapID.
func GhostRemap(orig, remapID uint32) proto.Message {
	return &remap.RemapFilePathEntry{OrigId: proto.Uint32(orig), RemapId: proto.Uint32(remapID), RemapType: remap.RemapType_GHOST.Enum()}
}

// Remap says that file entry Orig is a description of the deleted file
// whose ghost is saved as file entry Ghost.
type Remap struct{ Orig, Ghost uint32 }

// LoadGhostRemaps reads remap-fpath.img, if there is one: only ghost
// remaps between regular-file entries of files.img (file returns the
// entry of an id, nil if none) are supported.
func LoadGhostRemaps(dir *image.Dir, file func(uint32) *fdinfo.FileEntry) ([]Remap, error) {
	remaps, err := image.ReadEntries[*remap.RemapFilePathEntry](dir, image.RemapName, "REMAP_FPATH")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]Remap, 0, len(remaps))
	for _, r := range remaps {
		if r.GetRemapType() != remap.RemapType_GHOST {
			return nil, fmt.Errorf("%s: remap of file %d of type %v is not supported", image.RemapName, r.GetOrigId(), r.GetRemapType())
		}
		if file(r.GetOrigId()).GetReg() == nil || file(r.GetRemapId()).GetReg() == nil {
			return nil, fmt.Errorf("%s: ghost %d for file %d: not a regular file of the image", image.RemapName, r.GetRemapId(), r.GetOrigId())
		}
		out = append(out, Remap{Orig: r.GetOrigId(), Ghost: r.GetRemapId()})
	}
	return out, nil
}
