package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestE2ETreeTCP: established TCP connections over loopback, IPv4 and IPv6
// (tree_tcp: the root accepted one connection from each of its children
// C4 and C6), dumped with --tcp-established while unread data is in flight
// both ways (5000 bytes client -> root, 7000 bytes root -> client, on each
// connection). After the restore every receive queue holds exactly what it
// held (FIONREAD), every stream arrives once and in order and goes on in
// both directions to EOF; getsockname/getpeername, TCP_NODELAY,
// SO_KEEPALIVE (set on C4's socket only) and O_NONBLOCK (on the root's A4
// only) are unchanged, and so is every other option (inetsk.h), among them
// SO_REUSEADDR on the listeners and their accepted sockets, and C4's
// keepalive timers, SO_LINGER, timeouts, SO_PRIORITY and IP_TOS; both
// listeners still accept a new connection.
func TestE2ETreeTCP(t *testing.T) {
	forEachLink(t, "tree_tcp", func(t *testing.T, bin string) {
		tr := startTree(t, bin)
		tr.Checkpoint("--tcp-established")
		tr.Restore()
		tr.Finish()
	})
}

// TestE2ETreeTCPLeaveRunning: the same tree dumped with --tcp-established
// --leave-running goes on as if nothing happened: its connections leave
// repair mode with their options as they were (repair mode turns
// SO_REUSEADDR off on the way out; A4 and A6 have it from their listener),
// and the tree passes the same checks.
func TestE2ETreeTCPLeaveRunning(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_tcp", linkDynamic))
	tr.Checkpoint("--tcp-established", "--leave-running")
	tr.Finish()
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

// TestE2ETCPExternalPeer: a connection to a peer outside the tree (the test
// itself) survives the checkpoint with --tcp-established. tcp_peer answers
// each line with its running count; the test asks twice, the tree is dumped
// and killed (the peer is told nothing: no FIN, no RST) and restored, and
// the same connection answers 3 and 4: the connection and the server's
// memory both went on. The peer's delayed ACK of "2:b" comes after the
// dump (which takes less than its 40 ms): without the network lock (an
// nftables table dropping the peer's packets until the restore) it would
// find no socket and the connection would be reset. The lock is gone after
// the restore.
func TestE2ETCPExternalPeer(t *testing.T) {
	forEachLink(t, "tcp_peer", func(t *testing.T, bin string) {
		w := startWorkload(t, bin)
		port := strings.TrimPrefix(findLine(w.Output(), "PORT "), "PORT ")
		conn, err := net.DialTimeout("tcp", "127.0.0.1:"+port, 5*time.Second)
		if err != nil {
			t.Fatalf("connect to tcp_peer on port %q: %v", port, err)
		}
		defer conn.Close()
		rd := bufio.NewReader(conn)
		ask := func(q, want string) {
			t.Helper()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			if _, err := fmt.Fprintf(conn, "%s\n", q); err != nil {
				w.logAll()
				t.Fatalf("send %q: %v", q, err)
			}
			got, err := rd.ReadString('\n')
			if err != nil || got != want+"\n" {
				w.logAll()
				t.Fatalf("asked %q: got %q (%v), want %q", q, got, err, want)
			}
		}
		ask("a", "1:a")
		ask("b", "2:b")
		w.Checkpoint("--tcp-established")
		w.Restore()
		ask("c", "3:c")
		ask("d", "4:d")
		out, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil {
			t.Errorf("nft list tables (package nftables, installed by scripts/install-test-deps.sh): %v\n%s", err, out)
		} else if lock := fmt.Sprintf("table inet cryo-%d\n", w.Pid); strings.Contains(string(out), lock) {
			t.Errorf("the network lock is still there after the restore:\n%s", out)
		}
		w.Finish()
	})
}
