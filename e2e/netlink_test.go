package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestE2ENetlink: netlink sockets (netlink.c), as a browser's link monitor
// holds them, dumped and restored by root: one in the test's net namespace
// (cryo's), bound by the kernel at its first request, and, in the
// process's own net namespace, a NETLINK_ROUTE socket in the link group
// and in group 33, with options, and a NETLINK_KOBJECT_UEVENT socket bound
// to a chosen port. The restored process checks each socket's port,
// groups, type, options and net namespace, then that the route socket of
// its namespace hears its loopback go up and lists that loopback alone,
// and that the first socket's link dump is answered to its port.
func TestE2ENetlink(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "netlink", linkDynamic))
	w.Checkpoint()
	w.Restore()
	w.Finish()
}

// TestE2ENetlinkRootless: netlink.c started by the test user in a user
// namespace of its own (unshare -r -i), dumped and restored by that user.
func TestE2ENetlinkRootless(t *testing.T) {
	runRootlessWorkload(t, rootlessOwnUID, "netlink")
}

// TestE2ENetlinkQueued: a netlink socket with an answer waiting unread is
// refused at dump time in one line naming the socket and why (its
// messages cannot be saved, CRIU drops them), and the tree runs on as it
// was: after SIGTERM the process reads the answer and passes every check.
func TestE2ENetlinkQueued(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "netlink", linkDynamic), "queued")
	if !noCR {
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		res := tryDump(t, w.Pid, dir)
		assertOneErrorLine(t, res, "netlink socket (protocol 0)", "messages waiting in its receive queue", "CRIU drops them")
		checkNoStrayCryo(t, "after the refused dump")
		w.assertRunningUntouched("after the refused dump")
	}
	w.Finish()
}
