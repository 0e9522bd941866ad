package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skpacket "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TestE2EUnixBacklog: connections waiting in the backlogs of a stream
// listener (three clients: 5000 bytes sent, nothing, 4 bytes) and of a
// seqpacket listener bound to a path (two messages sent) come back in
// order: after restore each listener accepts them, each server end reads
// what its client sent and nothing more, SO_PEERCRED names the process,
// and bytes go both ways. Reading what a client sent takes its connection
// out of the backlog: with --leave-running cryo puts the connections back,
// and the original process passes the same checks.
func TestE2EUnixBacklog(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		t.Run("leave-running", func(t *testing.T) {
			w := startWorkload(t, bin, "backlog")
			w.Checkpoint("--leave-running")
			w.assertRunningUntouched("after dump --leave-running")
			w.Finish()
		})
		t.Run("restore", func(t *testing.T) {
			checkpointRestore(t, bin, "backlog")
		})
	})
}

// TestE2EUnixScmRights: descriptors in flight (SCM_RIGHTS, sent and not
// received) come back with their messages, in order: a regular file held
// by nothing else (offset, access mode, content), a file the process also
// holds (one shared offset), a pipe's read end with its bytes, another
// pipe's write end, a stream socket with bytes queued to it; and in a
// stream, the bytes before the message that carried a descriptor come
// without it. CRIU's crit reads the descriptors in sk-queues.img.
func TestE2EUnixScmRights(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		w := startWorkload(t, bin, "scm")
		w.Checkpoint()
		if !noCR {
			criuCritRights(t, filepath.Join(w.ImgDir, "sk-queues.img"))
		}
		w.Restore()
		w.Finish()
	})
}

// criuCritRights decodes an sk-queues.img with CRIU's crit (package criu,
// which scripts/install-test-deps.sh installs) and checks that it shows
// descriptors in flight (an scm entry of type SCM_RIGHTS).
func criuCritRights(t *testing.T, path string) {
	t.Helper()
	critPath, err := exec.LookPath("crit")
	if err != nil {
		t.Fatal("CRIU's crit is not installed: run scripts/install-test-deps.sh")
	}
	out, err := exec.Command(critPath, "decode", "-i", path).CombinedOutput()
	if err != nil {
		t.Fatalf("crit decode %s: %v\n%s", path, err, out)
	}
	var img struct {
		Magic   string
		Entries []struct {
			Scm []struct {
				Type   int
				Rights []uint32
			}
		}
	}
	if err := json.Unmarshal(out, &img); err != nil {
		t.Fatalf("crit decode %s: %v", path, err)
	}
	rights := 0
	for _, e := range img.Entries {
		for _, s := range e.Scm {
			if s.Type == 1 {
				rights += len(s.Rights)
			}
		}
	}
	if img.Magic != "SK_QUEUES" || rights == 0 {
		t.Errorf("crit decode %s: magic %s, %d descriptors in flight; want SK_QUEUES and some", path, img.Magic, rights)
	}
}

// TestE2EUnixAcceptedListener: a listener bound to a path, made before
// the connection it accepted (its descriptor is lower), both in one
// process. Making the pair again borrows the listener's name for the
// rendezvous; the listener, already bound, must keep its socket file: a
// new client reaches it by its path after the restore, and the accepted
// end is still named by that path.
func TestE2EUnixAcceptedListener(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "accepted")
	})
}

// TestE2EUnixRelativeName: the same with the relative name "rel.sock",
// bound in the process's working directory. cryo runs elsewhere: the dump
// saves the directory (CRIU's name_dir) and the restore binds the name
// there again, so the listener, its file and the accepted end are as
// before and nothing is made in cryo's directory.
func TestE2EUnixRelativeName(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "relative")
		if _, err := os.Lstat("rel.sock"); err == nil {
			os.Remove("rel.sock")
			t.Errorf("the restore made rel.sock in cryo's working directory")
		}
	})
}

// TestE2EUnixDgramUnconnected: datagrams queued in a datagram socket that
// is connected to nobody, from three senders of the process (bound to a
// path, unnamed, and bound to an abstract name and connected to the
// receiver), come back in order, each with its sender's address; the
// connected sender is connected again and a reply to the path sender
// reaches it.
func TestE2EUnixDgramUnconnected(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		checkpointRestore(t, bin, "dgram")
	})
}

