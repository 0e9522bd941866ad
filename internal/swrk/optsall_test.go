package swrk

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// TestTranslateEveryOption: each criu_opts field cryo cannot honour is
// refused on its own, naming it; each one whose effect cryo has anyway is
// accepted and said in the log. Nothing set is taken in silence.
func TestTranslateEveryOption(t *testing.T) {
	c, _ := pair(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "criu.conf")
	if err := os.WriteFile(conf, []byte("tcp-established\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func() *rpc.CriuOpts {
		return &rpc.CriuOpts{ImagesDirFd: proto.Int32(-1), ImagesDir: proto.String(dir), Pid: proto.Int32(1)}
	}
	refused := []struct {
		name string
		set  func(o *rpc.CriuOpts)
		kind rpc.CriuReqType
	}{
		{"auto_dedup", func(o *rpc.CriuOpts) { o.AutoDedup = proto.Bool(true) }, rpc.CriuReqType_DUMP},
		{"lazy_pages", func(o *rpc.CriuOpts) { o.LazyPages = proto.Bool(true) }, rpc.CriuReqType_DUMP},
		{"ps:", func(o *rpc.CriuOpts) { o.Ps = &rpc.CriuPageServerInfo{Port: proto.Int32(1)} }, rpc.CriuReqType_PRE_DUMP},
		{"veths", func(o *rpc.CriuOpts) {
			o.Veths = []*rpc.CriuVethPair{{IfIn: proto.String("a"), IfOut: proto.String("b")}}
		}, rpc.CriuReqType_RESTORE},
		{"exec_cmd", func(o *rpc.CriuOpts) { o.ExecCmd = []string{"x"} }, rpc.CriuReqType_RESTORE},
		{"force_irmap", func(o *rpc.CriuOpts) { o.ForceIrmap = proto.Bool(true) }, rpc.CriuReqType_DUMP},
		{"unix_sk_ino", func(o *rpc.CriuOpts) { o.UnixSkIno = []*rpc.UnixSk{{Inode: proto.Uint32(1)}} }, rpc.CriuReqType_DUMP},
		{"skip_mnt", func(o *rpc.CriuOpts) { o.SkipMnt = []string{"/x"} }, rpc.CriuReqType_DUMP},
		{"ghost_limit", func(o *rpc.CriuOpts) { o.GhostLimit = proto.Uint32(1) }, rpc.CriuReqType_DUMP},
		{"timeout", func(o *rpc.CriuOpts) { o.Timeout = proto.Uint32(5) }, rpc.CriuReqType_DUMP},
		{"tls", func(o *rpc.CriuOpts) { o.Tls = proto.Bool(true) }, rpc.CriuReqType_DUMP},
		{"pidfd_store_sk", func(o *rpc.CriuOpts) { o.PidfdStoreSk = proto.Int32(3) }, rpc.CriuReqType_PRE_DUMP},
		{"skip_file_rwx_check", func(o *rpc.CriuOpts) { o.SkipFileRwxCheck = proto.Bool(true) }, rpc.CriuReqType_RESTORE},
		{"external", func(o *rpc.CriuOpts) { o.External = []string{"net[1]:x"} }, rpc.CriuReqType_RESTORE},
		{"join_ns", func(o *rpc.CriuOpts) {
			o.JoinNs = []*rpc.JoinNamespace{{Ns: proto.String("uts"), NsFile: proto.String("/x")}}
		}, rpc.CriuReqType_RESTORE},
		{"lsm_profile", func(o *rpc.CriuOpts) { o.LsmProfile = proto.String("apparmor:x") }, rpc.CriuReqType_RESTORE},
		{"cgroup_props", func(o *rpc.CriuOpts) { o.CgroupProps = proto.String("x") }, rpc.CriuReqType_DUMP},
		{"config_file", func(o *rpc.CriuOpts) { o.ConfigFile = proto.String(conf) }, rpc.CriuReqType_DUMP},
		{"inherit_fd", func(o *rpc.CriuOpts) { o.InheritFd = []*rpc.InheritFd{{Key: proto.String("k"), Fd: proto.Int32(0)}} }, rpc.CriuReqType_DUMP},
		{"empty_ns 0x20000 (mnt)", func(o *rpc.CriuOpts) { o.EmptyNs = proto.Uint32(unix.CLONE_NEWNS) }, rpc.CriuReqType_DUMP},
		{"manage_cgroups mode", func(o *rpc.CriuOpts) { o.ManageCgroupsMode = rpc.CriuCgMode(42).Enum() }, rpc.CriuReqType_DUMP},
	}
	for _, r := range refused {
		s := &session{conn: c, logf: func(string, ...any) {}}
		o := base()
		r.set(o)
		_, err := s.translate(r.kind, o)
		s.close()
		if err == nil || !strings.Contains(err.Error(), r.name) {
			t.Errorf("%s (%s): %v, want a refusal naming it", r.name, r.kind, err)
		}
	}
	var logged []string
	s := &session{conn: c, logf: func(f string, a ...any) { logged = append(logged, f) }}
	defer s.close()
	o := base()
	o.EvasiveDevices, o.WeakSysctls, o.Unprivileged = proto.Bool(true), proto.Bool(true), proto.Bool(true)
	o.DisplayStats, o.LogToStderr, o.RstSibling = proto.Bool(true), proto.Bool(true), proto.Bool(true)
	o.NetworkLock, o.CpuCap = rpc.CriuNetworkLockMethod_NFTABLES.Enum(), proto.Uint32(1)
	o.ConfigFile = proto.String(filepath.Join(dir, "absent.conf"))
	if _, err := s.translate(rpc.CriuReqType_RESTORE, o); err != nil {
		t.Fatalf("options whose effect cryo has: %v", err)
	}
	if len(logged) < 9 {
		t.Errorf("%d options said in the log, want 9 or more: %q", len(logged), logged)
	}
}
