package e2e

import (
	"errors"
	"fmt"
	"github.com/cryo-cr/cryo/internal/memtrack"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// swrkClient is the caller's end of `cryo swrk FD`, as runc drives criu: a
// SOCK_SEQPACKET socket pair, one protobuf message per packet.
type swrkClient struct {
	t      *testing.T
	fd     int     // the test's end
	proc   *bgProc // cryo swrk
	stderr string  // its stderr file
}

// startSwrk starts cryo (under argv0 if not empty, through a link of that
// name) as `swrk N`, with the other end of a new socket pair at descriptor
// N of it.
func startSwrk(t *testing.T, argv0 string, n int) *swrkClient {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	theirs := os.NewFile(uintptr(fds[1]), "swrk socket")
	defer theirs.Close()
	cmd, _, stderr := cryoCommand(t, "swrk", strconv.Itoa(n))
	if argv0 != "" {
		link := filepath.Join(t.TempDir(), argv0)
		if err := os.Symlink(cryoBin, link); err != nil {
			t.Fatal(err)
		}
		cmd.Path, cmd.Args[0] = link, argv0
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	for len(cmd.ExtraFiles) < n-3 {
		cmd.ExtraFiles = append(cmd.ExtraFiles, devnull)
	}
	cmd.ExtraFiles = append(cmd.ExtraFiles, theirs)
	p, err := startBg(t, "cryo swrk", cmd)
	if err != nil {
		unix.Close(fds[0])
		t.Fatalf("cannot start cryo swrk: %v", err)
	}
	c := &swrkClient{t: t, fd: fds[0], proc: p, stderr: stderr}
	t.Cleanup(func() { c.close() })
	return c
}

// close closes the test's end (idempotent).
func (c *swrkClient) close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// send writes one request.
func (c *swrkClient) send(req *rpc.CriuReq) {
	c.t.Helper()
	b, err := proto.Marshal(req)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := unix.Sendmsg(c.fd, b, nil, nil, unix.MSG_NOSIGNAL); err != nil {
		c.t.Fatalf("send %s: %v", req.GetType(), err)
	}
}

// recv reads one response and the descriptors it carries, bounded in time.
func (c *swrkClient) recv() (*rpc.CriuResp, []int) {
	c.t.Helper()
	pfd := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLIN}}
	d := bound(c.t, cryoTimeout)
	deadline := time.Now().Add(d)
	for {
		n, err := unix.Poll(pfd, int(time.Until(deadline).Milliseconds()))
		if err == unix.EINTR && time.Now().Before(deadline) {
			continue
		}
		if err != nil || n == 0 {
			hung()
			c.t.Fatalf("no response from cryo swrk within %v (%v); stderr: %s", d, err, readString(c.stderr))
		}
		break
	}
	buf, oob := make([]byte, 64<<10), make([]byte, unix.CmsgSpace(4*8))
	n, oobn, _, _, err := unix.Recvmsg(c.fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		c.t.Fatalf("read response: %d bytes, %v; cryo swrk stderr: %s", n, err, readString(c.stderr))
	}
	var fds []int
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			c.t.Fatal(err)
		}
		for _, m := range msgs {
			got, err := unix.ParseUnixRights(&m)
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	resp := &rpc.CriuResp{}
	if err := proto.Unmarshal(buf[:n], resp); err != nil {
		c.t.Fatalf("decode response: %v", err)
	}
	return resp, fds
}

// call sends req and returns the final response, answering each NOTIFY
// with answer(script, pid) (nil: success) and recording the events.
func (c *swrkClient) call(req *rpc.CriuReq, answer func(script string, pid int32) bool) (*rpc.CriuResp, []string) {
	c.t.Helper()
	c.send(req)
	var events []string
	for {
		resp, fds := c.recv()
		for _, fd := range fds {
			unix.Close(fd)
		}
		if resp.GetType() != rpc.CriuReqType_NOTIFY || !resp.GetSuccess() {
			return resp, events
		}
		n := resp.GetNotify()
		events = append(events, fmt.Sprintf("%s:%d", n.GetScript(), n.GetPid()))
		ok := answer == nil || answer(n.GetScript(), n.GetPid())
		if c.fd < 0 {
			return nil, events // the answer closed the socket
		}
		c.send(&rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: proto.Bool(ok)})
	}
}