// TestE2EUnixRefused: what cryo cannot send again is refused in one line,
// the process running on untouched: a datagram queued from the test's
// named socket, one from its unnamed socket to a receiver with SO_PASSCRED
// (the credentials name the test), a connection from the test waiting in
// the backlog of a listener, a TCP connection waiting to be accepted (even
// with --tcp-established), an eventfd in flight, a deleted file too big to
// save in flight (the error names the receiving process, not cryo, which
// reads it through a copy), and an eventfd sent by the first
// of two clients waiting in a listener's backlog (the dump took both out of
// the backlog to read them, and puts both back). The process then receives
// (or accepts) them as if nothing happened.
func TestE2EUnixRefused(t *testing.T) {
	requireRoot(t)
	bin := workloadBin(t, "unix_inflight", linkDynamic)
	for _, c := range []struct {
		mode, want string
		flags      []string
		// onlyTree: the error names the process of the tree and no other
		// (not cryo, which holds a copy of the descriptor in flight).
		onlyTree bool
	}{
		{"ext-dgram", "outside the tree", nil, false},
		{"ext-cred", "credentials of process", nil, false},
		{"ext-stream", "outside the tree", nil, false},
		{"tcp-backlog", "waiting to be accepted", []string{"--tcp-established"}, false},
		{"scm-eventfd", "in flight", nil, true},
		{"scm-big-ghost", "descriptor in flight", nil, true},
		{"backlog-eventfd", "in flight", nil, true},
	} {
		t.Run(c.mode, func(t *testing.T) {
			w := startWorkload(t, bin, c.mode)
			path := filepath.Join(w.Dir, "ext.sock")
			switch c.mode {
			case "ext-dgram":
				local := filepath.Join(t.TempDir(), "test.sock")
				conn, err := net.DialUnix("unixgram", &net.UnixAddr{Name: local, Net: "unixgram"}, &net.UnixAddr{Name: path, Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.Write([]byte("outside")); err != nil {
					t.Fatal(err)
				}
			case "ext-cred":
				// Unnamed: only its credentials tell it is outside.
				conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.Write([]byte("outside")); err != nil {
					t.Fatal(err)
				}
			case "ext-stream":
				conn, err := net.Dial("unix", path)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close()
				if _, err := conn.Write([]byte("outside")); err != nil {
					t.Fatal(err)
				}
			}
			if !noCR {
				res := tryDump(t, w.Pid, t.TempDir(), c.flags...)
				assertOneErrorLine(t, res, c.want)
				if line := firstLine(res.Stderr); c.onlyTree && (strings.Count(line, "process ") != 1 || !strings.Contains(line, fmt.Sprintf("process %d fd ", w.Pid))) {
					t.Errorf("the refusal must name process %d (and no other) and its descriptor: %s", w.Pid, line)
				}
				w.assertRunningUntouched("after the refused dump")
			}
			w.Finish()
		})
	}
}

// TestE2ETreeUnixInflight: the same across two processes. The child A sent
// a datagram to the root's unconnected socket from a named socket, waits
// in the root's listener's backlog with 12 bytes sent (behind a client the
// root connected before forking A, which both hold), and sent the root a
// file and a pipe's write end it no longer holds. After restore the root
// gets the datagram with A's address and replies, accepts the shared
// client's connection (SO_PEERCRED is the root) and A's (SO_PEERCRED is
// A) and answers each, reads the file at its offset and writes through the
// pipe; A gets the reply, both answers and the pipe's bytes. The original
// tree passes the same checks after dump --leave-running, which put the
// connections it accepted back (the shared client in both processes).
func TestE2ETreeUnixInflight(t *testing.T) {
	forEachLink(t, "unix_inflight", func(t *testing.T, bin string) {
		t.Run("restore", func(t *testing.T) {
			treeCR(t, bin, "tree")
		})
		t.Run("leave-running", func(t *testing.T) {
			tr := startTree(t, bin, "tree")
			tr.Checkpoint("--leave-running")
			tr.Finish()
		})
	})
}

// TestE2EUnixCorruptImages: Unix socket images that name what is not there
// are refused in one line, nothing left behind: a descriptor in flight
// that is no file of the image, a datagram's sender that is not a socket,
// a client in a listener's backlog that is not in the tree (found only
// once the processes exist), and more datagrams queued for a socket than
// its receive queue takes (net.unix.max_dgram_qlen): refused, not waited
// for while the tree is stopped.
func TestE2EUnixCorruptImages(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "unix_inflight", linkDynamic)
	scm := startWorkload(t, bin, "scm")
	scm.Checkpoint()
	backlog := startWorkload(t, bin, "backlog")
	backlog.Checkpoint()
	dgram := startWorkload(t, bin, "dgram")
	dgram.Checkpoint()
	t.Run("receiver-full", func(t *testing.T) {
		qlen, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen")
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(qlen)))
		if err != nil {
			t.Fatal(err)
		}
		assertRestoreRefused(t, dgram, rewriteQueues(func(t *testing.T, _ string, entries []proto.Message, payloads [][]byte) ([]proto.Message, [][]byte) {
			// The first datagram again and again, from its sender: the
			// kernel refuses one more once more than n wait.
			for len(entries) < n+2 {
				entries = append(entries, proto.Clone(entries[0]))
				payloads = append(payloads, payloads[0])
			}
			return entries, payloads
		}), "receive queue full")
	})
	t.Run("rights-to-no-file", func(t *testing.T) {
		assertRestoreRefused(t, scm, editQueues(func(t *testing.T, files []*fdinfo.FileEntry, e *skpacket.SkPacketEntry) bool {
			if len(e.GetScm()) == 0 {
				return false
			}
			e.Scm[0].Rights[0] = 99999
			return true
		}))
	})
	t.Run("sender-not-a-socket", func(t *testing.T) {
		assertRestoreRefused(t, scm, editQueues(func(t *testing.T, files []*fdinfo.FileEntry, e *skpacket.SkPacketEntry) bool {
			for _, f := range files {
				if f.GetReg() != nil {
					image.SetPacketSender(e, f.GetId())
					return true
				}
			}
			return false
		}))
	})
	t.Run("backlog-client-missing", func(t *testing.T) {
		assertRestoreRefused(t, backlog, func(t *testing.T, dir string) {
			d, err := image.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			files, err := image.ReadEntries[*fdinfo.FileEntry](d, "files.img", "FILES")
			if err != nil {
				t.Fatal(err)
			}
			var msgs []proto.Message
			changed := false
			for _, f := range files {
				if u := f.GetUsk(); u != nil && u.GetState() == 10 && !changed {
					image.AddBacklog(u, []uint32{99999})
					changed = true
				}
				msgs = append(msgs, f)
			}
			if !changed {
				t.Fatal("no listener in files.img")
			}
			if err := d.Write("files.img", "FILES", msgs...); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// editQueues returns a damage function that changes the first entry of
// sk-queues.img that edit accepts to change.
func editQueues(edit func(t *testing.T, files []*fdinfo.FileEntry, e *skpacket.SkPacketEntry) bool) func(*testing.T, string) {
	return rewriteQueues(func(t *testing.T, dir string, entries []proto.Message, payloads [][]byte) ([]proto.Message, [][]byte) {
		files := filesImage(t, dir)
		for _, m := range entries {
			if edit(t, files, m.(*skpacket.SkPacketEntry)) {
				return entries, payloads
			}
		}
		t.Fatal("no entry of sk-queues.img to damage")
		return nil, nil
	})
}

// rewriteQueues returns a damage function that replaces the entries of
// sk-queues.img (with their payloads) by what rewrite makes of them.
func rewriteQueues(rewrite func(t *testing.T, dir string, entries []proto.Message, payloads [][]byte) ([]proto.Message, [][]byte)) func(*testing.T, string) {
	return func(t *testing.T, dir string) {
		d, err := image.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		entries, payloads, err := d.ReadPayloads("sk-queues.img", "SK_QUEUES")
		if err != nil {
			t.Fatal(err)
		}
		entries, payloads = rewrite(t, dir, entries, payloads)
		if err := d.WritePayloads("sk-queues.img", "SK_QUEUES", entries, payloads); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2ERootlessUnixCredsRefused: the tree workload run and dumped by the
// test user (unshare -r -i) has a datagram queued with the credentials of
// its process A. Sent again by cryo, they would name a process other than
// cryo, which the kernel takes only with CAP_SYS_ADMIN over cryo's pid
// namespace, which a rootless restore lacks: it is refused in one line
// before anything is made, and nothing of the tree is left.
func TestE2ERootlessUnixCredsRefused(t *testing.T) {
	w := rootlessDump(t, rootlessOwnUID, "unix_inflight", "tree")
	if noCR {
		return
	}
	res := usernsRunCryoAs(t, testUserCred(), "restore", "-D", w.ImgDir, "-v", "4", "-o", "restore.log")
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "credentials of process", "CAP_SYS_ADMIN")
	for _, pid := range allPids() {
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe == w.Bin {
			t.Errorf("process %d of the tree is left after the refused restore", pid)
		}
	}
	checkNoStrayCryo(t, "after the refused restore")
}

// TestE2EUnixBacklogPidNS: the tree workload as pid 1 of its own pid
// namespace (unshare -pf --mount-proc), dumped with --leave-running: the
// client in the listener's backlog that both processes hold is put back
// in both, the second taking it from the first through pidfd_open, which
// must name the first by its PID inside the namespace. The tree then
// passes its own checks.
func TestE2EUnixBacklogPidNS(t *testing.T) {
	launcher, root, out := startPidNSTree(t, "unix_inflight", "tree")
	if !noCR {
		res := tryDump(t, root, t.TempDir(), "--leave-running")
		if res.ExitCode != 0 {
			t.Fatalf("dump --leave-running: %s", res)
		}
	}
	if err := unix.Kill(root, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if !launcher.Wait(bound(t, finishTimeout)) {
		t.Fatalf("the tree did not exit after SIGTERM; output:\n%s", clip(readString(out), 8000))
	}
	if text := readString(out); launcher.ExitCode() != 0 || !strings.Contains(text, "PASS") {
		t.Errorf("the tree failed its checks after dump --leave-running (exit %d):\n%s", launcher.ExitCode(), clip(text, 8000))
	}
}

// TestE2EUnixTreePidNS: the same tree dumped and restored by root. Its
// Unix sockets are made again by their own processes inside the pid
// namespace, so that the accepted backlog client's and the pairs'
// SO_PEERCRED name them by their pids there; the tree, at its old pids
// inside and outside, passes its own checks.
func TestE2EUnixTreePidNS(t *testing.T) {
	launcher, root, out := startPidNSTree(t, "unix_inflight", "tree")
	if noCR {
		unix.Kill(root, unix.SIGTERM)
		launcher.Wait(bound(t, finishTimeout))
		return
	}
	images := filepath.Join(t.TempDir(), "images")
	if res := tryDump(t, root, images); res.ExitCode != 0 {
		t.Fatalf("dump: %s", res)
	}
	launcher.Wait(bound(t, finishTimeout))
	if err := waitPidFree(root, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	if res := runCryo(t, "restore", "-D", images, "-d", "-v", "4", "-o", "restore.log"); res.ExitCode != 0 {
		logFile(t, filepath.Join(images, "restore.log"))
		t.Fatalf("restore: %s", res)
	}
	if nsInnerPid(root) != 1 {
		t.Fatalf("after the restore, pid %d is not pid 1 of its pid namespace", root)
	}
	if err := unix.Kill(root, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := waitPidFree(root, bound(t, finishTimeout)); err != nil {
		t.Fatalf("the restored tree did not exit after SIGTERM: %v; output:\n%s", err, clip(readString(out), 8000))
	}
	if text := readString(out); !strings.Contains(text, "PASS") || strings.Contains(text, "FAIL") {
		t.Errorf("the restored tree failed its checks:\n%s", clip(text, 8000))
	}
}

// startPidNSTree starts workload name (mode) as pid 1 of a new pid
// namespace under unshare -pf --mount-proc, waits for READY, and returns
// unshare, the workload's pid as cryo sees it and its output file.
func startPidNSTree(t *testing.T, name, mode string) (launcher *bgProc, root int, out string) {
	t.Helper()
	requireRoot(t)
	bin := workloadBin(t, name, linkDynamic)
	dir := t.TempDir()
	out = filepath.Join(dir, "output.txt")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command("unshare", "-pf", "--mount-proc", bin, mode)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if launcher, err = startBg(t, "unshare", cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { launcher.kill(t) })
	for deadline := time.Now().Add(bound(t, readyTimeout)); !readyRe.MatchString(readString(out)); time.Sleep(pollInterval) {
		if launcher.Exited() || time.Now().After(deadline) {
			t.Fatalf("the tree did not print READY; output:\n%s", clip(readString(out), 8000))
		}
	}
	// The workload is unshare's child, pid 1 inside.
	root = -1
	for _, pid := range allPids() {
		if st := procStatus(fmt.Sprintf("/proc/%d/status", pid)); st["PPid"] == strconv.Itoa(launcher.Pid()) {
			root = pid
		}
	}
	if root < 0 || nsInnerPid(root) != 1 {
		t.Fatalf("no pid 1 of a new pid namespace under unshare %d (found %d)", launcher.Pid(), root)
	}
	t.Cleanup(func() { unix.Kill(root, unix.SIGKILL) })
	return launcher, root, out
}
