package e2e

// The fault-injection suite: cryo is killed (SIGKILL) or interrupted
// (SIGTERM, SIGINT, SIGHUP) in the middle of a dump, at chosen steps and at
// random ones, and the tree must come through as it was: running, nothing
// traced or stopped (or stopped, if it was), and, once sent SIGTERM, passing
// its own checks (registers, blocked calls of every restart kind, memory,
// the tree's shape).
//
// Deterministic kill points use a cryo built with -tags cryofault (see
// internal/fault): CRYO_FAULT_STEP=N makes it send itself
// CRYO_FAULT_SIGNAL at its Nth step, CRYO_FAULT_TRACE lists the steps. The
// release binary has no such hook. Random kill points send SIGKILL to the
// normal cryo after a random delay.
//
// To keep the suite short, several kill points hit the same workload one
// after the other (a batch): after each, the tree must be running
// untouched; at the end of the batch it must pass its checks.

import (
	"bufio"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// faultBatch is how many kill points hit one workload before its checks.
const faultBatch = 6

var (
	faultOnce sync.Once
	faultPath string
	faultErr  error
)

// faultBin builds cryo with the fault hook (once per run).
func faultBin(t *testing.T) string {
	t.Helper()
	faultOnce.Do(func() {
		faultPath = filepath.Join(binDir, "cryo-fault")
		cmd := exec.Command("go", "build", "-tags", "cryofault", "-o", faultPath, "./cmd/cryo")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			faultErr = fmt.Errorf("go build -tags cryofault: %v\n%s", err, out)
		}
	})
	if faultErr != nil {
		t.Fatal(faultErr)
	}
	return faultPath
}

// faultTally counts the kill points the trees came through (a lost tree
// fails its subtest).
type faultTally struct {
	mu     sync.Mutex
	points int
}

func (f *faultTally) add(points int) {
	f.mu.Lock()
	f.points += points
	f.mu.Unlock()
}

// faultRun runs bin (cryo) with args and env, bounded; a SIGKILL after
// delay if delay >= 0 (a random kill point, not a synchronisation).
func faultRun(t *testing.T, bin string, env []string, delay time.Duration, args ...string) cryoResult {
	t.Helper()
	dir := t.TempDir()
	so, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer so.Close()
	se, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer se.Close()
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = so, se
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	res := cryoResult{Args: args}
	p, err := startBg(t, "cryo "+args[0], cmd)
	if err != nil {
		res.Err, res.ExitCode = err, -1
		return res
	}
	if delay >= 0 {
		select {
		case <-p.done:
		case <-time.After(delay):
			_ = p.Cmd.Process.Signal(syscall.SIGKILL)
		}
	}
	if !p.Wait(bound(t, cryoTimeout)) {
		res.TimedOut = true
		hung()
		p.kill(t)
	}
	res.ExitCode = p.ExitCode()
	res.Stdout, res.Stderr = readString(so.Name()), readString(se.Name())
	return res
}

// faultTarget is a workload under test: one process or a tree.
type faultTarget struct {
	t       *testing.T
	w       *Workload
	tr      *Tree
	stopped bool // SIGSTOPped before the dumps: must stay in T
	// sleepers: every thread of the workload waits in a call. intact then
	// also waits until each is asleep again: a thread that cryo's death
	// sent back through its signal frame re-enters its call, and a signal
	// handled before it did would not interrupt it (see
	// docs/reliability.md); the checks' SIGTERM must come after.
	sleepers bool
}

// intact fails the test unless the target runs (or stays stopped) as it
// was, untraced.
func (ft *faultTarget) intact(when string) {
	ft.t.Helper()
	if ft.stopped {
		ft.waitState(when, 'T')
		return
	}
	if ft.tr != nil {
		ft.tr.waitMatches(when)
		return
	}
	// Detach is done when cryo is gone; the state may still read t/T for
	// a moment while the kernel lets the threads go: wait for the
	// condition, bounded.
	deadline := time.Now().Add(bound(ft.t, 5*time.Second))
	for ft.w.notRunningReason() != "" && !ft.w.orig.Exited() && time.Now().Before(deadline) {
		time.Sleep(pollInterval)
	}
	ft.w.assertRunningUntouched(when)
	if ft.sleepers {
		ft.waitState(when, 'S')
	}
}

