package e2e

// Conformance with CRIU (issue 11): process states, descriptor kinds and
// socket states that CRIU checkpoints on a plain host. Each workload checks
// itself after the restore (testdata/conform.c, testdata/conform_tree.c).

import (
	"os"
	"path/filepath"
	"testing"
)

// TestE2EZombieSigkill: a zombie killed by SIGKILL (whose disposition
// cannot be set) comes back a zombie with the same wait status.
func TestE2EZombieSigkill(t *testing.T) {
	forEachLink(t, "conform_tree", func(t *testing.T, bin string) {
		tr := treeCR(t, bin, "zkill")
		if st := tr.Want[tr.Role("ZK")]; !st.zombie() || st.ExitCode != 9 {
			t.Errorf("workload bug: ZK at READY is %s, want a zombie killed by SIGKILL", st)
		}
	})
}

// TestE2ETreeStopped: a child stopped by SIGSTOP and one stopped by
// SIGTSTP (in a group of its own) come back stopped; their parent, which
// had not collected the stops yet, gets each one from
// waitpid(WUNTRACED) with its signal, then continues them with SIGCONT.
func TestE2ETreeStopped(t *testing.T) {
	forEachLink(t, "conform_tree", func(t *testing.T, bin string) {
		tr := treeCR(t, bin, "stopped")
		for _, role := range []string{"S1", "S2"} {
			if st := tr.Want[tr.Role(role)]; st.State != 'T' {
				t.Errorf("workload bug: %s at READY is %s, want stopped", role, st)
			}
		}
	})
}

// TestE2EUnixShutdown: Unix sockets shut down in each direction (a stream
// end after SHUT_WR with bytes still queued for its peer, a stream end
// after SHUT_RD, a seqpacket end after SHUT_RDWR, a datagram end after
// SHUT_WR) behave the same after restore: end of file where it was, EPIPE
// for the direction shut, the other direction open.
func TestE2EUnixShutdown(t *testing.T) {
	forEachLink(t, "conform", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "shutdown")
	})
}

// TestE2EUnixSockOpts: SOL_SOCKET options of Unix sockets that CRIU's
// images hold come back (SO_PASSSEC, SO_PASSCRED, SO_PRIORITY, SO_MARK,
// SO_RCVLOWAT, SO_LINGER, SO_KEEPALIVE, SO_DONTROUTE, SO_BROADCAST,
// SO_BUF_LOCK), and the peer's stay at their defaults.
func TestE2EUnixSockOpts(t *testing.T) {
	forEachLink(t, "conform", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "unixopts")
	})
}

// TestE2ELinkRemap: a file open through a removed name that still has
// another (hard link): the dump is refused in one line without
// --link-remap, as by CRIU, the process running on; with it, contents,
// offset and "(deleted)" name come back.
func TestE2ELinkRemap(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "conform", linkDynamic), "linkremap")
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, w.Pid, dir)
	assertOneErrorLine(t, res, "--link-remap", "lr-a")
	checkNoStrayCryo(t, "after the refused dump")
	w.assertRunningUntouched("after the refused dump")
	w.Checkpoint("--link-remap")
	w.Restore()
	w.Finish()
}

// TestE2EEpollMovedFd: epoll watches whose descriptor number was closed
// (the file held under another number) or given to another file (a
// second watch under the same number, a pipe dup2'ed over it): the same
// watches in fdinfo after restore, each eventfd wakes the epoll with its
// own data through the number that holds it now, the pipe wakes nothing.
func TestE2EEpollMovedFd(t *testing.T) {
	forEachLink(t, "conform", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "epoll")
	})
}

// TestE2EMemfdBeyondSize: a memfd mapped whole, then truncated below the
// mapping's end: after restore the same size and mapping, the bytes below
// the size, and SIGBUS for a touch beyond it.
func TestE2EMemfdBeyondSize(t *testing.T) {
	forEachLink(t, "conform", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "memfd")
	})
}

// TestE2EMPTCP: MPTCP listeners (IPv4, IPv6) and a bound MPTCP socket
// come back as MPTCP sockets at their addresses, and the listeners accept
// new connections; an established MPTCP connection is refused in one
// line, even with --tcp-established, the process running on; a plain TCP
// client's connection to an MPTCP listener (accepted as a plain TCP
// socket) comes back with --tcp-established.
func TestE2EMPTCP(t *testing.T) {
	forEachLink(t, "conform", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "mptcp")
	})
	t.Run("established", func(t *testing.T) {
		requireCryo(t)
		w := startWorkload(t, workloadBin(t, "conform", linkDynamic), "mptcp-established")
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		res := tryDump(t, w.Pid, dir, "--tcp-established")
		assertOneErrorLine(t, res, "established MPTCP connection")
		checkNoStrayCryo(t, "after the refused dump")
		w.assertRunningUntouched("after the refused dump")
		w.Finish()
	})
	t.Run("fallback", func(t *testing.T) {
		requireCryo(t)
		w := startWorkload(t, workloadBin(t, "conform", linkDynamic), "mptcp-fallback")
		w.Checkpoint("--tcp-established")
		w.Restore()
		w.Finish()
	})
}

// TestE2ETCPClose: `dump --tcp-close` saves an established TCP connection
// (both ends in the tree) as closed sockets: after restore both ends are
// unconnected (ENOTCONN) and the listener accepts a new connection.
// `restore --tcp-close` does the same with images dumped with
// --tcp-established (CRIU's meaning of the flag at restore).
func TestE2ETCPClose(t *testing.T) {
	requireCryo(t)
	t.Run("dump", func(t *testing.T) {
		w := startWorkload(t, workloadBin(t, "conform", linkDynamic), "tcp-close")
		w.Checkpoint("--tcp-close")
		w.Restore()
		w.Finish()
	})
	t.Run("restore", func(t *testing.T) {
		w := startWorkload(t, workloadBin(t, "conform", linkDynamic), "tcp-close")
		w.Checkpoint("--tcp-established")
		w.Restore("--tcp-close")
		w.Finish()
	})
}