// finish closes the socket and checks that cryo swrk exits with status
// want and, when 0, says nothing on stderr.
func (c *swrkClient) finish(want int) {
	c.t.Helper()
	c.close()
	if !c.proc.Wait(bound(c.t, cryoTimeout)) {
		hung()
		c.proc.kill(c.t)
		c.t.Fatalf("cryo swrk did not exit once the socket was closed")
	}
	if got := c.proc.ExitCode(); got != want {
		c.t.Errorf("cryo swrk exited with %d, want %d; stderr: %s", got, want, readString(c.stderr))
	}
	if want == 0 && readString(c.stderr) != "" {
		c.t.Errorf("cryo swrk wrote on stderr: %s", readString(c.stderr))
	}
}

// openDir opens dir for its descriptor number, as runc passes
// images_dir_fd and work_dir_fd.
func openDir(t *testing.T, dir string) int32 {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return int32(f.Fd())
}

// wantFailure checks that resp failed with a cr_errmsg that is one cryo
// line holding every string of parts.
func wantFailure(t *testing.T, resp *rpc.CriuResp, parts ...string) {
	t.Helper()
	msg := resp.GetCrErrmsg()
	if resp.GetSuccess() {
		t.Fatalf("%s succeeded, want a failure naming %q", resp.GetType(), parts)
	}
	if !strings.HasPrefix(msg, "cryo: ") || strings.Contains(msg, "\n") {
		t.Errorf("cr_errmsg is not one cryo line: %q", msg)
	}
	for _, p := range parts {
		if !strings.Contains(msg, p) {
			t.Errorf("cr_errmsg does not name %q: %s", p, msg)
		}
	}
}

// TestE2ESwrkRequests: the requests without a tree. VERSION through a
// `criu` link on another descriptor than 3 (runc's version check passes its
// own number), FEATURE_CHECK with what cryo has, CHECK with its report in
// the log file of the work directory, a PRE_DUMP without images or
// options, PAGE_SERVER and a stray NOTIFY refused in one line, and exit 0
// once the caller closes.
func TestE2ESwrkRequests(t *testing.T) {
	requireCryo(t)
	c := startSwrk(t, "criu", 7)
	resp, _ := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_VERSION.Enum()}, nil)
	v := resp.GetVersion()
	if !resp.GetSuccess() || v == nil || v.GetMajorNumber()*10000+v.GetMinorNumber()*100+v.GetSublevel() < 31500 || v.GetGitid() != "" || v.GetName() != "cryo" {
		t.Errorf("VERSION: %v, want success, at least 3.15, no gitid, name cryo", resp)
	}
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_FEATURE_CHECK.Enum(),
		Features: &rpc.CriuFeatures{MemTrack: proto.Bool(true), LazyPages: proto.Bool(true), PidfdStore: proto.Bool(true)}}, nil)
	f := resp.GetFeatures()
	// mem_track says whether this kernel can track writes for pre-dump.
	track := memtrack.Probe() == nil
	if !resp.GetSuccess() || f == nil || f.MemTrack == nil || f.GetMemTrack() != track || f.GetLazyPages() || f.GetPidfdStore() {
		t.Errorf("FEATURE_CHECK: %v, want success with mem_track %v, lazy_pages and pidfd_store false", resp, track)
	}
	work := t.TempDir()
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_CHECK.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1),
		WorkDirFd: proto.Int32(openDir(t, work)), LogFile: proto.String("check.log"), LogLevel: proto.Int32(4)}}, nil)
	if !resp.GetSuccess() {
		t.Errorf("CHECK failed: %s", resp.GetCrErrmsg())
	}
	if log := readString(filepath.Join(work, "check.log")); !strings.Contains(log, "process_vm_readv:") {
		t.Errorf("the CHECK report is not in the log file; it holds:\n%s", log)
	}
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1)}}, nil)
	wantFailure(t, resp, "no images directory")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum()}, nil)
	wantFailure(t, resp, "PRE_DUMP request without options")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PAGE_SERVER.Enum()}, nil)
	wantFailure(t, resp, "PAGE_SERVER", "not supported")
	// A reply typed NOTIFY would read as a notification: EMPTY, as CRIU.
	c.send(&rpc.CriuReq{Type: rpc.CriuReqType_NOTIFY.Enum(), NotifySuccess: proto.Bool(true)})
	resp, _ = c.recv()
	if resp.GetType() != rpc.CriuReqType_EMPTY {
		t.Errorf("a stray NOTIFY answered with type %s, want EMPTY", resp.GetType())
	}
	wantFailure(t, resp, "no notification pending")
	c.finish(0)
}

