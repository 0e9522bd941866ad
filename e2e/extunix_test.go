package e2e

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

// TestE2EExtUnixSk: a datagram Unix socket connected to a socket outside
// the tree (the test's, bound to a path, as /dev/log is for a logger).
// Without --ext-unix-sk the dump is refused in one line naming the flag
// and the process runs on untouched; with it, the restored socket is
// connected to the same path again: getpeername gives it, and a send()
// without address after the restore reaches the test.
func TestE2EExtUnixSk(t *testing.T) {
	forEachLink(t, "ext_unix", func(t *testing.T, bin string) {
		path := filepath.Join(t.TempDir(), "peer.sock")
		peer, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		defer peer.Close()
		recv := func(want string) {
			t.Helper()
			buf := make([]byte, 64)
			peer.SetReadDeadline(time.Now().Add(5 * time.Second))
			n, err := peer.Read(buf)
			if err != nil || string(buf[:n]) != want {
				t.Fatalf("peer got %q (%v), want %q", buf[:n], err, want)
			}
		}
		w := startWorkload(t, bin, path)
		recv("before")
		if !noCR {
			res := tryDump(t, w.Pid, t.TempDir())
			assertOneErrorLine(t, res, "ext-unix-sk")
			w.assertRunningUntouched("after the refused dump")
		}
		w.Checkpoint("--ext-unix-sk")
		w.Restore()
		w.Finish()
		if !corrupt {
			recv("after")
		}
	})
}
