package image

import (
	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"google.golang.org/protobuf/encoding/protowire"
)

// fieldVmaAnonHuge is vma_entry's extension field (see ext.go): how many
// bytes of the area were transparent huge pages when it was dumped
// (smaps' AnonHugePages). CRIU's entry has no field for it, and only the
// areas advised MADV_HUGEPAGE say so through their madv bits.
const fieldVmaAnonHuge protowire.Number = 1001

// SetVmaAnonHuge records that n bytes of the area were huge pages; 0
// records nothing.
func SetVmaAnonHuge(e *vma.VmaEntry, n uint64) {
	if n == 0 {
		return
	}
	e.ProtoReflect().SetUnknown(appendVarints(nil, fieldVmaAnonHuge, n))
}

// VmaAnonHuge reads what SetVmaAnonHuge recorded (0 if nothing).
func VmaAnonHuge(e *vma.VmaEntry) (uint64, error) {
	var n uint64
	err := varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldVmaAnonHuge {
			n = v
		}
	})
	return n, err
}
