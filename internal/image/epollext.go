package image

import (
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// fieldEpollTarget is an extra field of eventpoll_tfd_entry: the id (in
// files.img) of the file a watch watches. CRIU's entry names only the
// descriptor number the watch was added with (tfd), which may have been
// closed or given to another file since.
const fieldEpollTarget protowire.Number = 1001

// SetEpollTarget records the file id a watch watches.
func SetEpollTarget(e proto.Message, id uint32) {
	r := e.ProtoReflect()
	r.SetUnknown(appendVarints(r.GetUnknown(), fieldEpollTarget, uint64(id)))
}

// EpollTarget returns the file id recorded by SetEpollTarget; ok is false
// for an entry without one (CRIU's images): the watch is then on the file
// at its tfd.
func EpollTarget(e proto.Message) (id uint32, ok bool, err error) {
	err = varintFields(e.ProtoReflect().GetUnknown(), func(num protowire.Number, v uint64) {
		if num == fieldEpollTarget {
			id, ok = uint32(v), true
		}
	})
	return id, ok, err
}
