package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skinet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// TestE2EInetUDP: UDP sockets over loopback, IPv4 and IPv6 (inet_udp.c):
// unconnected ones bound to a port (one IPV6_V6ONLY, two sharing a port
// with SO_REUSEADDR + SO_REUSEPORT), pairs connected to each other in the
// root and across the fork to its child, with SO_BROADCAST, buffer sizes,
// receive and send timeouts, SO_PRIORITY, IP_TOS/IPV6_TCLASS,
// IP_TTL/IPV6_UNICAST_HOPS, packet info, SO_KEEPALIVE, SO_LINGER and
// O_NONBLOCK. After the restore every name and every option (getsockopt of
// the whole list in inetsk.h) is as before, nothing is queued, datagrams
// flow both ways on every pair, and a fresh socket reaches each bound port
// (one socket of the SO_REUSEPORT group answering).
func TestE2EInetUDP(t *testing.T) {
	forEachLink(t, "inet_udp", func(t *testing.T, bin string) {
		treeCR(t, bin)
	})
}

// TestE2EInetUDPQueued: the same tree with a datagram waiting in a UDP
// receive queue. cryo does not save queued datagrams (nor does CRIU, which
// drops them silently): the dump is refused in one line naming the socket
// and the cause, and the tree runs on untouched; the root then reads the
// datagram, intact, and passes.
func TestE2EInetUDPQueued(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "inet_udp", linkDynamic), "queued")
	tr.refusedDump("UDP socket", "receive queue", "not supported")
	tr.Finish()
}

// TestE2EInetSocketFilterRefused: a socket filter (SO_ATTACH_FILTER) on
// one of the tree's UDP sockets is not saved: the dump is refused in one
// line naming it, and the tree runs on and passes.
func TestE2EInetSocketFilterRefused(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "inet_udp", linkDynamic), "filter")
	tr.refusedDump("socket filter", "8 instructions", "not supported")
	tr.Finish()
}

// TestE2EInetUDPPrivilegedOptions: options only a privileged user can set.
// Dumped and restored by root, a socket with SO_MARK 0x42 and SO_PRIORITY
// 7 gets both back. The test user's rootless restore sets what it may (the
// rootless run of inet_udp passes in TestE2ERootlessWorkloads), but an
// image of the user's whose socket has SO_MARK set (edited into files.img
// after the user's dump) is refused in one line naming the option and the
// capability it takes, and leaves no process behind.
func TestE2EInetUDPPrivilegedOptions(t *testing.T) {
	t.Run("root", func(t *testing.T) {
		requireRoot(t)
		treeCR(t, workloadBin(t, "inet_udp", linkDynamic), "privileged")
	})
	t.Run("rootless-refused", func(t *testing.T) {
		w := rootlessDump(t, rootlessOwnUID, "inet_udp")
		if noCR {
			return
		}
		marked := false
		editImage(t, filepath.Join(w.ImgDir, "files.img"), func(m proto.Message) {
			if isk := m.(*fdinfo.FileEntry).GetIsk(); isk != nil && !marked {
				isk.Opts.SoMark = proto.Uint32(0x42)
				marked = true
			}
		})
		if !marked {
			t.Fatal("no inet socket in files.img")
		}
		res := usernsRunCryoAs(t, testUserCred(), "restore", "-D", w.ImgDir, "-v", "4", "-o", "restore.log")
		if res.ExitCode == 0 {
			logFile(t, filepath.Join(w.ImgDir, "restore.log"))
		}
		assertOneErrorLine(t, res, "SO_MARK", "CAP_NET_ADMIN")
		t.Logf("refused: %s", firstLine(res.Stderr))
		checkNoStrayCryo(t, "after the refused restore")
		for _, q := range allPids() {
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", q)); exe == w.Bin {
				t.Errorf("after the refused restore, pid %d (pid %d inside) runs %s", q, nsInnerPid(q), w.Bin)
			}
		}
	})
}

// TestE2EInetCorruptImages: inet socket entries the dump never writes,
// edited into a real image of inet_udp, are refused in one line when the
// images are read, before anything is made: a raw socket (which the
// restore would otherwise make as root for the tree), a family other than
// inet, a protocol that does not match the type, a port above 65535, an
// address of the wrong length, and an owner with a uid but no gid.
func TestE2EInetCorruptImages(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "inet_udp", linkDynamic))
	tr.Checkpoint()
	edit := func(change func(e *skinet.InetSkEntry)) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			done := false
			editImage(t, filepath.Join(dir, "files.img"), func(m proto.Message) {
				if isk := m.(*fdinfo.FileEntry).GetIsk(); isk != nil && !done {
					change(isk)
					done = true
				}
			})
			if !done {
				t.Fatal("no inet socket in files.img")
			}
		}
	}
	for _, c := range []struct {
		name   string
		change func(e *skinet.InetSkEntry)
		says   string
	}{
		{"raw", func(e *skinet.InetSkEntry) { e.Type = proto.Uint32(unix.SOCK_RAW) }, "neither a stream nor a datagram"},
		{"family", func(e *skinet.InetSkEntry) { e.Family = proto.Uint32(unix.AF_PACKET) }, "not an inet one"},
		{"protocol", func(e *skinet.InetSkEntry) { e.Proto = proto.Uint32(unix.IPPROTO_TCP) }, "protocol"},
		{"port", func(e *skinet.InetSkEntry) { e.SrcPort = proto.Uint32(70000) }, "out of range"},
		{"address", func(e *skinet.InetSkEntry) { e.SrcAddr = []uint32{1, 2} }, "address of 2 words"},
		{"owner", func(e *skinet.InetSkEntry) {
			e.ProtoReflect().SetUnknown(protowire.AppendVarint(protowire.AppendTag(nil, 2001, protowire.VarintType), 0))
		}, "uid and gid"},
	} {
		t.Run(c.name, func(t *testing.T) { assertRestoreRefused(t, tr.w, edit(c.change), "socket", c.says) })
	}
}
