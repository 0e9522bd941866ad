package e2e

import "testing"

// TestE2ETreeTCP: established TCP connections over loopback, IPv4 and IPv6
// (tree_tcp: the root accepted one connection from each of its children
// C4 and C6), dumped with --tcp-established while unread data is in flight
// both ways (5000 bytes client -> root, 7000 bytes root -> client, on each
// connection). After the restore every receive queue holds exactly what it
// held (FIONREAD), every stream arrives once and in order and goes on in
// both directions to EOF; getsockname/getpeername, TCP_NODELAY,
// SO_KEEPALIVE (set on C4's socket only) and O_NONBLOCK (on the root's A4
// only) are unchanged; both listeners still accept a new connection.
func TestE2ETreeTCP(t *testing.T) {
	forEachLink(t, "tree_tcp", func(t *testing.T, bin string) {
		tr := startTree(t, bin)
		tr.Checkpoint("--tcp-established")
		tr.Restore()
		tr.Finish()
	})
}

// TestE2ETreeTCPNoFlag: the same tree dumped without --tcp-established must
// be refused with one "cryo:" line naming the flag, no inventory.img, and
// the whole tree keeps running untouched and passes.
func TestE2ETreeTCPNoFlag(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_tcp", linkDynamic))
	tr.refusedDump("tcp-established")
	tr.Finish()
}
