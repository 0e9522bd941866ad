package swrk

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// pair returns a server conn over one end of a SOCK_SEQPACKET socket pair
// made by this process (so the peer is this process) and the other end.
func pair(t *testing.T) (*conn, int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	c, err := newConn(fds[0])
	if err != nil {
		t.Fatal(err)
	}
	if c.peer != os.Getpid() {
		t.Fatalf("peer %d, want this process %d", c.peer, os.Getpid())
	}
	return c, fds[1]
}

// TestServeInProcess runs Serve over a socket pair with an Engine whose
// dump fails with a cause: every request gets its typed answer, the failure
// its one line, and Serve returns nil once the caller closes.
func TestServeInProcess(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var got Request
	eng := Engine{
		Dump: func(r Request) error {
			got = r
			return errors.New("dump 42: process 42:\nits own net namespace is not supported yet")
		},
		Restore: func(Request) (int, error) { return 0, errors.New("not used") },
		Check:   func(w io.Writer) error { return nil },
	}
	done := make(chan error, 1)
	go func() { done <- Serve(fds[0], eng) }()
	ask := func(req *rpc.CriuReq) *rpc.CriuResp {
		b, _ := proto.Marshal(req)
		if err := unix.Sendmsg(fds[1], b, nil, nil, 0); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64<<10)
		n, _, _, _, err := unix.Recvmsg(fds[1], buf, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		resp := &rpc.CriuResp{}
		if err := proto.Unmarshal(buf[:n], resp); err != nil {
			t.Fatal(err)
		}
		return resp
	}
	if r := ask(&rpc.CriuReq{Type: rpc.CriuReqType_VERSION.Enum()}); r.GetVersion().GetMajorNumber() != 4 || r.GetVersion().GetName() != "cryo" {
		t.Errorf("VERSION: %v", r)
	}
	r := ask(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(int32(d.Fd())),
		Pid: proto.Int32(42), LeaveRunning: proto.Bool(true), TcpEstablished: proto.Bool(true), LogFile: proto.String("dump.log")}})
	if r.GetType() != rpc.CriuReqType_DUMP || r.GetSuccess() {
		t.Errorf("DUMP: %v, want a failed DUMP", r)
	}
	if want := "cryo: dump 42: process 42: its own net namespace is not supported yet"; r.GetCrErrmsg() != want {
		t.Errorf("cr_errmsg %q, want %q", r.GetCrErrmsg(), want)
	}
	if got.Pid != 42 || !got.LeaveRunning || !got.TCPEstablished || got.ImagesDir == "" || got.WorkDir != got.ImagesDir {
		t.Errorf("the engine got %+v", got)
	}
	log, _ := os.ReadFile(filepath.Join(dir, "dump.log"))
	if !strings.Contains(string(log), "Error: "+r.GetCrErrmsg()) {
		t.Errorf("dump.log does not hold the error line:\n%s", log)
	}
	// SINGLE_PRE_DUMP (and PRE_DUMP) reach the engine as a pre-dump, with
	// parent_img and track_mem, and are answered with their own type.
	r = ask(&rpc.CriuReq{Type: rpc.CriuReqType_SINGLE_PRE_DUMP.Enum(), Opts: &rpc.CriuOpts{ImagesDirFd: proto.Int32(int32(d.Fd())),
		Pid: proto.Int32(42), ParentImg: proto.String("../pre"), TrackMem: proto.Bool(true)}})
	if r.GetType() != rpc.CriuReqType_SINGLE_PRE_DUMP || r.GetSuccess() || !got.PreDump || got.ParentDir != "../pre" || !got.TrackMem {
		t.Errorf("SINGLE_PRE_DUMP: %v; the engine got %+v", r, got)
	}
	if r := ask(&rpc.CriuReq{Type: rpc.CriuReqType_WAIT_PID.Enum()}); r.GetType() != rpc.CriuReqType_EMPTY || r.GetSuccess() {
		t.Errorf("WAIT_PID: %v, want a failure typed EMPTY", r)
	}
	unix.Close(fds[1])
	if err := <-done; err != nil {
		t.Errorf("Serve after the caller closed: %v", err)
	}
}