// TestE2ESwrkDumpRestore: a process with threads dumped and restored
// through the RPC, with the images and work directories given as the
// caller's descriptors, the notifications in CRIU's order with the tree's
// pid, the log and statistics in the work directory, restore.pid and the
// status_fd byte; the restored process passes its own checks.
func TestE2ESwrkDumpRestore(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "4")
	w.ImgDir = filepath.Join(t.TempDir(), "images")
	work := filepath.Join(t.TempDir(), "work")
	opts := func() *rpc.CriuOpts {
		return &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, w.ImgDir)), WorkDirFd: proto.Int32(openDir(t, work)),
			LogLevel: proto.Int32(4), NotifyScripts: proto.Bool(true), OrphanPtsMaster: proto.Bool(true), EvasiveDevices: proto.Bool(true)}
	}
	c := startSwrk(t, "", 3)
	o := opts()
	o.Pid, o.LogFile = proto.Int32(int32(w.Pid)), proto.String("dump.log")
	resp, events := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "dump.log"))
		t.Fatalf("DUMP failed: %s", resp.GetCrErrmsg())
	}
	pid := w.Pid
	if want := []string{fmt.Sprintf("network-lock:%d", pid), fmt.Sprintf("post-dump:%d", pid)}; !slices.Equal(events, want) {
		t.Errorf("dump notifications %v, want %v", events, want)
	}
	c.finish(0)
	w.reapOriginal()
	for _, name := range []string{"dump.log", "stats-dump"} {
		if _, err := os.Stat(filepath.Join(work, name)); err != nil {
			t.Errorf("work directory: %v", err)
		}
	}
	if log := readString(filepath.Join(work, "dump.log")); !strings.Contains(log, "option evasive_devices") {
		t.Errorf("the log does not say how evasive_devices was taken:\n%s", clip(log, 4000))
	}

	var status [2]int
	if err := unix.Pipe2(status[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(status[0])
	c = startSwrk(t, "", 3)
	o = opts()
	o.LogFile, o.StatusFd = proto.String("restore.log"), proto.Int32(int32(status[1]))
	resp, events = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: o}, nil)
	unix.Close(status[1])
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "restore.log"))
		t.Fatalf("RESTORE failed: %s", resp.GetCrErrmsg())
	}
	if got := resp.GetRestore().GetPid(); int(got) != pid {
		t.Errorf("restore.pid %d, want %d", got, pid)
	}
	want := []string{"pre-restore:0"}
	for _, e := range []string{"setup-namespaces", "post-setup-namespaces", "post-restore", "network-unlock", "status-ready"} {
		want = append(want, fmt.Sprintf("%s:%d", e, pid))
	}
	if !slices.Equal(events, want) {
		t.Errorf("restore notifications %v, want %v", events, want)
	}
	b := make([]byte, 2)
	if n, err := unix.Read(status[0], b); n != 1 || b[0] != 0 || err != nil {
		t.Errorf("status_fd: read %d bytes %v (%v), want one zero byte", n, b[:max(n, 0)], err)
	}
	c.finish(0)
	if _, err := os.Stat(filepath.Join(work, "stats-restore")); err != nil {
		t.Errorf("work directory: %v", err)
	}
	w.rst, w.detach = c.proc, true
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	w.Finish()
}

