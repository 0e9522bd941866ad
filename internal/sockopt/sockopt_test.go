package sockopt

import (
	"testing"

	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TestStoreLoad: every option of every kind of inet socket comes back
// from an encoded entry as it was stored (distinct values for the int
// options, alternating ones for booleans, so that two options sharing a
// field show); an entry without options loads none and is not changed by
// loading.
func TestStoreLoad(t *testing.T) {
	for _, c := range []struct{ family, typ int }{
		{unix.AF_INET, unix.SOCK_STREAM}, {unix.AF_INET, unix.SOCK_DGRAM},
		{unix.AF_INET6, unix.SOCK_STREAM}, {unix.AF_INET6, unix.SOCK_DGRAM},
	} {
		opts := Ints(c.family, c.typ)
		value := func(i int) uint32 {
			if isBool(opts[i].Name) {
				return uint32(i % 2)
			}
			return uint32(100 + i)
		}
		e := &skinet.InetSkEntry{}
		for i, o := range opts {
			o.Store(e, value(i))
		}
		b, err := proto.MarshalOptions{AllowPartial: true}.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got := &skinet.InetSkEntry{}
		if err := (proto.UnmarshalOptions{AllowPartial: true}).Unmarshal(b, got); err != nil {
			t.Fatal(err)
		}
		for i, o := range opts {
			if v, ok := o.Load(got); !ok || v != value(i) {
				t.Errorf("family %d type %d: %s loads %d (%v), stored %d", c.family, c.typ, o.Name, v, ok, value(i))
			}
		}
		empty := &skinet.InetSkEntry{}
		for _, o := range opts {
			if v, ok := o.Load(empty); ok {
				t.Errorf("%s: %d loaded from an entry without options", o.Name, v)
			}
		}
		if empty.Opts != nil || empty.IpOpts != nil {
			t.Errorf("loading changed an entry without options")
		}
	}
}

// isBool: the options CRIU keeps as booleans (stored as 0 or 1).
func isBool(name string) bool {
	switch name {
	case "SO_REUSEADDR", "SO_REUSEPORT", "SO_KEEPALIVE", "SO_BROADCAST", "SO_DONTROUTE", "SO_NO_CHECK",
		"IPV6_V6ONLY", "IP_FREEBIND", "IPV6_FREEBIND", "IP_PKTINFO", "IPV6_RECVPKTINFO":
		return true
	}
	return false
}