// waitState waits until every thread of the target is in state c (and
// untraced).
func (ft *faultTarget) waitState(when string, c byte) {
	ft.t.Helper()
	deadline := time.Now().Add(bound(ft.t, 5*time.Second))
	why := ""
	stable := 0
	for time.Now().Before(deadline) {
		why = ""
		for _, tid := range procTids(ft.w.Pid) {
			st := procStatus(fmt.Sprintf("/proc/%d/task/%d/status", ft.w.Pid, tid))
			if st["TracerPid"] != "0" {
				why = fmt.Sprintf("thread %d is traced by %s", tid, st["TracerPid"])
			} else if !strings.HasPrefix(st["State"], string(c)) {
				why = fmt.Sprintf("thread %d is in state %q, want %c", tid, st["State"], c)
			}
		}
		if why == "" && !ft.w.orig.Exited() {
			if stable++; stable >= 2 {
				return
			}
		} else {
			stable = 0
		}
		time.Sleep(pollInterval)
	}
	ft.t.Fatalf("%s: %s (exited: %v)", when, why, ft.w.orig.Exited())
}

// finish ends the target and judges its own checks.
func (ft *faultTarget) finish() {
	ft.t.Helper()
	if ft.stopped {
		_ = unix.Kill(ft.w.Pid, unix.SIGCONT)
		ft.stopped = false
		ft.sleepers = true
		ft.intact("after SIGCONT")
	}
	if ft.tr != nil {
		ft.tr.Finish()
	} else {
		ft.w.Finish()
	}
}

// faultConfig is one kind of target.
type faultConfig struct {
	name  string
	start func(t *testing.T) *faultTarget
}

// diagnose registers a cleanup that, if the test failed, logs what each
// thread of pid was doing (state, masks, pending signals, current call).
func diagnose(t *testing.T, pid int) {
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, tid := range procTids(pid) {
			st := procStatus(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
			sc, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid))
			t.Logf("thread %d: state %s SigBlk %s SigPnd %s ShdPnd %s syscall %s", tid, st["State"], st["SigBlk"], st["SigPnd"], st["ShdPnd"], strings.TrimSpace(string(sc)))
		}
	})
}

func faultConfigs(t *testing.T) []faultConfig {
	mode := "sse"
	if cpuFlags(t)["avx512f"] {
		mode = "avx512"
	} else if cpuFlags(t)["avx"] {
		mode = "avx"
	}
	return []faultConfig{
		// One process: every register class must survive (the signal
		// frame carries the XSAVE area).
		{"process", func(t *testing.T) *faultTarget {
			ft := &faultTarget{t: t, w: startWorkload(t, workloadBin(t, "regs", linkDynamic), "-t", "1", mode)}
			diagnose(t, ft.w.Pid)
			return ft
		}},
		// Threads blocked in nanosleep (ERESTART_RESTARTBLOCK),
		// FUTEX_WAIT (ERESTARTSYS) and sigsuspend (ERESTARTNOHAND).
		{"threads", func(t *testing.T) *faultTarget {
			ft := &faultTarget{t: t, w: startWorkload(t, workloadBin(t, "blocked", linkDynamic), "-t", "4"), sleepers: true}
			diagnose(t, ft.w.Pid)
			return ft
		}},
		{"tree", func(t *testing.T) *faultTarget {
			tr := startTree(t, workloadBin(t, "tree_basic", linkDynamic))
			return &faultTarget{t: t, w: tr.w, tr: tr}
		}},
	}
}

