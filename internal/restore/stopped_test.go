package restore

import (
	"testing"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TestStopSignal: a stopped task's signal is one of the four stop
// signals (none: SIGSTOP, as CRIU reads its older images); any other
// signal, or one for a running task, is a corrupt image.
func TestStopSignal(t *testing.T) {
	for _, c := range []struct {
		state uint32
		sig   *uint32
		want  unix.Signal
		bad   bool
	}{
		{taskAlive, nil, 0, false},
		{taskStopped, nil, unix.SIGSTOP, false},
		{taskStopped, proto.Uint32(uint32(unix.SIGTSTP)), unix.SIGTSTP, false},
		{taskStopped, proto.Uint32(uint32(unix.SIGTTIN)), unix.SIGTTIN, false},
		{taskStopped, proto.Uint32(uint32(unix.SIGKILL)), 0, true},
		{taskStopped, proto.Uint32(1000), 0, true},
		{taskAlive, proto.Uint32(uint32(unix.SIGSTOP)), 0, true},
	} {
		got, err := stopSignal(&core.TaskCoreEntry{TaskState: proto.Uint32(c.state), StopSigno: c.sig})
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("state %d stop_signo %v: got %v, %v; want %v, error %v", c.state, c.sig, got, err, c.want, c.bad)
		}
	}
}
