// Package netlock keeps the peers of dumped TCP connections from being
// reset while their sockets do not exist: between the dump that killed the
// tree and the restore, a packet from a peer would find no socket and the
// kernel would answer it with a reset. Like CRIU's network lock, an
// nftables table drops every incoming packet of the locked connections
// until the restore has rebuilt them (the peer retransmits).
package netlock

import (
	"errors"
	"fmt"
	"net/netip"
	"os"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Conn is one TCP connection as seen from the tree's side.
type Conn struct {
	Local, Remote netip.AddrPort
}

// TableName is the nftables table (family inet) that locks the
// connections of the tree rooted at pid.
func TableName(pid int) string { return fmt.Sprintf("cryo-%d", pid) }

// Lock drops, from now on, every packet a peer sends on conns, in the
// caller's network namespace.
func Lock(pid int, conns []Conn) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network lock: %w", err)
	}
	return lock(c, pid, conns)
}

// lock adds the table of the tree rooted at pid, dropping the peers'
// packets of conns, through netlink connection c.
func lock(c *nftables.Conn, pid int, conns []Conn) error {
	t := c.AddTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName(pid)})
	ch := c.AddChain(&nftables.Chain{Name: "input", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookInput, Priority: nftables.ChainPriorityFilter})
	for _, conn := range conns {
		exprs, err := dropIncoming(conn)
		if err != nil {
			return err
		}
		c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: exprs})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network lock: table inet %s: %w", TableName(pid), err)
	}
	return nil
}

// Unlock removes the lock of the tree rooted at pid; no lock is no error.
func Unlock(pid int) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("network unlock: %w", err)
	}
	c.DelTable(&nftables.Table{Family: nftables.TableFamilyINet, Name: TableName(pid)})
	if err := c.Flush(); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network unlock: table inet %s: %w", TableName(pid), err)
	}
	return nil
}

// dropIncoming matches TCP packets from conn's remote end to its local end.
func dropIncoming(conn Conn) ([]expr.Any, error) {
	local, remote := conn.Local.Addr().Unmap(), conn.Remote.Addr().Unmap()
	var family byte
	var srcOff, dstOff uint32
	switch {
	case local.Is4() && remote.Is4():
		family, srcOff, dstOff = unix.NFPROTO_IPV4, 12, 16
	case local.Is6() && remote.Is6():
		family, srcOff, dstOff = unix.NFPROTO_IPV6, 8, 24
	default:
		return nil, fmt.Errorf("network lock: connection %v -> %v: mixed address families", conn.Local, conn.Remote)
	}
	match := func(base expr.PayloadBase, off uint32, data []byte) []expr.Any {
		return []expr.Any{
			&expr.Payload{DestRegister: 1, Base: base, Offset: off, Len: uint32(len(data))},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: data},
		}
	}
	port := func(p uint16) []byte { return []byte{byte(p >> 8), byte(p)} }
	exprs := []expr.Any{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{family}},
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_TCP}},
	}
	exprs = append(exprs, match(expr.PayloadBaseNetworkHeader, srcOff, remote.AsSlice())...)
	exprs = append(exprs, match(expr.PayloadBaseNetworkHeader, dstOff, local.AsSlice())...)
	exprs = append(exprs, match(expr.PayloadBaseTransportHeader, 0, port(conn.Remote.Port()))...)
	exprs = append(exprs, match(expr.PayloadBaseTransportHeader, 2, port(conn.Local.Port()))...)
	return append(exprs, &expr.Verdict{Kind: expr.VerdictDrop}), nil
}
