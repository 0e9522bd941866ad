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
	"golang.org/x/sys/unix"
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
	w := startSeccompAsUser(t, "errno")
	imgDir := usernsDir(t, 0o700)
	res := usernsRunCryoAs(t, testUserCred(), "dump", "-t", strconv.Itoa(w.Pid), "-D", imgDir)
	assertOneErrorLine(t, res, "process "+strconv.Itoa(w.Pid), "seccomp", "CAP_SYS_ADMIN")
	w.assertRunningUntouched("after the refused dump")
	w.Finish()
}

// TestE2ESeccompRootlessRestore: a filtered process of the test user's
// (in unshare -r -i, no_new_privs set), dumped by root and restored by the
// user, who cannot suspend seccomp: the filters go in after everything
// else of the thread, strict mode after the scratch memory is gone, and
// the restored process checks itself in its new pid namespace: the filter
// (TSYNC over threads too) and the strict-mode thread work as before.
func TestE2ESeccompRootlessRestore(t *testing.T) {
	requireCryo(t)
	for _, run := range []string{"errno", "tsync -t 3", "strict -t 2"} {
		args := strings.Fields(run)
		t.Run(args[0], func(t *testing.T) {
			w := startSeccompAsUser(t, args...)
			w.ImgDir = usernsDir(t, 0o700)
			dump(t, w.Pid, w.ImgDir, "-v", "4", "-o", "dump.log")
			w.reapOriginal()
			chownTree(t, w.ImgDir, testUID, testGID)
			old := w.Pid
			w.rst, w.rstOut, w.rstErr = usernsRestoreAs(t, testUserCred(), w.ImgDir)
			// The restored process: at its old PID inside a new pid
			// namespace, running and untraced.
			w.Pid = -1
			for deadline := time.Now().Add(bound(t, restoreReadyTimeout)); w.Pid < 0; time.Sleep(pollInterval) {
				if w.rst.Exited() || time.Now().After(deadline) {
					w.logAll()
					t.Fatalf("no restored process is pid %d inside its pid namespace (cryo restore exited: %v)", old, w.rst.Exited())
				}
				for _, pid := range allPids() {
					st := procStatus("/proc/" + strconv.Itoa(pid) + "/status")
					if exe, _ := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe"); exe == w.Bin && pid != old && nsInnerPid(pid) == old &&
						st["TracerPid"] == "0" && st["State"] != "" && strings.ContainsAny(st["State"][:1], "RS") {
						w.Pid = pid
					}
				}
			}
			if err := unix.Kill(w.Pid, unix.SIGTERM); err != nil {
				t.Fatal(err)
			}
			if !w.rst.Wait(bound(t, finishTimeout)) {
				w.logAll()
				t.Fatalf("cryo restore did not exit within %v of the SIGTERM to the restored process %d", finishTimeout, w.Pid)
			}
			w.verdict(w.rst.ExitCode(), true)
		})
	}
}

