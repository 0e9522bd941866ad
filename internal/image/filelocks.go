package image

// FileLocksName is CRIU's image of the file locks the tree holds
// (FILE_LOCKS): one file_lock_entry per lock, naming the process and the
// descriptor to take it again through.
const FileLocksName = "filelocks.img"

// CRIU's file_lock_entry.flag values: which kind of lock an entry is.
const (
	LockPosix = 1 // fcntl F_SETLK, owned by the process
	LockFlock = 2 // flock(2), owned by the open file description
	LockOFD   = 4 // fcntl F_OFD_SETLK, owned by the open file description
)

// MaxFileLocks bounds the entries of filelocks.img a restore accepts.
const MaxFileLocks = 1 << 16
