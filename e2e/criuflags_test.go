package e2e

// CRIU's everyday flags (issue 11, item 17): -V, -W, -v0..-v4 and -vvvv,
// check --feature and --all, --link-remap, --skip-in-flight. An unknown
// flag stays a usage error.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestE2ECLICriuFlags: -V/--version print "Version:"; check --feature
// kcmp_epoll says it is supported, an unknown feature fails in one line,
// check --all lists CRIU's feature names; an unknown flag is a usage error
// (exit 2, one line); a workload dumped with -W DIR -o NAME -vvvv
// --link-remap --skip-in-flight and restored with -W DIR2 -o NAME -v0
// passes its checks, and each log and statistics file is in its work
// directory, not among the images.
func TestE2ECLICriuFlags(t *testing.T) {
	requireCryo(t)
	for _, v := range []string{"-V", "--version"} {
		res := runCryo(t, v)
		if res.ExitCode != 0 || !strings.HasPrefix(res.Stdout, "Version: ") {
			t.Errorf("cryo %s: %s; want exit 0 and \"Version: ...\"", v, res)
		}
	}
	if res := runCryo(t, "check", "--feature", "kcmp_epoll"); res.ExitCode != 0 || !strings.Contains(res.Stdout, "kcmp_epoll is supported") {
		t.Errorf("check --feature kcmp_epoll: %s", res)
	}
	res := runCryo(t, "check", "--feature", "no_such_feature")
	assertOneErrorLine(t, res, "unknown feature", "no_such_feature")
	if res := runCryo(t, "check", "--all"); res.ExitCode != 0 || !strings.Contains(res.Stdout, "kcmp_epoll") || !strings.Contains(res.Stdout, "Looks good.") {
		t.Errorf("check --all: %s", res)
	}
	for _, args := range [][]string{{"dump", "-t", "1", "-D", t.TempDir(), "--no-such-flag"}, {"restore", "-D", t.TempDir(), "--tcp-closed"}, {"dump", "-t", "1", "-D", t.TempDir(), "--feature", "mnt_id"}} {
		res := runCryo(t, args...)
		assertOneErrorLine(t, res)
		if res.ExitCode != 2 {
			t.Errorf("cryo %s: exit %d, want 2 (usage)", strings.Join(args, " "), res.ExitCode)
		}
	}

	bin := workloadBin(t, "fdkinds", linkDynamic)
	w := startWorkload(t, bin, "eventfd")
	work1, work2 := filepath.Join(t.TempDir(), "work-dump"), filepath.Join(t.TempDir(), "work-restore")
	w.Checkpoint("-W", work1, "-o", "cryo-dump.log", "-vvvv", "--link-remap", "--skip-in-flight")
	w.Restore("-W", work2, "-o", "cryo-restore.log", "-v0")
	w.Finish()
	for _, f := range []string{filepath.Join(work1, "cryo-dump.log"), filepath.Join(work1, "stats-dump"), filepath.Join(work2, "cryo-restore.log"), filepath.Join(work2, "stats-restore")} {
		st, err := os.Stat(f)
		if err != nil {
			t.Errorf("work directory: %v", err)
		} else if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no access for group and others", f, st.Mode())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(work1, "cryo-dump.log")); !strings.Contains(string(b), "dump of") {
		t.Errorf("-vvvv dump log says nothing:\n%s", b)
	}
	for _, f := range []string{"cryo-dump.log", "stats-dump", "cryo-restore.log", "stats-restore"} {
		if _, err := os.Stat(filepath.Join(w.ImgDir, f)); err == nil {
			t.Errorf("%s is among the images, want it in the work directory", f)
		}
	}
}

// TestE2ECLIActionScript: --action-script runs the script at each
// notification point with CRIU's environment (CRTOOLS_SCRIPT_ACTION,
// CRTOOLS_IMAGE_DIR, CRTOOLS_INIT_PID); a script that fails at post-dump
// fails the dump in one line and the tree runs on, then passes its checks
// after a dump and restore with a script that succeeds.
func TestE2ECLIActionScript(t *testing.T) {
	requireCryo(t)
	tmp := t.TempDir()
	record := filepath.Join(tmp, "actions")
	script := filepath.Join(tmp, "record.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho \"$CRTOOLS_SCRIPT_ACTION $CRTOOLS_INIT_PID $CRTOOLS_IMAGE_DIR\" >> "+record+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	failing := filepath.Join(tmp, "fail.sh")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\n[ \"$CRTOOLS_SCRIPT_ACTION\" = post-dump ] && exit 3\nexit 0\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	bin := workloadBin(t, "fdkinds", linkDynamic)
	w := startWorkload(t, bin, "eventfd")
	res := tryDump(t, w.Pid, t.TempDir(), "--action-script", failing)
	assertOneErrorLine(t, res, "action script", "post-dump")
	w.Checkpoint("--action-script", script)
	w.Restore("--action-script", script)
	w.Finish()
	b, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{fmt.Sprintf("post-dump %d %s", w.Pid, w.ImgDir), "pre-restore", fmt.Sprintf("post-restore %d %s", w.Pid, w.ImgDir)} {
		if !strings.Contains(got, want) {
			t.Errorf("the script's record lacks %q:\n%s", want, got)
		}
	}
}