// startSeccompAsUser starts testdata/seccomp.c with args as the test user,
// root in a user namespace of its own (unshare -r -i), and waits for READY.
func startSeccompAsUser(t *testing.T, args ...string) *Workload {
	t.Helper()
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	bin, err := filepath.EvalSymlinks(workloadBin(t, "seccomp", linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	requireUserCanExec(t, bin)
	w := &Workload{t: t, Name: "seccomp", Bin: bin, Args: args, Dir: usernsDir(t, 0o755)}
	w.Out = filepath.Join(filepath.Dir(w.Dir), "output.txt")
	argv := append(slices.Clone(rootlessOwnUID.prefix), "env", "--chdir="+w.Dir, bin)
	cmd := userCommand(t, filepath.Dir(w.Dir), w.Out, append(argv, args...)...)
	t.Cleanup(w.cleanup)
	if w.orig, err = startBg(t, "workload seccomp", cmd); err != nil {
		t.Fatal(err)
	}
	w.Pid = w.orig.Pid() // unshare execs the workload
	deadline := time.Now().Add(bound(t, readyTimeout))
	for {
		if m := readyRe.FindStringSubmatch(w.Output()); m != nil {
			for _, s := range strings.Split(m[2], ",") {
				tid, _ := strconv.Atoi(s)
				w.Tids = append(w.Tids, tid)
			}
			return w
		}
		if w.orig.Exited() || time.Now().After(deadline) {
			t.Fatalf("seccomp did not print READY (exited %v); output:\n%s", w.orig.Exited(), clip(w.Output(), 8000))
		}
		time.Sleep(pollInterval)
	}
}

// TestE2ESeccompCheck: check --feature seccomp_suspend and seccomp_filters
// (CRIU's names) pass as root, which installs a filter in a stub and reads
// it back, and fail for a normal user, whom the kernel refuses both.
func TestE2ESeccompCheck(t *testing.T) {
	requireCryo(t)
	res := runCryo(t, "check", "--feature", "seccomp_suspend", "--feature", "seccomp_filters")
	if res.ExitCode != 0 || !strings.Contains(res.Stdout, "seccomp_suspend is supported") || !strings.Contains(res.Stdout, "seccomp_filters is supported") {
		t.Errorf("check as root: %s", res)
	}
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	for _, f := range []string{"seccomp_suspend", "seccomp_filters"} {
		res := usernsRunCryoAs(t, testUserCred(), "check", "--feature", f)
		if !strings.Contains(res.Stdout, f+" is not supported") {
			t.Errorf("check --feature %s as a normal user: %s", f, res)
		}
		assertOneErrorLine(t, res, f)
	}
}

// TestE2ESeccompFault: cryo killed (SIGKILL, a -tags cryofault build) in
// the middle of dumping a thread whose filter kills the process at the
// very calls cryo injects (mmap, munmap, prctl, ...). Suspension dies
// with cryo, so the thread is under its filter again at once; it finds its
// own state again through the guard's signal frame (rt_sigreturn, which
// the filter allows) whenever cryo dies between two injected calls, before
// the registers point at one or after it returned: at the first and the
// last call of the dump, and while its memory is copied. The tree comes
// through running and untraced, and still filtered (its own checks). The
// instants in between, while such a call is set up or running, are the
// one gap (docs/seccomp.md): the filter would kill the process there.
func TestE2ESeccompFault(t *testing.T) {
	requireCryo(t)
	bin := workloadBin(t, "seccomp", linkDynamic)
	ft := &faultTarget{t: t, w: startWorkload(t, bin, "forbid")}
	diagnose(t, ft.w.Pid)
	steps := traceSteps(t, ft.w.Pid)
	ft.intact("after the traced dump")
	safe := map[string]bool{
		"inject: frame written": true, "inject: syscall exited": true, "inject: call done": true,
		"checkpoint: scratch mapped": true, "memory: copy": true, "memory: copied": true,
		"checkpoint: scratch unmapped": true, "disarm: mask restored": true,
	}
	// The safe steps of the first injected call (the scratch mmap), of the
	// last one (its munmap) and the others named once.
	var pts []int
	seen := map[string]bool{}
	lastCall := 0
	for i, s := range steps {
		if safe[s] && !seen[s] {
			seen[s] = true
			pts = append(pts, i+1)
		}
		if s == "inject: frame written" {
			lastCall = i
		}
	}
	for i := lastCall; i < len(steps) && i < lastCall+6; i++ {
		if safe[steps[i]] && !slices.Contains(pts, i+1) {
			pts = append(pts, i+1)
		}
	}
	if len(pts) < 8 {
		t.Fatalf("only %d kill points found in the %d steps %v", len(pts), len(steps), steps)
	}
	t.Logf("%d steps; kill points %v", len(steps), pts)
	for i, n := range pts {
		if i > 0 && i%faultBatch == 0 {
			ft.finish()
			ft = &faultTarget{t: t, w: startWorkload(t, bin, "forbid")}
		}
		faultKillAt(t, ft, n, "KILL", []string{"--leave-running"}, "#"+strconv.Itoa(n)+" "+steps[n-1])
	}
	ft.finish()
}
