package image

// CRIU's names and ABI values that the dump writes and the restore reads:
// image file names, the image version, VMA status bits, the id scheme of
// terminals, and the checksum a mapped file is recognised by.

import (
	"fmt"
	"hash/crc32"
	"io"
)

// ImageVersion is CRIU's img_version for images with per-id fdinfo files.
const ImageVersion = 2

// NetnsName is CRIU's image of a net namespace.
func NetnsName(id uint32) string { return fmt.Sprintf("netns-%d.img", id) }

// EmptyNetKey is the ext_key of the netns image of a net namespace left
// out of the dump: only a restore told to make a new one (empty_ns) takes
// such images.
const EmptyNetKey = "empty_ns"

// ChecksumLimit bounds how much of a mapped file is hashed: enough to
// notice a replaced library or binary without reading a huge data file.
const ChecksumLimit = 64 << 20

// ChecksumOf returns the CRC32C of the first min(size, ChecksumLimit)
// bytes of an open file and how many bytes that was, read from its start
// with pread, which leaves the file's offset alone (it may be shared).
func ChecksumOf(f io.ReaderAt) (sum uint32, n uint32, err error) {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	c, err := io.Copy(h, io.NewSectionReader(f, 0, ChecksumLimit))
	if err != nil {
		return 0, 0, err
	}
	return h.Sum32(), uint32(c), nil
}

// RemapName is CRIU's image that says which files are ghosts.
const RemapName = "remap-fpath.img"

// MemfdInodeName is CRIU's image of memfd inodes.
const MemfdInodeName = "memfd-inode.img"

// PagePresent is CRIU's PE_PRESENT pagemap flag.
const PagePresent = 1 << 2

// MountpointsName is CRIU's image of a mount namespace's mounts.
func MountpointsName(id uint32) string { return fmt.Sprintf("mountpoints-%d.img", id) }

// UsernsName, UtsnsName are CRIU's images of a user and a UTS namespace.
func UsernsName(id uint32) string { return fmt.Sprintf("userns-%d.img", id) }

func UtsnsName(id uint32) string { return fmt.Sprintf("utsns-%d.img", id) }

// PidnsName is CRIU's image of a pid namespace.
func PidnsName(id uint32) string { return fmt.Sprintf("pidns-%d.img", id) }

// IpcnsVarName is CRIU's image of an IPC namespace's limits.
func IpcnsVarName(id uint32) string { return fmt.Sprintf("ipcns-var-%d.img", id) }

// PipesDataName is CRIU's image of the bytes queued in pipes.
const PipesDataName = "pipes-data.img"

// FifoDataName is CRIU's image of the bytes queued in FIFOs.
const FifoDataName = "fifo-data.img"

// TtyInfoName is CRIU's image of terminals (TTY_INFO): one entry for each
// side of each pseudo-terminal pair the tree owns.
const TtyInfoName = "tty-info.img"

// TtyInfoID is CRIU's id of one side of a pair: the index, doubled, plus
// one for the master.
func TtyInfoID(index uint32, master bool) uint32 {
	if master {
		return index<<1 | 1
	}
	return index << 1
}

// TtyDataName is CRIU's image of bytes queued in terminals (TTY_DATA).
const TtyDataName = "tty-data.img"

// MaxTtyData bounds the bytes saved for one terminal: a pty queues a few
// pages at most (the line discipline's buffer and the flip buffers).
const MaxTtyData = 1 << 20

// ShmemPagemapName is CRIU's image of an anonymous shared memory object's
// pages, by shmid (here the object's inode).
func ShmemPagemapName(shmid uint64) string { return fmt.Sprintf("pagemap-shmem-%d.img", shmid) }

// TimensName is CRIU's image of a time namespace.
func TimensName(id uint32) string { return fmt.Sprintf("timens-%d.img", id) }

// SkQueuesName is CRIU's image of the bytes queued in sockets.
const SkQueuesName = "sk-queues.img"

// CRIU's VMA status bits (the image ABI).
const (
	VmaRegular     = 1 << 0
	VmaStack       = 1 << 1
	VmaVsyscall    = 1 << 2
	VmaVdso        = 1 << 3
	VmaHeap        = 1 << 5
	VmaFilePrivate = 1 << 6
	VmaFileShared  = 1 << 7
	VmaAnonShared  = 1 << 8
	VmaAnonPrivate = 1 << 9
	VmaSysvIPC     = 1 << 10
	VmaVvar        = 1 << 12
)
