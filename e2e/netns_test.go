package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestE2ENetnsLoopback: a process in a net namespace of its own with only
// its loopback (netns.c), as `unshare -n` and sandboxes make them, dumped
// and restored by root. Mode "up": the loopback up with MTU 16000, the
// address 127.0.0.2/8 labelled lo:1, settings changed (somaxconn,
// max_dgram_qlen, ping_group_range, conf.lo.arp_announce), a TCP listener
// and a bound UDP socket on 127.0.0.2 and a listener on an abstract Unix
// name. Mode "down": the loopback down with MTU 1280, the abstract
// listener. Mode "two": "up", plus a child in a second namespace with
// 127.0.0.3 and the same abstract name and TCP port, holding the root's
// sockets too. The restored processes check from inside that the state is
// back and that every socket answers there. The test checks that the
// images hold an address dump `ip addr showdump` reads, and that the
// abstract name is not in cryo's (the test's) namespace.
func TestE2ENetnsLoopback(t *testing.T) {
	requireRoot(t)
	for _, mode := range []string{"up", "down", "two"} {
		t.Run(mode, func(t *testing.T) {
			w := startWorkload(t, workloadBin(t, "netns", linkDynamic), mode)
			w.Checkpoint()
			if !noCR {
				reapChild(t, w)
				checkAddrDump(t, w.ImgDir, mode)
			}
			w.Restore()
			if !noCR {
				checkOwnNetns(t, w.Pid)
			}
			w.Finish()
		})
	}
}

// TestE2ENetnsRootless: netns.c's "two" tree started by the test user in
// a user namespace of its own (unshare -r -i), each of its two net
// namespaces made by its processes inside it, dumped and restored by that
// user: the namespaces come back owned by the restored user namespace,
// with their loopback, addresses, settings and sockets.
func TestE2ENetnsRootless(t *testing.T) {
	runRootlessWorkload(t, rootlessOwnUID, "netns", "two")
}

// TestE2ENetnsVeth: two processes in two net namespaces joined by a veth
// pair (netns_veth.c), as `ip netns` setups make them, with addresses, a
// changed MTU, a route and a per-device setting, and an established TCP
// connection over the pair with a byte in flight each way, dumped with
// --tcp-established and restored by root. Each restored process checks
// with iproute2 inside its namespace that its link, address, MTU and
// route are back, reads the bytes in flight and exchanges more, and the
// child connects afresh to the root's listener over the pair. The test
// checks that `ip route showdump` reads the route dump.
func TestE2ENetnsVeth(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "netns_veth", linkDynamic))
	w.Checkpoint("--tcp-established")
	if !noCR {
		reapChild(t, w)
		var all string
		dumps, _ := filepath.Glob(filepath.Join(w.ImgDir, "route-*.img"))
		for _, d := range dumps {
			all += showdump(t, d, "route")
		}
		if !strings.Contains(all, "10.99.0.0/24 via 10.77.0.1") {
			t.Errorf("no route to 10.99.0.0/24 via 10.77.0.1 in the route dumps %v:\n%s", dumps, all)
		}
	}
	w.Restore("--tcp-established")
	w.Finish()
}

// TestE2ENetnsVethRootless: netns_veth.c's two namespaces joined by a
// veth pair, started by the test user in unshare -r -i (mode "listen": no
// connection before the dump, which the rootless harness makes without
// --tcp-established), dumped and restored by that user: the pair, its
// addresses, MTU, route and setting come back, and the child connects to
// the root's listener over it.
func TestE2ENetnsVethRootless(t *testing.T) {
	runRootlessWorkload(t, rootlessOwnUID, "netns_veth", "listen")
}

// TestE2ENetnsVethExternal: a veth whose other end is in the test's own
// net namespace, outside the tree, is refused at dump time in one line
// naming the link (CRIU would need --external veth[...]); the tree runs on
// and passes its checks, and no helper is left behind.
func TestE2ENetnsVethExternal(t *testing.T) {
	requireRoot(t)
	w := startWorkload(t, workloadBin(t, "netns", linkDynamic), "down")
	out, err := exec.Command("ip", "link", "add", "cryoext0", "type", "veth", "peer", "name", "cryoext1", "netns", strconv.Itoa(w.Pid)).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link add: %v\n%s", err, out)
	}
	// Gone with the tree's namespace; removed here if the test fails first.
	t.Cleanup(func() { exec.Command("ip", "link", "del", "cryoext0").Run() })
	if !noCR {
		dir := filepath.Join(t.TempDir(), "images")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		res := tryDump(t, w.Pid, dir)
		assertOneErrorLine(t, res, "veth cryoext1", "outside the tree", "--external veth[cryoext1]")
		checkNoStrayCryo(t, "after the refused dump")
		w.assertRunningUntouched("after the refused dump")
	}
	w.Finish()
}

// showdump is what `ip OBJECT showdump` prints of the dump in file.
func showdump(t *testing.T, file, object string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command("ip", object, "showdump")
	cmd.Stdin = f
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s showdump < %s: %v\n%s", object, file, err, out)
	}
	return string(out)
}

// checkAddrDump: the images hold one address dump per net namespace, which
// iproute2's `ip addr showdump` decodes; mode "up" and "two" have
// 127.0.0.2 labelled lo:1 in one of them.
func checkAddrDump(t *testing.T, dir, mode string) {
	t.Helper()
	dumps, _ := filepath.Glob(filepath.Join(dir, "ifaddr-*.img"))
	want := map[string]int{"up": 1, "down": 1, "two": 2}[mode]
	if len(dumps) != want {
		t.Fatalf("%d ifaddr images (%v), want %d", len(dumps), dumps, want)
	}
	var all string
	for _, d := range dumps {
		all += showdump(t, d, "addr")
	}
	if mode != "down" && !strings.Contains(all, "inet 127.0.0.2/8") || mode != "down" && !strings.Contains(all, "lo:1") {
		t.Errorf("no 127.0.0.2/8 lo:1 in the address dumps:\n%s", all)
	}
}

// checkOwnNetns: the restored process pid is in a net namespace that is
// not the test's, and its abstract Unix name is not reachable from the
// test's namespace (it would be, had the listener been made in cryo's).
func checkOwnNetns(t *testing.T, pid int) {
	t.Helper()
	own, err1 := os.Readlink("/proc/self/ns/net")
	its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err1 != nil || err2 != nil || own == its {
		t.Errorf("restored process %d is in net namespace %q, the test in %q (%v, %v)", pid, its, own, err1, err2)
	}
	if c, err := net.Dial("unix", "@cryo-netns-test"); err == nil {
		c.Close()
		t.Errorf("the abstract name cryo-netns-test answers in the test's net namespace")
	}
}

// reapChild waits until the workload's child (mode "two"), killed by the
// dump and left to the test as a zombie, is reaped, so that its PID is
// free for the restore.
func reapChild(t *testing.T, w *Workload) {
	t.Helper()
	m := regexp.MustCompile(`INFO: child pid=(\d+)`).FindStringSubmatch(w.Output())
	if m == nil {
		return
	}
	pid, _ := strconv.Atoi(m[1])
	exists := func() bool { _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); return err == nil }
	for deadline := time.Now().Add(bound(t, killTimeout)); exists(); time.Sleep(pollInterval) {
		if time.Now().After(deadline) {
			t.Fatalf("the workload's child %d is still there after the dump", pid)
		}
		reapZombieChildren()
	}
}
