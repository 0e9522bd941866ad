package restore

import (
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
)

// restore --tcp-close, with CRIU's meaning: an established TCP connection
// saved with --tcp-established comes back closed. The socket is made at
// its descriptor with its options, but neither bound nor connected, and
// its tcp-stream image is not used: the program finds an unconnected
// socket (ENOTCONN on read, EPIPE on write), as after `dump --tcp-close`.
// CRIU shuts the socket down and ignores the ENOTCONN that gives, which
// leaves it in the same state. The network lock the dump took for the
// connection is still lifted once the tree is back, so the peer's next
// packet meets no socket and gets a reset.

// closeTCP records that the connection of e comes back closed.
func (fp *filePlan) closeTCP(p *process, e *skinet.InetSkEntry, where string) {
	fp.tcpClosed++
	p.r.logf("%s: --tcp-close: the TCP connection to port %d comes back closed", where, e.GetDstPort())
}