// TestE2ESwrkErrors: failures carry the line cryo prints, in cr_errmsg,
// and leave the tree as it was. The options runc sends that cryo cannot
// honour are named, all in one line; a dump of a missing pid gives the
// command line's very line; a descriptor the caller does not have is named.
func TestE2ESwrkErrors(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "2")
	img := t.TempDir()
	c := startSwrk(t, "", 3)
	resp, _ := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(openDir(t, img)), Pid: proto.Int32(int32(w.Pid)),
		AutoDedup: proto.Bool(true), Root: proto.String("/run/x/rootfs"),
		EmptyNs: proto.Uint32(unix.CLONE_NEWNET | unix.CLONE_NEWIPC), ExtMnt: []*rpc.ExtMountMap{{Key: proto.String("/proc/kcore"), Val: proto.String("/dev/null")}},
		Ps: &rpc.CriuPageServerInfo{Port: proto.Int32(1)}, LsmProfile: proto.String("apparmor:x"),
	}}, nil)
	wantFailure(t, resp, "options cryo cannot honour", "auto_dedup", "empty_ns 0x8000000 (ipc)", "ps:", "lsm_profile")
	w.assertRunningUntouched("after the refused DUMP")

	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, img))}}, nil)
	wantFailure(t, resp, "pid unset")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(999), Pid: proto.Int32(int32(w.Pid))}}, nil)
	wantFailure(t, resp, "images_dir_fd 999", fmt.Sprintf("the caller (pid %d) has no such descriptor", os.Getpid()))

	// A pid that cannot exist: the same line as `cryo dump`.
	gone := 1 << 22
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, img)), Pid: proto.Int32(int32(gone))}}, nil)
	cli := runCryo(t, "dump", "-t", strconv.Itoa(gone), "-D", t.TempDir())
	assertOneErrorLine(t, cli, strconv.Itoa(gone))
	if got, want := resp.GetCrErrmsg(), strings.TrimSpace(cli.Stderr); got != want {
		t.Errorf("cr_errmsg %q, want the command line's %q", got, want)
	}
	// RESTORE from an empty directory.
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, t.TempDir()))}}, nil)
	wantFailure(t, resp, "restore:")
	c.finish(0)
	w.Finish()
}

// TestE2ESwrkPeerGone: a caller that goes away in the middle of a dump
// (after the images are written, at post-dump) gets its tree back running;
// cryo swrk exits non-zero with one line. A caller whose post-restore
// handler fails gets no tree: nothing is left at the pid.
func TestE2ESwrkPeerGone(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "2")
	c := startSwrk(t, "", 3)
	img := t.TempDir()
	resp, events := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(openDir(t, img)), Pid: proto.Int32(int32(w.Pid)), NotifyScripts: proto.Bool(true),
		LogFile: proto.String("dump.log"), LogLevel: proto.Int32(4)}},
		func(script string, _ int32) bool {
			if script == "post-dump" {
				c.close()
			}
			return true
		})
	if resp != nil || len(events) != 2 {
		t.Fatalf("the dump went on after the caller left: %v, events %v", resp, events)
	}
	if !c.proc.Wait(bound(t, cryoTimeout)) {
		hung()
		t.Fatalf("cryo swrk did not exit after its caller left")
	}
	res := cryoResult{Args: []string{"swrk", "3"}, ExitCode: c.proc.ExitCode(), Stderr: readString(c.stderr)}
	assertOneErrorLine(t, res, "send DUMP response")
	if log := readString(filepath.Join(img, "dump.log")); !strings.Contains(log, "post-dump notification (tree left running): the caller closed the RPC socket") {
		t.Errorf("the log does not say why the dump failed:\n%s", clip(log, 4000))
	}
	w.assertRunningUntouched("after its caller left in the middle of the dump")

	// The images of a dump that completes, then a restore whose caller
	// fails post-restore.
	c = startSwrk(t, "", 3)
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(openDir(t, img)), Pid: proto.Int32(int32(w.Pid)), LeaveRunning: proto.Bool(true)}}, nil)
	if !resp.GetSuccess() {
		t.Fatalf("DUMP --leave-running failed: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.assertRunningUntouched("after DUMP with leave_running")
	w.killOriginal()
	c = startSwrk(t, "", 3)
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: &rpc.CriuOpts{
		ImagesDirFd: proto.Int32(openDir(t, img)), NotifyScripts: proto.Bool(true)}},
		func(script string, _ int32) bool { return script != "post-restore" })
	wantFailure(t, resp, "post-restore notification: the caller's handler failed")
	c.finish(0)
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Errorf("after the failed restore: %v", err)
	}
	checkNoStrayCryo(t, "after the failed restore")
	if _, err := os.Stat(fmt.Sprintf("/proc/%d", w.Pid)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid %d exists after the failed restore", w.Pid)
	}
}