// noSnapshot in the environment of a traced dump --leave-running gives
// the steps of a dump that kills the tree, up to "dump: images complete":
// only a dump that leaves the tree running copies its memory from a
// snapshot (docs/speed.md), whose injected calls are steps too.
const noSnapshot = "CRYO_SNAPSHOT=off"

// traceSteps runs a whole dump --leave-running of pid with the fault
// binary (env added to its environment) and returns the names of its
// steps, in order.
func traceSteps(t *testing.T, pid int, env ...string) []string {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "trace")
	dir := filepath.Join(t.TempDir(), "images")
	res := faultRun(t, faultBin(t), append([]string{"CRYO_FAULT_TRACE=" + trace}, env...), -1,
		"dump", "-t", strconv.Itoa(pid), "-D", dir, "--leave-running")
	if res.ExitCode != 0 {
		t.Fatalf("traced dump failed: %s", res)
	}
	f, err := os.Open(trace)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var steps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if _, name, ok := strings.Cut(sc.Text(), " "); ok {
			steps = append(steps, name)
		}
	}
	return steps
}

// pickPoints returns the step numbers (1-based) to kill at: the first
// occurrence of every distinct step, the steps of the first and the last
// injected call of the run, and nRandom random ones; steps after last
// (1-based, inclusive) are left out.
func pickPoints(rng *rand.Rand, steps []string, last, nRandom int) []int {
	seen := map[string]bool{}
	var pts []int
	add := func(n int) {
		if n >= 1 && n <= last && !seen["#"+strconv.Itoa(n)] {
			seen["#"+strconv.Itoa(n)] = true
			pts = append(pts, n)
		}
	}
	for i, s := range steps {
		// One point per kind of step: "images: write core-123.img" and
		// "images: write core-124.img" are the same kind.
		kind := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, s)
		if !seen[kind] {
			seen[kind] = true
			add(i + 1)
		}
	}
	for i := len(steps) - 1; i >= 0; i-- {
		if strings.HasPrefix(steps[i], "inject:") {
			for j := i; j >= 0 && j > i-4; j-- {
				add(j + 1)
			}
			break
		}
	}
	for k := 0; k < nRandom; k++ {
		add(1 + rng.Intn(last))
	}
	return pts
}

func indexOf(steps []string, name string) int {
	for i, s := range steps {
		if s == name {
			return i
		}
	}
	return -1
}

// TestE2EFault: SIGKILL at chosen and random steps of a dump, for one
// process, a multi-threaded one with threads blocked in calls of every
// restart kind, and a tree, with and without --leave-running; SIGTERM,
// SIGINT and SIGHUP at chosen steps (the dump rolls back and says it was
// interrupted); a stopped target stays stopped; random SIGKILLs from
// outside with the release binary; a restore interrupted by SIGTERM leaves
// nothing behind.
func TestE2EFault(t *testing.T) {
	requireCryo(t)
	seed := time.Now().UnixNano()
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewSource(seed))
	tally := &faultTally{}
	for _, cfg := range faultConfigs(t) {
		for _, leave := range []bool{true, false} {
			name := cfg.name + "/leave-running"
			if !leave {
				name = cfg.name + "/kill"
			}
			t.Run(name, func(t *testing.T) { faultKillPoints(t, cfg, leave, rng, tally) })
		}
	}
	t.Run("stopped", func(t *testing.T) { faultStopped(t, rng, tally) })
	t.Run("signals", func(t *testing.T) { faultSignals(t, rng, tally) })
	t.Run("random-outside", func(t *testing.T) { faultRandomOutside(t, rng, tally) })
	t.Run("restore-interrupted", func(t *testing.T) { faultRestoreInterrupted(t, rng) })
	tally.mu.Lock()
	defer tally.mu.Unlock()
	if t.Failed() {
		t.Logf("FAULT SUMMARY: %d kill points passed, and a tree was lost or a check failed (see above)", tally.points)
		return
	}
	t.Logf("FAULT SUMMARY: %d kill points, 0 trees lost", tally.points)
}

