package netns

import (
	"encoding/binary"
	"reflect"
	"testing"
)

// An address dump written by EncodeAddrs reads back the same addresses,
// by link index, IPv4 and IPv6, with labels, peers and flags.
func TestAddrDumpRoundTrip(t *testing.T) {
	s := &State{Links: []Link{
		{Name: "lo", Index: 1, Kind: "device", Addrs: []Addr{
			{CIDR: "127.0.0.1/8", Label: "lo", Scope: 254, Flags: 0x80},
			{CIDR: "127.0.0.2/8", Label: "lo:1", Scope: 254, Flags: 0x81},
			{CIDR: "::1/128", Scope: 254, Flags: 0x80},
		}},
		{Name: "veth0", Index: 7, Kind: "veth", Addrs: []Addr{
			{CIDR: "10.1.0.1/24", Broadcast: "10.1.0.255", Label: "veth0", Flags: 0x80},
			{CIDR: "10.9.0.1/32", Peer: "10.9.0.2/32", Label: "veth0", Flags: 0x80},
			{CIDR: "fd00::1/64", Flags: 0x280},
		}},
	}}
	got, err := DecodeAddrs(EncodeAddrs(s))
	if err != nil {
		t.Fatal(err)
	}
	want := map[int][]Addr{1: s.Links[0].Addrs, 7: s.Links[1].Addrs}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, want)
	}
}

// Damaged dumps are refused, never read past their end.
func TestAddrDumpDamaged(t *testing.T) {
	good := EncodeAddrs(&State{Links: []Link{{Name: "lo", Index: 1, Addrs: []Addr{{CIDR: "127.0.0.1/8"}}}}})
	bad := map[string][]byte{
		"empty":     nil,
		"magic":     append([]byte{1, 2, 3, 4}, good[4:]...),
		"truncated": good[:len(good)-3],
		"header":    good[:4+10],
		"length": func() []byte {
			b := append([]byte(nil), good...)
			binary.NativeEndian.PutUint32(b[4:], 1<<20)
			return b
		}(),
		"type": func() []byte { b := append([]byte(nil), good...); binary.NativeEndian.PutUint16(b[8:], 99); return b }(),
	}
	for name, b := range bad {
		if _, err := DecodeAddrs(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A route dump written by EncodeRoutes reads back the same routes.
func TestRouteDumpRoundTrip(t *testing.T) {
	s := &State{Links: []Link{{Name: "lo", Index: 1}, {Name: "v0", Index: 5}},
		Routes: []Route{
			{Dst: "10.99.0.0/24", Gw: "10.77.0.1", Dev: "v0", Table: 254, Protocol: 3, Family: 2},
			{Gw: "10.77.0.1", Dev: "v0", Table: 254, Protocol: 4, Priority: 100, Family: 2},
			{Dst: "fd00:1::/64", Src: "fd00::1", Dev: "v0", Table: 254, Protocol: 3, Family: 10},
		}}
	got, err := DecodeRoutes(EncodeRoutes(s), map[int]string{1: "lo", 5: "v0"})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s.Routes) {
		t.Errorf("read back\n%+v\nwant\n%+v", got, s.Routes)
	}
	if _, err := DecodeRoutes(EncodeRoutes(s), map[int]string{1: "lo"}); err == nil {
		t.Error("a route on a link the namespace lacks was read")
	}
}
