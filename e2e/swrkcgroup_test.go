package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// testPidsCgroup makes a pids cgroup of the test's own, removed at the
// end: in the cgroup v1 pids hierarchy, below the test's cgroup there,
// or, on a cgroup v2 machine, below the root with the pids controller
// enabled for its children.
func testPidsCgroup(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("cryo-e2e-pids-%d", os.Getpid())
	var dir string
	switch {
	case fileExists("/sys/fs/cgroup/pids/cgroup.procs"):
		own := ""
		for _, line := range strings.Split(readString("/proc/self/cgroup"), "\n") {
			if parts := strings.SplitN(line, ":", 3); len(parts) == 3 && parts[1] == "pids" {
				own = parts[2]
			}
		}
		dir = filepath.Join("/sys/fs/cgroup/pids", own, name)
	case fileExists("/sys/fs/cgroup/cgroup.controllers"):
		if err := os.WriteFile("/sys/fs/cgroup/cgroup.subtree_control", []byte("+pids"), 0); err != nil {
			t.Fatalf("enable the pids controller below the cgroup v2 root: %v", err)
		}
		dir = filepath.Join("/sys/fs/cgroup", name)
	default:
		t.Fatal("no pids cgroup hierarchy on this machine (cgroup v1 pids or cgroup v2)")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(dir) })
	return dir
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// cgSet writes value to a cgroup file, failing the test otherwise.
func cgSet(t *testing.T, dir, file, value string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		t.Fatalf("%s/%s = %s: %v", dir, file, value, err)
	}
}

// TestE2ESwrkCgroupLimits: manage_cgroups modes full and strict over the
// RPC, as go-criu or libcriu send them. A process with threads in a pids
// cgroup of the test's, pids.max 100, is dumped with mode full (its
// cgroups' limits in cgroup.img). The cgroup's limit is then raised to
// 200 and cryo swrk moved into it, as an engine moves criu before a
// restore: RESTORE with mode strict is refused, naming pids.max and both
// values, and nothing is restored; RESTORE with mode full sets pids.max
// back to 100 before the tree is made, and the process passes its own
// checks.
func TestE2ESwrkCgroupLimits(t *testing.T) {
	requireCryo(t)
	cg := testPidsCgroup(t)
	cgSet(t, cg, "pids.max", "100")
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "2")
	cgSet(t, cg, "cgroup.procs", fmt.Sprint(w.Pid))
	w.ImgDir = filepath.Join(t.TempDir(), "images")
	work := t.TempDir()
	opts := func(log string, mode rpc.CriuCgMode) *rpc.CriuOpts {
		return &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, w.ImgDir)), WorkDirFd: proto.Int32(openDir(t, work)),
			LogLevel: proto.Int32(4), LogFile: proto.String(log), ManageCgroups: proto.Bool(true), ManageCgroupsMode: mode.Enum()}
	}
	c := startSwrk(t, "", 3)
	o := opts("dump.log", rpc.CriuCgMode_FULL)
	o.Pid = proto.Int32(int32(w.Pid))
	resp, _ := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "dump.log"))
		t.Fatalf("DUMP with manage_cgroups mode full: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.reapOriginal()
	cgSet(t, cg, "pids.max", "200")

	c = startSwrk(t, "", 3)
	cgSet(t, cg, "cgroup.procs", fmt.Sprint(c.proc.Cmd.Process.Pid))
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: opts("strict.log", rpc.CriuCgMode_STRICT)}, nil)
	wantFailure(t, resp, "manage_cgroups mode strict", "pids.max is 200, the images say 100")
	c.finish(0)
	if fileExists(fmt.Sprintf("/proc/%d", w.Pid)) {
		t.Fatalf("process %d exists after a refused restore", w.Pid)
	}

	c = startSwrk(t, "", 3)
	cgSet(t, cg, "cgroup.procs", fmt.Sprint(c.proc.Cmd.Process.Pid))
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: opts("restore.log", rpc.CriuCgMode_FULL)}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "restore.log"))
		t.Fatalf("RESTORE with manage_cgroups mode full: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	if got := strings.TrimSpace(readString(filepath.Join(cg, "pids.max"))); got != "100" {
		t.Errorf("pids.max after a full restore: %s, want the dumped 100", got)
	}
	if log := readString(filepath.Join(work, "restore.log")); !strings.Contains(log, "1 cgroup limits set again") {
		t.Errorf("restore.log does not say the limit was set again:\n%s", clip(log, 1500))
	}
	w.rst, w.detach = c.proc, true
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	w.Finish()
}
