package e2e

// CRIU's everyday flags (issue 11, item 17): -V, -W, -v0..-v4 and -vvvv,
// check --feature and --all, --link-remap, --skip-in-flight. An unknown
// flag stays a usage error.

import (
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
