package image

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"google.golang.org/protobuf/encoding/protowire"
)

// fieldDeadProcRoot marks an fs entry whose root and working directory
// are the fdinfo directory of a process that is gone, /proc/N/fdinfo: a
// browser sandbox's chroot (Firefox's and Chromium's), where every path
// leads nowhere. Root and working directory still name that directory.
const fieldDeadProcRoot protowire.Number = 1001

// SetDeadProcRoot marks e's root and working directory as a dead /proc
// directory.
func SetDeadProcRoot(e *fs.FsEntry) {
	e.ProtoReflect().SetUnknown(appendVarints(e.ProtoReflect().GetUnknown(), fieldDeadProcRoot, uint64(1)))
}

// DeadProcRoot reads what SetDeadProcRoot marked.
func DeadProcRoot(e *fs.FsEntry) (bool, error) {
	dead := false
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldDeadProcRoot {
			dead = v != 0
		}
	})
	return dead, err
}
