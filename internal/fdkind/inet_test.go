package fdkind

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/netlock"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// fakeDumped is a socket's dump without a tree: cryo's namespace, no
// connection saved.
type fakeDumped struct{}

func (fakeDumped) Where() string                                   { return "test socket" }
func (fakeDumped) SkipInFlight() bool                              { return false }
func (fakeDumped) TCPEstablished() bool                            { return false }
func (fakeDumped) TCPClose() bool                                  { return false }
func (fakeDumped) NetNs(int) (uint32, error)                       { return 0, nil }
func (fakeDumped) Repair(int) error                                { return nil }
func (fakeDumped) SaveTCP(int, uint32, netlock.Conn, uint32) error { return nil }

// A bound UDP socket is described as restore can make it again, and the
// entry passes the checks of an untrusted image; entries the dump never
// writes (a raw socket, another family, an established MPTCP connection,
// a port or address out of shape) are refused.
func TestInetEntryChecked(t *testing.T) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	if err := unix.Bind(s, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	f, err := DumpInet(fakeDumped{}, s, 77, unix.O_RDWR|unix.O_NONBLOCK, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckFile(f); err != nil {
		t.Fatalf("dumped entry refused: %v", err)
	}
	e := f.GetIsk()
	if e.GetId() != 3 || e.GetIno() != 77 || e.GetSrcPort() == 0 || e.GetFlags() != unix.O_RDWR|unix.O_NONBLOCK {
		t.Errorf("entry %v", e)
	}
	for name, spoil := range map[string]func(f *fdinfo.FileEntry){
		"raw":           func(f *fdinfo.FileEntry) { f.GetIsk().Type = proto.Uint32(unix.SOCK_RAW) },
		"unix family":   func(f *fdinfo.FileEntry) { f.GetIsk().Family = proto.Uint32(unix.AF_UNIX) },
		"port":          func(f *fdinfo.FileEntry) { f.GetIsk().SrcPort = proto.Uint32(70000) },
		"address words": func(f *fdinfo.FileEntry) { f.GetIsk().SrcAddr = []uint32{1, 2} },
		"state":         func(f *fdinfo.FileEntry) { f.GetIsk().State = proto.Uint32(3) },
		"no options":    func(f *fdinfo.FileEntry) { f.GetIsk().Opts = nil },
		"MPTCP connection": func(f *fdinfo.FileEntry) {
			e := f.GetIsk()
			e.Type, e.Proto, e.State = proto.Uint32(unix.SOCK_STREAM), proto.Uint32(unix.IPPROTO_MPTCP), proto.Uint32(stateEstablished)
		},
	} {
		bad := proto.Clone(f).(*fdinfo.FileEntry)
		spoil(bad)
		if err := CheckFile(bad); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