// faultKillPoints kills the fault binary with SIGKILL at the chosen and
// some random steps of a dump of cfg's target. Up to "dump: images
// complete" a dump does the same with and without --leave-running: without
// it, only the steps around the kill and a few random ones are taken.
func faultKillPoints(t *testing.T, cfg faultConfig, leave bool, rng *rand.Rand, tally *faultTally) {
	ft := cfg.start(t)
	var steps []string
	if leave {
		steps = traceSteps(t, ft.w.Pid)
	} else {
		steps = traceSteps(t, ft.w.Pid, noSnapshot)
	}
	ft.intact("after the traced dump")
	var pts []int
	if leave {
		pts = pickPoints(rng, steps, len(steps), 3)
	} else {
		// "kill: start": the tree is intact yet. "kill: done" is
		// checked by restoring the images (faultKillDone).
		done := indexOf(steps, "dump: images complete") + 1
		pts = []int{done, done + 1}
		for k := 0; k < 3; k++ {
			pts = append(pts, 1+rng.Intn(done))
		}
	}
	t.Logf("%d steps; kill points %v", len(steps), pts)
	extra := []string{}
	if leave {
		extra = append(extra, "--leave-running")
	}
	for i, n := range pts {
		if i > 0 && i%faultBatch == 0 {
			ft.finish()
			ft = cfg.start(t)
		}
		name := "#" + strconv.Itoa(n)
		if n <= len(steps) {
			name += " " + steps[n-1]
		}
		faultKillAt(t, ft, n, "KILL", extra, name)
	}
	ft.finish()
	tally.add(len(pts))
	if !leave && cfg.name != "tree" {
		faultKillDone(t, cfg, tally)
	}
}

// faultKillAt runs the fault binary on ft with CRYO_FAULT_STEP=n and
// checks the tree afterwards.
func faultKillAt(t *testing.T, ft *faultTarget, n int, sig string, extra []string, name string) cryoResult {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "images")
	args := append([]string{"dump", "-t", strconv.Itoa(ft.w.Pid), "-D", dir, "-v", "4", "-o", "dump.log"}, extra...)
	res := faultRun(t, faultBin(t), []string{fmt.Sprintf("CRYO_FAULT_STEP=%d", n), "CRYO_FAULT_SIGNAL=" + sig}, -1, args...)
	if res.TimedOut {
		t.Fatalf("kill point %s: cryo did not stop: %s", name, res)
	}
	if sig == "KILL" && res.ExitCode != 128+int(syscall.SIGKILL) {
		t.Fatalf("kill point %s: cryo did not die of SIGKILL at the step: %s", name, res)
	}
	ft.intact("after SIG" + sig + " at step " + name)
	return res
}

// faultKillDone: without --leave-running, cryo killed right after it
// killed the process: the images are whole and restore it.
func faultKillDone(t *testing.T, cfg faultConfig, tally *faultTally) {
	t.Run("kill-done", func(t *testing.T) {
		ft := cfg.start(t)
		steps := traceSteps(t, ft.w.Pid, noSnapshot)
		ft.intact("after the traced dump")
		n := indexOf(steps, "dump: images complete") + 3 // "kill: done"
		ft.w.ImgDir = filepath.Join(t.TempDir(), "images")
		args := []string{"dump", "-t", strconv.Itoa(ft.w.Pid), "-D", ft.w.ImgDir, "-v", "4", "-o", "dump.log"}
		res := faultRun(t, faultBin(t), []string{fmt.Sprintf("CRYO_FAULT_STEP=%d", n)}, -1, args...)
		if res.ExitCode != 128+int(syscall.SIGKILL) {
			t.Fatalf("cryo did not die of SIGKILL at step %d: %s", n, res)
		}
		ft.w.reapOriginal()
		ft.w.Restore()
		ft.w.Finish()
		tally.add(1)
	})
}