// TestTranslateRefusesByName: every set option cryo cannot honour is named
// in one error, and the descriptors are opened in the caller's process.
func TestTranslateRefusesByName(t *testing.T) {
	c, _ := pair(t)
	dir := t.TempDir()
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	s := &session{conn: c, logf: func(string, ...any) {}}
	defer s.close()
	_, err = s.translate(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: proto.Int32(int32(d.Fd())),
		AutoDedup: proto.Bool(true), EmptyNs: proto.Uint32(unix.CLONE_NEWNET | unix.CLONE_NEWUTS),
		GhostLimit: proto.Uint32(1)})
	if err == nil {
		t.Fatal("translate accepted options cryo cannot honour")
	}
	for _, want := range []string{"auto_dedup",
		"empty_ns 0x4000000 (uts): cryo does not restore a tree into fresh namespaces", "ghost_limit 1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	if _, err := s.translate(rpc.CriuReqType_DUMP, &rpc.CriuOpts{ImagesDirFd: proto.Int32(9999), Pid: proto.Int32(1)}); err == nil ||
		!strings.Contains(err.Error(), "images_dir_fd 9999: the caller") {
		t.Errorf("a descriptor the caller lacks: %v", err)
	}
	r, err := s.translate(rpc.CriuReqType_DUMP, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir), Pid: proto.Int32(1),
		EvasiveDevices: proto.Bool(true), LinkRemap: proto.Bool(true), ManageCgroupsMode: rpc.CriuCgMode_IGNORE.Enum(),
		OrphanPtsMaster: proto.Bool(true)})
	if err != nil || r.ImagesDir != dir || r.EmptyNetNS || !r.LinkRemap || !r.OrphanPts {
		t.Errorf("accepted options: %+v, %v", r, err)
	}
	// What a dump or pre-dump takes as cryo's flags of the same meaning.
	for _, kind := range []rpc.CriuReqType{rpc.CriuReqType_DUMP, rpc.CriuReqType_PRE_DUMP} {
		r, err = s.translate(kind, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir), Pid: proto.Int32(1),
			FileLocks: proto.Bool(true), ParentImg: proto.String("../pre"), TrackMem: proto.Bool(true),
			FreezeCgroup: proto.String("/sys/fs/cgroup/freezer/ct"), ManageCgroupsMode: rpc.CriuCgMode_STRICT.Enum()})
		if err != nil || !r.FileLocks || r.ParentDir != "../pre" || !r.TrackMem || r.FreezeCgroup != "/sys/fs/cgroup/freezer/ct" || s.cgMode != rpc.CriuCgMode_STRICT {
			t.Errorf("%s options: %+v, mode %v, %v", kind, r, s.cgMode, err)
		}
	}
	// On restore they have no use: logged, not taken.
	r, err = s.translate(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir),
		ParentImg: proto.String("../pre"), TrackMem: proto.Bool(true), FreezeCgroup: proto.String("/x"), ManageCgroupsMode: rpc.CriuCgMode_PROPS.Enum()})
	if err != nil || r.ParentDir != "" || r.TrackMem || r.FreezeCgroup != "" || s.cgMode != rpc.CriuCgMode_FULL {
		t.Errorf("restore options: %+v, mode %v, %v", r, s.cgMode, err)
	}
	if _, err = s.translate(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir),
		ManageCgroupsMode: rpc.CriuCgMode(42).Enum()}); err == nil || !strings.Contains(err.Error(), "not a mode cryo knows") {
		t.Errorf("an unknown manage_cgroups mode: %v", err)
	}
	// What runc sends for a container's restore is taken as given.
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var roots []*rpc.CgroupRoot
	for _, line := range strings.Split(strings.TrimSpace(string(own)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		ctrl, _, _ := strings.Cut(parts[1], ",")
		roots = append(roots, &rpc.CgroupRoot{Ctrl: proto.String(ctrl), Path: proto.String(parts[2])})
	}
	r, err = s.translate(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir),
		Root: proto.String("/run/runc/ct/criu-root"), RstSibling: proto.Bool(true), ManageCgroups: proto.Bool(true), CgRoot: roots,
		ExtMnt:    []*rpc.ExtMountMap{{Key: proto.String("/sys/fs/cgroup/cpu"), Val: proto.String("/sys/fs/cgroup/cpu/ct")}},
		InheritFd: []*rpc.InheritFd{{Key: proto.String("pipe:[7]"), Fd: proto.Int32(1)}}})
	if err != nil || r.Root != "/run/runc/ct/criu-root" || r.ExtMounts["/sys/fs/cgroup/cpu"] != "/sys/fs/cgroup/cpu/ct" || r.InheritFds["pipe:[7]"] != 1 {
		t.Errorf("a container's restore options: %+v, %v", r, err)
	}
	// A cg_root cryo is not in is refused: the tree would not land there.
	_, err = s.translate(rpc.CriuReqType_RESTORE, &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir),
		CgRoot: []*rpc.CgroupRoot{{Ctrl: roots[0].Ctrl, Path: proto.String("/elsewhere")}}})
	if err == nil || !strings.Contains(err.Error(), "=/elsewhere: cryo is in") {
		t.Errorf("a cg_root cryo is not in: %v", err)
	}
}