// TestE2ESwrkEmptyNetNS: a process in a net namespace of its own, dumped
// with empty_ns (as runc always asks) and restored with it, comes back in a
// new net namespace whose loopback is up (under CRIU it comes back down).
// Images made so refuse a restore that would not make the namespace.
func TestE2ESwrkEmptyNetNS(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "threads", linkDynamic)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal(err)
	}
	// unshare -n executes the workload in place: same pid.
	w := startWorkload(t, unshare, "-n", real, "-t", "2")
	w.Bin = real
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	oldNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", w.Pid))
	if oldNet == hostNet || oldNet == "" {
		t.Fatalf("the workload is not in a net namespace of its own (%q, host %q)", oldNet, hostNet)
	}
	w.ImgDir = filepath.Join(t.TempDir(), "images")
	opts := func() *rpc.CriuOpts {
		return &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, w.ImgDir)), LogLevel: proto.Int32(4), EmptyNs: proto.Uint32(unix.CLONE_NEWNET)}
	}
	c := startSwrk(t, "", 3)
	o := opts()
	o.Pid, o.LogFile = proto.Int32(int32(w.Pid)), proto.String("dump.log")
	resp, _ := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(w.ImgDir, "dump.log"))
		t.Fatalf("DUMP with empty_ns failed: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.reapOriginal()

	c = startSwrk(t, "", 3)
	o = opts()
	o.EmptyNs = nil
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: o}, nil)
	wantFailure(t, resp, "net namespace was left out of the dump (empty_ns)")
	c.finish(0)
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}

	c = startSwrk(t, "", 3)
	o = opts()
	o.LogFile = proto.String("restore.log")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(w.ImgDir, "restore.log"))
		t.Fatalf("RESTORE with empty_ns failed: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.rst, w.detach = c.proc, true
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	// Not compared with the dumped one: its inode number, freed with the
	// original process, may be the new namespace's.
	newNet, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", w.Pid))
	if newNet == hostNet || newNet == "" {
		t.Errorf("restored net namespace %q, want one of its own (host %q)", newNet, hostNet)
	}
	out, err := exec.Command("nsenter", "-t", strconv.Itoa(w.Pid), "-n", "ip", "-o", "link", "show", "lo").CombinedOutput()
	if err != nil || !strings.Contains(string(out), ",UP") {
		t.Errorf("the loopback of the restored namespace is not up: %v\n%s", err, out)
	}
	w.Finish()
}

// TestE2ESwrkEmptyNetNSSocketRefused: with empty_ns, a Unix socket in the
// net namespace left out cannot be described (TCP and UDP ones can, see
// TestE2ERuncRoundTrip): the dump refuses it in one line naming the
// descriptor, and the process runs on.
func TestE2ESwrkEmptyNetNSSocketRefused(t *testing.T) {
	requireCryo(t)
	real, err := filepath.EvalSymlinks(workloadBin(t, "unix_inflight", linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatal(err)
	}
	w := startWorkload(t, unshare, "-n", real, "backlog")
	w.Bin = real
	c := startSwrk(t, "", 3)
	resp, _ := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, t.TempDir())),
		Pid: proto.Int32(int32(w.Pid)), EmptyNs: proto.Uint32(unix.CLONE_NEWNET)}}, nil)
	wantFailure(t, resp, "a socket of family 1 in the net namespace left out of the dump (empty_ns): only TCP and UDP sockets are supported there yet")
	c.finish(0)
	w.assertRunningUntouched("after the refused dump")
	w.Finish()
}
