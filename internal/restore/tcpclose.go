package restore

// restore --tcp-close, with CRIU's meaning: an established TCP connection
// saved with --tcp-established comes back closed. The socket is made at
// its descriptor with its options, but neither bound nor connected, and
// its tcp-stream image is not used: the program finds an unconnected
// socket (ENOTCONN on read, EPIPE on write), as after `dump --tcp-close`.
// CRIU shuts the socket down and ignores the ENOTCONN that gives, which
// leaves it in the same state. The network lock the dump took for the
// connection is still lifted once the tree is back, so the peer's next
// packet meets no socket and gets a reset.

// closeTCP tells whether established connections come back closed, and
// if so counts and logs this one.
func (fp *filePlan) closeTCP(p *process, where string, port uint32) bool {
	if !fp.tcpClose {
		return false
	}
	fp.tcpClosed++
	p.r.logf("%s: --tcp-close: the TCP connection to port %d comes back closed", where, port)
	return true
}
