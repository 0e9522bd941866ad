package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/rpc"
	"google.golang.org/protobuf/proto"
)

// TestE2ESwrkPreDump: incremental dumps over the RPC, with the tracking
// held by the keeper between requests and between cryo processes. One
// cryo swrk serves two PRE_DUMPs of a process with threads (the second
// with parent_img ../pre1); another, later, serves the DUMP with
// parent_img ../pre2 and track_mem, which leaves the pages unchanged since
// pre2 in it; RESTORE reads through the chain and the process passes its
// own checks. A PRE_DUMP leaves the tree running, and so does one whose
// parent_img is not a sibling (refused in one line), and one whose caller
// leaves in its middle.
func TestE2ESwrkPreDump(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "3")
	chain := t.TempDir()
	dir := func(name string) string { return filepath.Join(chain, name) }
	work := t.TempDir()
	opts := func(img, log string) *rpc.CriuOpts {
		if err := os.MkdirAll(dir(img), 0o700); err != nil {
			t.Fatal(err)
		}
		return &rpc.CriuOpts{ImagesDirFd: proto.Int32(openDir(t, dir(img))), WorkDirFd: proto.Int32(openDir(t, work)),
			LogLevel: proto.Int32(4), LogFile: proto.String(log), Pid: proto.Int32(int32(w.Pid))}
	}
	// A caller that leaves in the middle of a PRE_DUMP (at network-lock,
	// the tree frozen) gets its tree back running; cryo exits with one
	// line.
	c := startSwrk(t, "", 3)
	o := opts("gone", "gone.log")
	o.NotifyScripts = proto.Bool(true)
	resp, events := c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: o},
		func(script string, _ int32) bool {
			if script == "network-lock" {
				c.close()
			}
			return true
		})
	if resp != nil || len(events) != 1 {
		t.Fatalf("the pre-dump went on after the caller left: %v, events %v", resp, events)
	}
	if !c.proc.Wait(bound(t, cryoTimeout)) {
		hung()
		t.Fatalf("cryo swrk did not exit after its caller left")
	}
	assertOneErrorLine(t, cryoResult{Args: []string{"swrk", "3"}, ExitCode: c.proc.ExitCode(), Stderr: readString(c.stderr)}, "PRE_DUMP")
	w.assertRunningUntouched("after its caller left in the middle of a PRE_DUMP")

	c = startSwrk(t, "", 3)
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_FEATURE_CHECK.Enum(), Features: &rpc.CriuFeatures{MemTrack: proto.Bool(true)}}, nil)
	if !resp.GetFeatures().GetMemTrack() {
		t.Fatalf("FEATURE_CHECK: mem_track false on a kernel where cryo pre-dump tracks writes: %v", resp)
	}
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: opts("pre1", "pre1.log")}, nil)
	if !resp.GetSuccess() || resp.GetType() != rpc.CriuReqType_PRE_DUMP {
		logFile(t, filepath.Join(work, "pre1.log"))
		t.Fatalf("PRE_DUMP: %v", resp)
	}
	w.assertRunningUntouched("after the first PRE_DUMP")
	o = opts("pre2", "pre2.log")
	o.ParentImg = proto.String("../pre1")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "pre2.log"))
		t.Fatalf("the second PRE_DUMP: %v", resp)
	}
	if log := readString(filepath.Join(work, "pre2.log")); !strings.Contains(log, "unchanged since "+dir("pre1")) {
		t.Errorf("the second pre-dump did not use the first's tracking:\n%s", clip(log, 2000))
	}
	o = opts("bad", "bad.log")
	o.ParentImg = proto.String("/elsewhere")
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_PRE_DUMP.Enum(), Opts: o}, nil)
	wantFailure(t, resp, "pre-dump", "as a sibling (../DIR)")
	c.finish(0)
	w.assertRunningUntouched("after the PRE_DUMPs")

	c = startSwrk(t, "", 3)
	o = opts("img", "dump.log")
	o.ParentImg, o.TrackMem = proto.String("../pre2"), proto.Bool(true)
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_DUMP.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "dump.log"))
		t.Fatalf("DUMP with parent_img: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.reapOriginal()
	log := readString(filepath.Join(work, "dump.log"))
	if !strings.Contains(log, "unchanged since "+dir("pre2")) || strings.Contains(log, "memory tracking lost") {
		t.Errorf("the dump did not use the pre-dump's tracking:\n%s", clip(log, 2000))
	}
	w.ImgDir = dir("img")
	c = startSwrk(t, "", 3)
	o = opts("img", "restore.log")
	o.Pid = nil
	resp, _ = c.call(&rpc.CriuReq{Type: rpc.CriuReqType_RESTORE.Enum(), Opts: o}, nil)
	if !resp.GetSuccess() {
		logFile(t, filepath.Join(work, "restore.log"))
		t.Fatalf("RESTORE of the chain: %s", resp.GetCrErrmsg())
	}
	c.finish(0)
	w.rst, w.detach = c.proc, true
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		w.logAll()
		t.Fatal(err)
	}
	w.Finish()
}
