package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// preDump runs `cryo pre-dump -t PID -D DIR -v4 -o pre.log EXTRA...` and
// fails the test if it does not succeed; it returns the log.
func preDump(t *testing.T, pid int, dir string, extra ...string) string {
	t.Helper()
	args := append([]string{"pre-dump", "-t", strconv.Itoa(pid), "-D", dir, "-v", "4", "-o", "pre.log"}, extra...)
	res := runCryo(t, args...)
	log := readString(filepath.Join(dir, "pre.log"))
	if res.ExitCode != 0 || res.TimedOut || res.Err != nil {
		t.Fatalf("%s\nlog:\n%s", res, clip(log, 8000))
	}
	return log
}

// incRound makes incmem rewrite one page in ten (SIGUSR1) and waits until
// it says round n is done.
func incRound(t *testing.T, w *Workload, n int) {
	t.Helper()
	if err := unix.Kill(w.Pid, unix.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	want := "INFO: round " + strconv.Itoa(n) + " done"
	deadline := time.Now().Add(bound(t, readyTimeout))
	for !strings.Contains(w.Output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("incmem did not finish round %d; output:\n%s", n, w.Output())
		}
		time.Sleep(pollInterval)
	}
}

// pagesBytes is the size of the pages images of a directory.
func pagesBytes(t *testing.T, dir string) int64 {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
	var n int64
	for _, f := range files {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		n += st.Size()
	}
	return n
}

// TestE2EPreDumpChain: two pre-dumps and a dump, each after incmem
// rewrote a tenth of its pages: the later images hold only what changed
// (pagemap in_parent for the rest, "parent" links to the previous
// directory), and the restore, reading through the chain, gives the
// process every page as it was at the dump (the workload checks them all).
func TestE2EPreDumpChain(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "incmem", linkDynamic))
	base := t.TempDir()
	d1, d2, d3 := filepath.Join(base, "d1"), filepath.Join(base, "d2"), filepath.Join(base, "d3")
	preDump(t, w.Pid, d1)
	incRound(t, w, 1)
	log := preDump(t, w.Pid, d2, "--prev-images-dir", "../d1")
	if !strings.Contains(log, "unchanged since") {
		t.Fatalf("the second pre-dump left nothing in its parent; log:\n%s", clip(log, 8000))
	}
	incRound(t, w, 2)
	if err := os.Mkdir(d3, 0o700); err != nil {
		t.Fatal(err)
	}
	w.ImgDir = d3
	w.Checkpoint("--prev-images-dir", "../d2", "--track-mem")
	if target, err := os.Readlink(filepath.Join(d3, "parent")); err != nil || target != "../d2" {
		t.Errorf("parent link of the dump: %q, %v; want ../d2", target, err)
	}
	full, inc2, inc3 := pagesBytes(t, d1), pagesBytes(t, d2), pagesBytes(t, d3)
	t.Logf("pages images: pre-dump %d bytes, second pre-dump %d, dump %d", full, inc2, inc3)
	// incmem rewrites 10% of 32 MiB a round; the rest of the process is
	// small: far less than half must have been copied again.
	if inc2*2 > full || inc3*2 > full {
		t.Errorf("the incremental images are not smaller: %d and %d bytes against %d", inc2, inc3, full)
	}
	w.Restore()
	w.Finish()
	if !strings.Contains(w.Output(), "INFO: 2 rounds") {
		t.Errorf("the restored process did not see both rounds; output:\n%s", w.Output())
	}
}

// TestE2EPreDumpLostTracker: the keeper that holds the write tracking
// between the pre-dump and the dump is killed; the dump says the tracking
// was lost, copies every page, and the images restore.
func TestE2EPreDumpLostTracker(t *testing.T) {
	requireCryo(t)
	w := startWorkload(t, workloadBin(t, "incmem", linkDynamic))
	base := t.TempDir()
	d1, d2 := filepath.Join(base, "d1"), filepath.Join(base, "d2")
	log := preDump(t, w.Pid, d1)
	m := regexp.MustCompile(`kept by process (\d+)`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("the pre-dump started no keeper; log:\n%s", clip(log, 8000))
	}
	keeper, _ := strconv.Atoi(m[1])
	if err := unix.Kill(keeper, unix.SIGKILL); err != nil {
		t.Fatalf("kill the keeper %d: %v", keeper, err)
	}
	if err := waitPidFree(keeper, bound(t, pidFreeTimeout)); err != nil {
		reapZombieChildren()
		if err := waitPidFree(keeper, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}
	incRound(t, w, 1)
	if err := os.Mkdir(d2, 0o700); err != nil {
		t.Fatal(err)
	}
	w.ImgDir = d2
	w.Checkpoint("--prev-images-dir", "../d1", "--track-mem")
	dlog := readString(filepath.Join(d2, "dump.log"))
	if !strings.Contains(dlog, "memory tracking lost") || strings.Contains(dlog, "unchanged since") {
		t.Fatalf("the dump did not fall back to a full copy; log:\n%s", clip(dlog, 8000))
	}
	if full, again := pagesBytes(t, d1), pagesBytes(t, d2); again < full {
		t.Errorf("the dump copied %d bytes, less than the pre-dump's %d: pages were taken from the parent", again, full)
	}
	w.Restore()
	w.Finish()
}
