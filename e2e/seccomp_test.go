package e2e

// seccomp: threads under filters or strict mode dumped and restored; the
// restored processes check themselves that the same filters are back, in
// the same order, shared as they were. See docs/seccomp.md.

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	seccompimg "github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"github.com/cryo-cr/cryo/internal/image"
)

// TestE2ESeccomp: each mode of testdata/seccomp.c (see there) dumped and
// restored by root, which suspends seccomp in the threads while it works
// on them: a filter giving EPERM, one that kills the process at the calls
// cryo injects, two stacked filters, a TSYNC filter over threads,
// different filters per thread, a thread in strict mode, and a filter
// with SECCOMP_FILTER_FLAG_LOG (checked in a second dump's image).
func TestE2ESeccomp(t *testing.T) {
	requireCryo(t)
	for _, run := range []string{"errno", "forbid", "stack", "tsync -t 3", "perthread -t 3", "strict -t 2", "log"} {
		args := strings.Fields(run)
		t.Run(args[0], func(t *testing.T) {
			w := startWorkload(t, workloadBin(t, "seccomp", linkDynamic), args...)
			w.Checkpoint()
			checkSeccompImage(t, w.ImgDir, args[0], len(w.Tids))
			w.Restore()
			if args[0] == "log" || args[0] == "tsync" {
				// What came back, seen by a second dump.
				again := t.TempDir()
				res := runCryo(t, "dump", "-t", strconv.Itoa(w.Pid), "-D", again, "--leave-running", "-v", "4", "-o", "dump.log")
				if res.ExitCode != 0 {
					w.logAll()
					t.Fatalf("second dump: %s", res)
				}
				checkSeccompImage(t, again, args[0], len(w.Tids))
			}
			w.Finish()
		})
	}
}

// checkSeccompImage checks the seccomp state a dump of mode wrote: which
// threads have which mode, how many distinct filters, and their flags.
func checkSeccompImage(t *testing.T, dir, mode string, threads int) {
	t.Helper()
	d, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := os.ReadDir(dir)
	var cores []*core.CoreEntry
	for _, e := range pid {
		if strings.HasPrefix(e.Name(), "core-") {
			var c core.CoreEntry
			if err := d.ReadOne(e.Name(), "CORE", &c); err != nil {
				t.Fatal(err)
			}
			cores = append(cores, &c)
		}
	}
	if len(cores) != threads {
		t.Fatalf("%d core images, want %d", len(cores), threads)
	}
	var e seccompimg.SeccompEntry
	err = d.ReadOne("seccomp.img", "SECCOMP", &e)
	if mode == "strict" {
		if err == nil {
			t.Errorf("strict mode only, but the dump wrote seccomp.img")
		}
		var modes []core.SeccompMode
		for _, c := range cores {
			modes = append(modes, c.GetThreadCore().GetSeccompMode())
		}
		if !slices.Contains(modes, core.SeccompMode_strict) || !slices.Contains(modes, core.SeccompMode_disabled) {
			t.Errorf("thread modes %v, want one strict and one disabled", modes)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	fs := e.GetSeccompFilters()
	want := map[string]int{"errno": 1, "forbid": 1, "stack": 2, "tsync": 1, "perthread": 2, "log": 1}[mode]
	if len(fs) != want {
		t.Errorf("%d filters in seccomp.img, want %d (threads sharing a filter share its entry)", len(fs), want)
	}
	filtered := 0
	for _, c := range cores {
		if c.GetThreadCore().GetSeccompMode() == core.SeccompMode_filter {
			filtered++
		}
	}
	if wantFiltered := map[bool]int{true: 2, false: threads}[mode == "perthread"]; filtered != wantFiltered {
		t.Errorf("%d threads in filter mode, want %d", filtered, wantFiltered)
	}
	if mode == "stack" && (fs[0].Prev != nil || fs[1].GetPrev() != 0) {
		t.Errorf("stacked filters: prev %v and %v, want none and 0", fs[0].Prev, fs[1].Prev)
	}
	for i, f := range fs {
		wantFlags := map[bool]uint32{true: 2, false: 0}[mode == "log"] // SECCOMP_FILTER_FLAG_LOG
		if f.GetFlags() != wantFlags {
			t.Errorf("filter %d: flags %#x, want %#x", i, f.GetFlags(), wantFlags)
		}
	}
}

// TestE2ESeccompRootless: a normal user cannot read seccomp filters
// (PTRACE_SECCOMP_GET_FILTER needs CAP_SYS_ADMIN in the initial user
// namespace) nor suspend them: its dump of a filtered process is refused
// in one line naming the process, before any call is injected, and the
// process runs on untouched, still filtered (its own checks).
func TestE2ESeccompRootless(t *testing.T) {
	requireCryo(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	bin, err := filepath.EvalSymlinks(workloadBin(t, "seccomp", linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	requireUserCanExec(t, bin)
	w := &Workload{t: t, Name: "seccomp", Bin: bin, Args: []string{"errno"}, Dir: usernsDir(t, 0o755)}
	w.Out = filepath.Join(filepath.Dir(w.Dir), "output.txt")
	argv := append(slices.Clone(rootlessOwnUID.prefix), "env", "--chdir="+w.Dir, bin, "errno")
	cmd := userCommand(t, filepath.Dir(w.Dir), w.Out, argv...)
	t.Cleanup(w.cleanup)
	if w.orig, err = startBg(t, "workload seccomp", cmd); err != nil {
		t.Fatal(err)
	}
	w.Pid = w.orig.Pid() // unshare execs the workload
	w.Tids = []int{w.Pid}
	for deadline := time.Now().Add(bound(t, readyTimeout)); readyRe.FindString(w.Output()) == ""; {
		if w.orig.Exited() || time.Now().After(deadline) {
			t.Fatalf("seccomp did not print READY (exited %v); output:\n%s", w.orig.Exited(), clip(w.Output(), 8000))
		}
		time.Sleep(pollInterval)
	}
	imgDir := usernsDir(t, 0o700)
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(w.Pid), "-D", imgDir)
	assertOneErrorLine(t, res, "process "+strconv.Itoa(w.Pid), "seccomp", "CAP_SYS_ADMIN")
	w.assertRunningUntouched("after the refused dump")
	w.Finish()
}