// faultStopped: a process stopped (T) before the dump stays stopped after
// cryo dies at any step, and runs on intact after SIGCONT.
func faultStopped(t *testing.T, rng *rand.Rand, tally *faultTally) {
	start := func() *faultTarget {
		ft := &faultTarget{t: t, w: startWorkload(t, workloadBin(t, "blocked", linkDynamic), "-t", "4")}
		diagnose(t, ft.w.Pid)
		_ = unix.Kill(ft.w.Pid, unix.SIGSTOP)
		ft.stopped = true
		ft.waitState("after SIGSTOP", 'T')
		return ft
	}
	ft := start()
	steps := traceSteps(t, ft.w.Pid)
	ft.intact("after the traced dump")
	pts := pickPoints(rng, steps, len(steps), 3)
	if len(pts) > 2*faultBatch {
		rng.Shuffle(len(pts), func(i, j int) { pts[i], pts[j] = pts[j], pts[i] })
		pts = pts[:2*faultBatch]
	}
	for i, n := range pts {
		if i > 0 && i%faultBatch == 0 {
			ft.finish()
			ft = start()
		}
		faultKillAt(t, ft, n, "KILL", []string{"--leave-running"}, fmt.Sprintf("#%d %s", n, steps[n-1]))
	}
	ft.finish()
	tally.add(len(pts))
}

// faultSignals: SIGTERM, SIGINT, SIGHUP and SIGPIPE at chosen steps: cryo rolls
// back, exits non-zero with one line saying it was interrupted, writes no
// inventory, and the tree runs on as it was.
func faultSignals(t *testing.T, rng *rand.Rand, tally *faultTally) {
	for _, cfg := range faultConfigs(t) {
		t.Run(cfg.name, func(t *testing.T) {
			ft := cfg.start(t)
			// Steps with and without --leave-running (see noSnapshot).
			traces := [][]string{traceSteps(t, ft.w.Pid), traceSteps(t, ft.w.Pid, noSnapshot)}
			ft.intact("after the traced dumps")
			var pts []int
			sigs := []string{"TERM", "INT", "HUP", "PIPE"}
			for i, step := range []string{"inject: syscall entered", "memory: copy", "images: tree"} {
				for j, leave := range []bool{true, false} {
					steps := traces[j]
					n := indexOf(steps, step) + 1
					if n == 0 {
						continue
					}
					pts = append(pts, n)
					sig := sigs[(2*i+j)%len(sigs)]
					extra := []string{}
					if leave {
						extra = append(extra, "--leave-running")
					}
					name := fmt.Sprintf("#%d %s", n, steps[n-1])
					res := faultKillAt(t, ft, n, sig, extra, name)
					if res.ExitCode == 0 || !strings.Contains(res.Stderr, "interrupted") || strings.Count(strings.TrimSpace(res.Stderr), "\n") != 0 {
						t.Fatalf("SIG%s at step %s: want one line saying cryo was interrupted and a non-zero exit: %s", sig, name, res)
					}
				}
			}
			// The release binary has no hook: the variables do nothing.
			dir := filepath.Join(t.TempDir(), "images")
			res := faultRun(t, cryoBin, []string{"CRYO_FAULT_STEP=1", "CRYO_FAULT_SIGNAL=KILL"}, -1,
				"dump", "-t", strconv.Itoa(ft.w.Pid), "-D", dir, "--leave-running")
			if res.ExitCode != 0 {
				t.Fatalf("the release binary obeyed CRYO_FAULT_STEP: %s", res)
			}
			ft.intact("after a dump by the release binary")
			ft.finish()
			tally.add(len(pts))
		})
	}
}

// faultRandomOutside: SIGKILL sent to the release binary after a random
// delay within the length of a whole dump.
func faultRandomOutside(t *testing.T, rng *rand.Rand, tally *faultTally) {
	for _, cfg := range faultConfigs(t) {
		t.Run(cfg.name, func(t *testing.T) {
			ft := cfg.start(t)
			dir := filepath.Join(t.TempDir(), "images")
			t0 := time.Now()
			res := runCryo(t, "dump", "-t", strconv.Itoa(ft.w.Pid), "-D", dir, "--leave-running")
			whole := time.Since(t0)
			if res.ExitCode != 0 {
				t.Fatalf("dump --leave-running: %s", res)
			}
			ft.intact("after dump --leave-running")
			var delays []string
			for i := 0; i < faultBatch; i++ {
				d := time.Duration(rng.Int63n(int64(whole)))
				delays = append(delays, d.Round(time.Millisecond).String())
				dir := filepath.Join(t.TempDir(), "images")
				faultRun(t, cryoBin, nil, d, "dump", "-t", strconv.Itoa(ft.w.Pid), "-D", dir, "--leave-running")
				ft.intact(fmt.Sprintf("after SIGKILL %v into a dump", d))
			}
			t.Logf("a whole dump took %v; killed after %v", whole, delays)
			ft.finish()
			tally.add(faultBatch)
		})
	}
}

// faultRestoreInterrupted: SIGTERM (and SIGINT, SIGHUP) to cryo restore at
// each of its steps: it says it was interrupted, exits non-zero and leaves
// nothing (no process at the tree's PID); SIGKILL at each step leaves
// nothing either; the images restore afterwards and the process passes.
func faultRestoreInterrupted(t *testing.T, rng *rand.Rand) {
	w := startWorkload(t, workloadBin(t, "threads", linkDynamic), "-t", "4")
	w.Checkpoint()
	trace := traceRestore(t, w)
	n := countLines(trace)
	if n == 0 {
		t.Fatalf("the restore marked no step")
	}
	sigs := []string{"TERM", "INT", "HUP", "KILL"}
	for step := 1; step <= n; step++ {
		for _, sig := range []string{sigs[rng.Intn(3)], "KILL"} {
			res := faultRun(t, faultBin(t), []string{fmt.Sprintf("CRYO_FAULT_STEP=%d", step), "CRYO_FAULT_SIGNAL=" + sig}, -1,
				"restore", "-D", w.ImgDir, "-d", "-v", "4", "-o", "restore.log")
			msg := strings.TrimSpace(res.Stderr)
			switch {
			case sig == "KILL" && res.ExitCode != 128+int(syscall.SIGKILL):
				t.Fatalf("SIGKILL at restore step %d: cryo did not die of it: %s", step, res)
			case sig != "KILL" && (res.ExitCode == 0 || !strings.Contains(msg, "interrupted") || strings.Contains(msg, "\n")):
				t.Fatalf("SIG%s at restore step %d: want one line saying it was interrupted and a non-zero exit: %s", sig, step, res)
			}
			if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
				t.Fatalf("SIG%s at restore step %d: %v", sig, step, err)
			}
			t.Logf("SIG%s at restore step %d: exit %d %s", sig, step, res.ExitCode, msg)
		}
	}
	w.detach = false
	w.Restore()
	w.Finish()
}

// traceRestore restores w's images whole, listing the restore's steps
// into the trace file it returns, then kills the restored tree and waits
// until its PID is free, for the kill points to restore again.
func traceRestore(t *testing.T, w *Workload) string {
	t.Helper()
	trace := filepath.Join(t.TempDir(), "trace")
	res := faultRun(t, faultBin(t), []string{"CRYO_FAULT_TRACE=" + trace}, -1, "restore", "-D", w.ImgDir, "-d")
	if res.ExitCode != 0 {
		t.Fatalf("traced restore: %s", res)
	}
	w.detach = true
	if err := w.waitRestored(bound(t, restoreReadyTimeout)); err != nil {
		t.Fatal(err)
	}
	_ = unix.Kill(w.Pid, unix.SIGKILL)
	if _, err := waitForeign(w.Pid, killTimeout); err != nil {
		t.Fatal(err)
	}
	if err := waitPidFree(w.Pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
	return trace
}
