package e2e

// Process trees: `cryo dump -t ROOT` dumps ROOT and all its descendants;
// `cryo restore` recreates them all at their PIDs, with their parents,
// process groups and sessions, zombies, shared files and pipes.
//
// Tree workloads (testdata/tree_*.c) extend the workload protocol: every
// process prints one line
//
//	TREE pid=P ppid=Q pgid=G sid=S role=NAME
//
// before the root prints READY (only once every process is set up). The
// harness compares the TREE lines with /proc at READY (a mismatch is a
// workload bug), requires a TREE line for every descendant of the root, and
// records each process's state (zombie or not, exit code of zombies, exe,
// threads). After a restore it waits until /proc shows exactly that tree
// again (same ppid except the root's, pgid, sid, zombies still zombies with
// their exit codes, same exe and threads, nothing traced or stopped, no cryo
// mapping, no extra process below the root, no process at the id of a group
// whose leader was gone) before it sends SIGTERM to the root. Only the root
// is signalled: it passes SIGTERM on to its children, and so on down; each
// process checks itself and reports by exit status to its parent (its FAIL
// lines go to the shared output); the root prints PASS or FAIL.

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"golang.org/x/sys/unix"
)

var treeLineRe = regexp.MustCompile(`(?m)^TREE pid=(\d+) ppid=(\d+) pgid=(\d+) sid=(\d+)(?: role=(\S+))?`)

// criuTaskDead is CRIU's TASK_DEAD task_state of a zombie's core image.
const criuTaskDead = 2

// procState is what /proc shows of one process.
type procState struct {
	Pid, PPid, Pgid, Sid int
	State                byte   // /proc/PID/stat field 3: Z for a zombie
	ExitCode             int    // field 52: a zombie's wait status
	Exe                  string // "" for zombies
	Tids                 []int  // nil for zombies
	Role                 string // from the TREE line
}

func (s procState) zombie() bool { return s.State == 'Z' }

func (s procState) String() string {
	return fmt.Sprintf("%s pid=%d ppid=%d pgid=%d sid=%d state=%c exit_code=%#x exe=%s tids=%v",
		s.Role, s.Pid, s.PPid, s.Pgid, s.Sid, s.State, s.ExitCode, s.Exe, s.Tids)
}

// readProcState reads /proc/PID/stat (and exe and threads if not a zombie).
func readProcState(pid int) (procState, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procState{}, err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return procState{}, fmt.Errorf("/proc/%d/stat: cannot parse %q", pid, s)
	}
	f := strings.Fields(s[i+2:])
	if len(f) < 50 {
		return procState{}, fmt.Errorf("/proc/%d/stat: %d fields after comm, want >= 50", pid, len(f))
	}
	st := procState{Pid: pid, State: f[0][0]}
	for _, x := range []struct {
		p *int
		s string
	}{{&st.PPid, f[1]}, {&st.Pgid, f[2]}, {&st.Sid, f[3]}, {&st.ExitCode, f[49]}} {
		if *x.p, err = strconv.Atoi(x.s); err != nil {
			return procState{}, fmt.Errorf("/proc/%d/stat: %v", pid, err)
		}
	}
	if !st.zombie() {
		st.Exe, _ = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		st.Tids = procTids(pid)
	}
	return st, nil
}

// descendants returns every process below root (zombies included), from
// the ppid of every process in /proc.
func descendants(root int) map[int]bool {
	children := map[int][]int{}
	for _, pid := range allPids() {
		if st, err := readProcState(pid); err == nil {
			children[st.PPid] = append(children[st.PPid], pid)
		}
	}
	out := map[int]bool{}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if !out[c] {
				out[c] = true
				queue = append(queue, c)
			}
		}
	}
	return out
}

// Tree is a tree workload: its root is w, the other processes are known
// from their TREE lines.
type Tree struct {
	t       *testing.T
	w       *Workload
	Pids    []int             // in the order of the TREE lines
	Want    map[int]procState // as at READY
	Outside []int             // TREE processes that are not descendants of the root
	// gone[id] tells whether a process existed at READY at a pgid or sid
	// that no TREE process has (a group or session whose leader is gone).
	gone map[int]bool
}

// startTree starts a tree workload and records its tree (see the file
// comment).
func startTree(t *testing.T, bin string, args ...string) *Tree {
	t.Helper()
	w := startWorkload(t, bin, args...)
	tr := &Tree{t: t, w: w, Want: map[int]procState{}, gone: map[int]bool{}}
	// Runs before w.cleanup (LIFO): kills what is left of the tree.
	t.Cleanup(tr.cleanup)
	for _, m := range treeLineRe.FindAllStringSubmatch(w.Output(), -1) {
		var line [4]int
		for i := range line {
			line[i], _ = strconv.Atoi(m[i+1])
		}
		pid := line[0]
		if _, dup := tr.Want[pid]; dup {
			t.Fatalf("%s: two TREE lines for pid %d", w.Name, pid)
		}
		st, err := readProcState(pid)
		if err != nil {
			t.Fatalf("%s: TREE line for pid %d, but no such process at READY: %v", w.Name, pid, err)
		}
		if st.PPid != line[1] || st.Pgid != line[2] || st.Sid != line[3] {
			t.Fatalf("workload bug: %s prints %q, but /proc says ppid=%d pgid=%d sid=%d", w.Name, m[0], st.PPid, st.Pgid, st.Sid)
		}
		st.Role = m[5]
		tr.Pids = append(tr.Pids, pid)
		tr.Want[pid] = st
	}
	if _, ok := tr.Want[w.Pid]; !ok {
		t.Fatalf("%s printed no TREE line for the root %d; output:\n%s", w.Name, w.Pid, clip(w.Output(), 4000))
	}
	desc := descendants(w.Pid)
	for pid := range desc {
		if _, ok := tr.Want[pid]; !ok {
			st, _ := readProcState(pid)
			t.Fatalf("workload bug: pid %d (%s) is a descendant of the root %d but has no TREE line", pid, st, w.Pid)
		}
	}
	for _, pid := range tr.Pids {
		if pid != w.Pid && !desc[pid] {
			tr.Outside = append(tr.Outside, pid)
		}
		for _, id := range []int{tr.Want[pid].Pgid, tr.Want[pid].Sid} {
			if _, ok := tr.Want[id]; !ok {
				_, err := os.Stat(fmt.Sprintf("/proc/%d", id))
				tr.gone[id] = err == nil
			}
		}
	}
	var lines []string
	for _, pid := range tr.Pids {
		lines = append(lines, tr.Want[pid].String())
	}
	t.Logf("tree of %d processes (outside the root's subtree: %v):\n  %s", len(tr.Pids), tr.Outside, strings.Join(lines, "\n  "))
	return tr
}

// Role returns the pid of the TREE process with that role, or fails.
func (tr *Tree) Role(role string) int {
	for _, pid := range tr.Pids {
		if tr.Want[pid].Role == role {
			return pid
		}
	}
	tr.t.Fatalf("no TREE line with role=%s", role)
	return 0
}

// diff lists how /proc differs from the recorded tree now ("" if not).
func (tr *Tree) diff() []string {
	return treeDiff(tr.w.Pid, tr.Pids, tr.Want, tr.gone)
}

func treeDiff(root int, pids []int, want map[int]procState, gone map[int]bool) []string {
	var out []string
	add := func(format string, args ...any) { out = append(out, fmt.Sprintf(format, args...)) }
	for _, pid := range pids {
		w := want[pid]
		cur, err := readProcState(pid)
		if err != nil {
			add("%s (pid %d): no such process (%v)", w.Role, pid, err)
			continue
		}
		if cur.zombie() != w.zombie() {
			add("%s (pid %d): state %c, want %s", w.Role, pid, cur.State, map[bool]string{true: "Z (zombie)", false: "a live process"}[w.zombie()])
			continue
		}
		if pid != root && cur.PPid != w.PPid {
			add("%s (pid %d): ppid %d, want %d", w.Role, pid, cur.PPid, w.PPid)
		}
		if cur.Pgid != w.Pgid {
			add("%s (pid %d): pgid %d, want %d", w.Role, pid, cur.Pgid, w.Pgid)
		}
		if cur.Sid != w.Sid {
			add("%s (pid %d): sid %d, want %d", w.Role, pid, cur.Sid, w.Sid)
		}
		if w.zombie() {
			if cur.ExitCode != w.ExitCode {
				add("%s (pid %d): zombie with exit code %#x, want %#x", w.Role, pid, cur.ExitCode, w.ExitCode)
			}
			continue
		}
		if cur.Exe != w.Exe {
			add("%s (pid %d): exe %s, want %s", w.Role, pid, cur.Exe, w.Exe)
		}
		if !slices.Equal(cur.Tids, w.Tids) {
			add("%s (pid %d): threads %v, want %v", w.Role, pid, cur.Tids, w.Tids)
		}
		for _, tid := range cur.Tids {
			st := procStatus(fmt.Sprintf("/proc/%d/task/%d/status", pid, tid))
			if tp := st["TracerPid"]; tp != "0" && tp != "" {
				add("%s (pid %d): thread %d is traced by %s", w.Role, pid, tid, tp)
			}
			s := st["State"]
			if w.State == 'T' {
				// Stopped at READY (SIGSTOP, SIGTSTP): stopped again, not traced.
				if !strings.HasPrefix(s, "T") {
					add("%s (pid %d): thread %d is in state %q, want T (stopped) as at READY", w.Role, pid, tid, s)
				}
			} else if strings.HasPrefix(s, "T") || strings.HasPrefix(s, "t") || strings.HasPrefix(s, "X") {
				add("%s (pid %d): thread %d is in state %q", w.Role, pid, tid, s)
			}
		}
		if cryoBin != "" {
			if maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid)); strings.Contains(string(maps), cryoBin) {
				add("%s (pid %d): the cryo binary is still mapped", w.Role, pid)
			}
		}
	}
	for pid := range descendants(root) {
		if _, ok := want[pid]; !ok {
			st, _ := readProcState(pid)
			add("extra process below the root: %s", st)
		}
	}
	for id, existed := range gone {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", id)); err == nil && !existed {
			st, _ := readProcState(id)
			add("a process exists at pid %d, the id of a group or session whose leader had exited (a placeholder left behind?): %s", id, st)
		}
	}
	slices.Sort(out)
	return out
}

// waitMatches polls until /proc shows the recorded tree (twice in a row,
// 10 ms apart) or fails the test.
func (tr *Tree) waitMatches(when string) {
	t := tr.t
	t.Helper()
	d := bound(t, restoreReadyTimeout)
	deadline := time.Now().Add(d)
	stable := 0
	var diff []string
	for time.Now().Before(deadline) {
		if diff = tr.diff(); len(diff) == 0 {
			if stable++; stable >= 2 {
				return
			}
		} else {
			stable = 0
		}
		if tr.w.rst != nil && !tr.w.detach && tr.w.rst.Exited() {
			break
		}
		time.Sleep(pollInterval)
	}
	if len(diff) > 0 {
		hung()
	}
	tr.w.logAll()
	t.Fatalf("%s: the tree is not as at READY (within %v):\n  %s", when, d, strings.Join(diff, "\n  "))
}

// Checkpoint dumps the tree (which kills it), waits until every PID of the
// tree is free and checks pstree.img and the zombies' core images. No-op
// in CRYO_E2E_NO_CR mode.
func (tr *Tree) Checkpoint(extra ...string) {
	t := tr.t
	t.Helper()
	if noCR {
		return
	}
	tr.w.Checkpoint(extra...)
	if slices.Contains(extra, "--leave-running") {
		tr.waitMatches("after dump --leave-running")
	} else {
		for _, pid := range tr.Pids {
			if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
				t.Fatalf("after the dump of the tree: %s: %v", tr.Want[pid].Role, err)
			}
		}
	}
	tr.checkImages()
}

// Restore restores the tree and waits until /proc shows it as at READY. In
// CRYO_E2E_NO_CR mode it only checks that the original tree is unchanged.
func (tr *Tree) Restore(extra ...string) {
	tr.t.Helper()
	tr.w.Restore(extra...)
	tr.waitMatches("after restore")
}

// Finish sends SIGTERM to the root (only), checks its verdict (Workload.
// Finish) and that every process of the tree is gone afterwards.
func (tr *Tree) Finish() {
	tr.t.Helper()
	tr.w.Finish()
	tr.waitGone()
}

// waitGone checks that no process of the tree is left once the root exited
// (zombies reparented to the test process are reaped).
func (tr *Tree) waitGone() {
	t := tr.t
	t.Helper()
	for _, pid := range tr.Pids {
		if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
			t.Errorf("%s is left after the root exited: %v", tr.Want[pid].Role, err)
		}
	}
}

// killAll kills every process of the tree (after dump --leave-running) and
// waits until their PIDs are free.
func (tr *Tree) killAll() {
	t := tr.t
	t.Helper()
	for _, pid := range tr.Pids {
		if !tr.Want[pid].zombie() {
			_ = unix.Kill(pid, unix.SIGKILL)
		}
	}
	if !tr.w.orig.Wait(bound(t, killTimeout)) {
		t.Fatalf("the root %d did not die after SIGKILL", tr.w.Pid)
	}
	for _, pid := range tr.Pids {
		if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
			t.Fatal(err)
		}
	}
}

// cleanup kills what is left of the tree: processes still running the
// recorded executable, or cryo (a restore stub left at a PID of the tree).
func (tr *Tree) cleanup() {
	killed := false
	for _, pid := range tr.Pids {
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err != nil {
			continue
		}
		if (exe != "" && exe == tr.Want[pid].Exe) || (cryoBin != "" && strings.HasPrefix(exe, cryoBin)) {
			_ = unix.Kill(pid, unix.SIGKILL)
			killed = true
		}
	}
	if killed {
		for _, pid := range tr.Pids {
			if pid != tr.w.Pid {
				_, _ = waitForeign(pid, killTimeout)
			}
		}
	}
	reapZombieChildren()
}

// checkImages: pstree.img has one entry per process of the tree, root first
// (ppid 0), every parent before its children, with pid, ppid, pgid, sid and
// (live processes) the threads; core-TID.img exists for every thread; a
// zombie's core image says TASK_DEAD with its exit code.
func (tr *Tree) checkImages() {
	t := tr.t
	t.Helper()
	img, err := decodeImage(filepath.Join(tr.w.ImgDir, "pstree.img"))
	if err != nil {
		t.Errorf("pstree.img: %v", err)
		return
	}
	seen := map[int]bool{}
	for i, e := range img.Entries {
		ps, ok := e.Message.(*pstree.PstreeEntry)
		if !ok {
			t.Errorf("pstree.img entry %d: %T", i, e.Message)
			continue
		}
		pid := int(ps.GetPid())
		want, ok := tr.Want[pid]
		if !ok && isGroupHelper(t, tr.w.ImgDir, pid) {
			// A CRIU helper entry stands for a process group whose
			// leader exited; it must be a group some process is in.
			inGroup := false
			for _, w := range tr.Want {
				inGroup = inGroup || w.Pgid == pid
			}
			if !inGroup || int(ps.GetPgid()) != pid {
				t.Errorf("pstree.img: helper entry %d for pid %d is no process group of the tree", i, pid)
			}
			continue
		}
		if !ok || slices.Contains(tr.Outside, pid) {
			t.Errorf("pstree.img: entry %d for pid %d, which is not in the tree", i, pid)
			continue
		}
		if seen[pid] {
			t.Errorf("pstree.img: two entries for pid %d", pid)
		}
		if i == 0 && pid != tr.w.Pid {
			t.Errorf("pstree.img: the first entry is pid %d, want the root %d", pid, tr.w.Pid)
		}
		wantPPid := want.PPid
		if pid == tr.w.Pid {
			wantPPid = 0
		} else if !seen[wantPPid] {
			t.Errorf("pstree.img: %s (pid %d) comes before its parent %d", want.Role, pid, wantPPid)
		}
		seen[pid] = true
		if got := [3]int{int(ps.GetPpid()), int(ps.GetPgid()), int(ps.GetSid())}; got != [3]int{wantPPid, want.Pgid, want.Sid} {
			t.Errorf("pstree.img: %s (pid %d): ppid/pgid/sid %v, want %v", want.Role, pid, got, [3]int{wantPPid, want.Pgid, want.Sid})
		}
		if want.zombie() {
			c, err := decodeImage(filepath.Join(tr.w.ImgDir, fmt.Sprintf("core-%d.img", pid)))
			if err != nil || len(c.Entries) != 1 {
				t.Errorf("core-%d.img of the zombie %s: %v", pid, want.Role, err)
				continue
			}
			ce, _ := c.Entries[0].Message.(*core.CoreEntry)
			if tc := ce.GetTc(); tc.GetTaskState() != criuTaskDead || int(tc.GetExitCode()) != want.ExitCode {
				t.Errorf("core-%d.img of the zombie %s: task_state %d exit_code %#x, want %d (TASK_DEAD) and %#x",
					pid, want.Role, tc.GetTaskState(), tc.GetExitCode(), criuTaskDead, want.ExitCode)
			}
			continue
		}
		var tids []int
		for _, tid := range ps.GetThreads() {
			tids = append(tids, int(tid))
		}
		if !slices.Equal(sortedCopy(tids), want.Tids) {
			t.Errorf("pstree.img: %s (pid %d): threads %v, want %v", want.Role, pid, tids, want.Tids)
		}
		for _, tid := range want.Tids {
			if _, err := os.Stat(filepath.Join(tr.w.ImgDir, fmt.Sprintf("core-%d.img", tid))); err != nil {
				t.Errorf("%s (pid %d): thread %d: %v", want.Role, pid, tid, err)
			}
		}
	}
	for _, pid := range tr.Pids {
		if !seen[pid] && !slices.Contains(tr.Outside, pid) {
			t.Errorf("pstree.img has no entry for %s (pid %d)", tr.Want[pid].Role, pid)
		}
	}
}

// treeCR is the basic flow for a tree: start, dump (kills the tree), wait
// for every PID to be free, restore (cryo stays the root's parent), check
// the tree, SIGTERM the root, PASS, nothing left.
func treeCR(t *testing.T, bin string, args ...string) *Tree {
	t.Helper()
	tr := startTree(t, bin, args...)
	tr.Checkpoint()
	tr.Restore()
	tr.Finish()
	return tr
}

// forEachLink runs fn for the dynamic and the static build of a workload,
// as subtests "dynamic" and "static".
func forEachLink(t *testing.T, workload string, fn func(t *testing.T, bin string)) {
	requireRoot(t)
	for _, link := range []string{linkDynamic, linkStatic} {
		t.Run(link, func(t *testing.T) {
			requireRoot(t)
			fn(t, workloadBin(t, workload, link))
		})
	}
}

// TestE2ETreeBasic: root with 3 children, one with 2 grandchildren; a child
// in a new session (setsid) with a child of its own, a child leading its
// own group with 3 threads, a grandchild leading a group that its sibling
// joined. Every process checks pid/ppid/pgid/sid, its memory and the pages
// it shares copy-on-write with its ancestors, reaps its children.
func TestE2ETreeBasic(t *testing.T) {
	forEachLink(t, "tree_basic", func(t *testing.T, bin string) {
		treeCR(t, bin)
	})
}

// TestE2ETreeOrphanPgrp: tree_basic plus a process group whose leader has
// exited and been reaped; its other member keeps the group id. Restoring
// needs a placeholder process at the leader's PID, which must be gone
// afterwards (no process at that PID, no extra child anywhere in the tree).
func TestE2ETreeOrphanPgrp(t *testing.T) {
	forEachLink(t, "tree_basic", func(t *testing.T, bin string) {
		tr := startTree(t, bin, "orphan-pgrp")
		e := tr.Role("E")
		if pg := tr.Want[e].Pgid; pg == e {
			t.Fatalf("workload bug: E leads its group %d", pg)
		} else if existed, ok := tr.gone[pg]; !ok || existed {
			t.Fatalf("workload bug: E's group %d should have no leader and no process at its id", pg)
		}
		tr.Checkpoint()
		tr.Restore()
		tr.Finish()
	})
}

// TestE2ETreeZombie: unreaped children (exit 42; killed by SIGUSR1 in their
// own group; a grandchild exited 7 under a live child) stay zombies with
// their exit status; the root's blocked SIGCHLD stays pending exactly as
// before (one instance, the first zombie's siginfo, process-wide): the
// SIGCHLDs that recreating the zombies raises must not show.
func TestE2ETreeZombie(t *testing.T) {
	forEachLink(t, "tree_zombie", func(t *testing.T, bin string) {
		tr := treeCR(t, bin)
		zombies := 0
		for _, st := range tr.Want {
			if st.zombie() {
				zombies++
			}
		}
		if zombies != 3 {
			t.Errorf("workload bug: %d zombies at READY, want 3", zombies)
		}
	})
}

// TestE2ETreeOrphan: a grandchild whose parent exited.
//
// subreaper: the root is a child subreaper, so the orphan is its child; it
// must be restored as the root's child, the root still a subreaper.
//
// outside: the orphan was reparented above the root (to the test process,
// a subreaper) but is still in the root's session and group: dumping the
// root must fail with one "cryo:" line naming the orphan's PID, write no
// inventory.img, and leave the whole tree running untouched (it passes).
func TestE2ETreeOrphan(t *testing.T) {
	requireRoot(t)
	t.Run("subreaper", func(t *testing.T) {
		forEachLink(t, "tree_orphan", func(t *testing.T, bin string) {
			tr := startTree(t, bin, "subreaper")
			if g := tr.Role("G"); tr.Want[g].PPid != tr.w.Pid {
				t.Fatalf("workload bug: G's parent is %d, want the root %d", tr.Want[g].PPid, tr.w.Pid)
			}
			tr.Checkpoint()
			tr.Restore()
			tr.Finish()
		})
	})
	t.Run("outside", func(t *testing.T) {
		requireRoot(t)
		tr := startTree(t, workloadBin(t, "tree_orphan", linkDynamic), "outside")
		g := tr.Role("G")
		if !slices.Equal(tr.Outside, []int{g}) || tr.Want[g].PPid != os.Getpid() {
			t.Fatalf("workload bug: want G (pid %d) outside the root's subtree as the test process's child; outside %v, G's ppid %d",
				g, tr.Outside, tr.Want[g].PPid)
		}
		tr.refusedDump(strconv.Itoa(g))
		tr.Finish()
	})
}

// refusedDump dumps the tree, which must fail: one "cryo:" line containing
// every string of mustContain, no inventory.img, no cryo process left, and
// the whole tree running as before (checked twice, 300 ms apart). In
// CRYO_E2E_NO_CR mode nothing is dumped.
func (tr *Tree) refusedDump(mustContain ...string) cryoResult {
	t := tr.t
	t.Helper()
	if noCR {
		t.Logf("%s=1: not dumping; only the workload runs", envNoCR)
		return cryoResult{}
	}
	dir := filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	res := tryDump(t, tr.w.Pid, dir)
	t.Logf("%s", res)
	if res.ExitCode == 0 {
		logFile(t, filepath.Join(dir, "dump.log"))
	}
	assertOneErrorLine(t, res, mustContain...)
	if _, err := os.Stat(filepath.Join(dir, "inventory.img")); err == nil {
		t.Errorf("the failed dump wrote inventory.img: the image set looks complete")
	}
	checkNoStrayCryo(t, "after the failed dump")
	tr.w.assertRunningUntouched("after the failed dump")
	tr.waitMatches("after the failed dump")
	time.Sleep(300 * time.Millisecond)
	tr.waitMatches("300 ms after the failed dump")
	return res
}

// TestE2ETreeFiles: open file descriptions shared across processes (fork,
// dup2) or not (the same file opened by each, the same fd number reopened):
// kcmp(KCMP_FILE) across pids, offsets that move for all sharers, per-fd
// FD_CLOEXEC vs per-description O_NONBLOCK, fd tables, an O_APPEND log
// written by all with nothing lost or doubled.
func TestE2ETreeFiles(t *testing.T) {
	forEachLink(t, "tree_files", func(t *testing.T, bin string) {
		treeCR(t, bin)
	})
}

// TestE2ETreePipe: pipes with bytes in flight (10000 queued; 64 KiB full
// with the writer blocked in write(); empty with the reader blocked in
// read()) and a self-pipe: every byte arrives once, in order; the blocked
// write and read complete (restarted, no EINTR); F_GETPIPE_SZ, O_NONBLOCK
// and FIONREAD as at the checkpoint.
func TestE2ETreePipe(t *testing.T) {
	forEachLink(t, "tree_pipe", func(t *testing.T, bin string) {
		treeCR(t, bin)
	})
}

// TestE2ETreeFIFO: tree_pipe plus a FIFO (mkfifo in the workload's cwd)
// opened by the reader (O_RDONLY|O_NONBLOCK) and the writer (O_WRONLY)
// holding 5000 bytes at the checkpoint: FIONREAD, flags and capacity kept,
// the 10000 bytes arrive once, in order, then EOF.
func TestE2ETreeFIFO(t *testing.T) {
	forEachLink(t, "tree_pipe", func(t *testing.T, bin string) {
		treeCR(t, bin, "fifo")
	})
}

// TestE2ETreeLeaveRunning: dump --leave-running of tree_pipe copies the
// queued pipe bytes without consuming them: the tree keeps running
// untouched and passes (original-continues), and the images restore a tree
// that passes too (restore-from-images).
func TestE2ETreeLeaveRunning(t *testing.T) {
	requireCryo(t)
	t.Run("original-continues", func(t *testing.T) {
		tr := startTree(t, workloadBin(t, "tree_pipe", linkDynamic))
		tr.Checkpoint("--leave-running")
		time.Sleep(300 * time.Millisecond)
		tr.waitMatches("300 ms after dump --leave-running")
		tr.Finish()
	})
	t.Run("restore-from-images", func(t *testing.T) {
		tr := startTree(t, workloadBin(t, "tree_pipe", linkDynamic))
		tr.Checkpoint("--leave-running")
		tr.killAll()
		tr.Restore()
		tr.Finish()
	})
}

// TestE2ETreeUnsupportedFD: a grandchild holds an io_uring fd: the dump of
// the tree fails with one "cryo:" line naming io_uring (or the fd) and the
// grandchild's PID, writes no inventory.img, and the whole tree keeps
// running untouched and passes.
func TestE2ETreeUnsupportedFD(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_basic", linkDynamic), "iouring")
	m := regexp.MustCompile(`(?m)^IOURING pid=(\d+) fd=(\d+)$`).FindStringSubmatch(tr.w.Output())
	if m == nil {
		t.Fatalf("the workload did not print IOURING pid=... fd=...; output:\n%s", tr.w.Output())
	}
	res := tr.refusedDump(m[1])
	if !noCR {
		line := firstLine(res.Stderr)
		if !strings.Contains(strings.ToLower(line), "io_uring") && !regexp.MustCompile(`fd\D{0,3}`+m[2]+`\b`).MatchString(line) {
			t.Errorf("the error line names neither io_uring nor fd %s: %s", m[2], line)
		}
	}
	tr.Finish()
}

// TestE2ETreePipeline: sh -c 'producer | tr a-z A-Z | consumer' (a copy of
// dash, coreutils tr, C ends) dumped and restored mid-stream. The root is
// sh, which is not signalled: after the restore the test waits until the
// stream moves on, creates the file "stop"; the producer writes 200 more
// lines and END, the consumer checks that every line arrived once, in order,
// and prints PASS; sh exits with the consumer's status 0.
func TestE2ETreePipeline(t *testing.T) {
	forEachLink(t, "tree_pipeline", func(t *testing.T, bin string) {
		dir := t.TempDir()
		sh := copyExecutable(t, "/bin/sh", filepath.Join(dir, "sh"))
		trBin := copyExecutable(t, "/usr/bin/tr", filepath.Join(dir, "tr"))
		script := fmt.Sprintf("'%s' produce | '%s' a-z A-Z | '%s' consume", bin, trBin, bin)
		tr := startTree(t, sh, "-c", script)
		if len(tr.Pids) != 4 {
			t.Fatalf("workload bug: %d TREE lines, want sh and 3 children", len(tr.Pids))
		}
		out := filepath.Join(tr.w.Dir, "pipeline.out")
		atReady := countLines(out)
		tr.Checkpoint()
		atDump := countLines(out)
		tr.Restore()
		// The restored pipeline runs on its own: the consumer's output grows.
		deadline := time.Now().Add(bound(t, 5*time.Second))
		for countLines(out) <= atDump+50 && time.Now().Before(deadline) {
			time.Sleep(pollInterval)
		}
		afterRestore := countLines(out)
		if afterRestore <= atDump+50 {
			tr.w.logAll()
			t.Fatalf("the restored pipeline does not move: %d lines in pipeline.out at the dump, %d 5 s after the restore", atDump, afterRestore)
		}
		if err := os.WriteFile(filepath.Join(tr.w.Dir, "stop"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		tr.finishBySelf()
		final := countLines(out)
		t.Logf("pipeline.out: %d lines at READY, %d at the dump, %d after the restore, %d at the end", atReady, atDump, afterRestore, final)
		if !corrupt && final < afterRestore+200 {
			t.Errorf("pipeline.out has %d lines at the end, want at least %d (200 after the stop)", final, afterRestore+200)
		}
	})
}

// finishBySelf waits (without signalling anything) for the root to exit and
// asserts exit status 0, PASS and no FAIL (the opposite in
// CRYO_E2E_CORRUPT mode), then that the tree is gone.
func (tr *Tree) finishBySelf() {
	t, w := tr.t, tr.w
	t.Helper()
	status, known := w.awaitExit("")
	w.verdict(status, known)
	tr.waitGone()
}

// TestE2ETreeHarness: the tree checks of this file can fail: against a
// running tree_basic, a changed ppid, pgid, sid, exe, thread set or state,
// a missing or an unknown process, and a process at the id of a group
// whose leader is gone are each reported.
func TestE2ETreeHarness(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_basic", linkDynamic))
	if d := tr.diff(); len(d) != 0 {
		t.Fatalf("the untouched tree differs from itself:\n%s", strings.Join(d, "\n"))
	}
	a1, a2, b1, c := tr.Role("A1"), tr.Role("A2"), tr.Role("B1"), tr.Role("C")
	free := freePid(t)
	mutations := []struct {
		name   string
		pid    int // must be named in the report
		mutate func(want map[int]procState, pids *[]int, gone map[int]bool)
	}{
		{"ppid", a1, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[a1]; s.PPid++; w[a1] = s }},
		{"pgid", a2, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[a2]; s.Pgid = a2; w[a2] = s }},
		{"sid", b1, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[b1]; s.Sid = tr.w.Pid; w[b1] = s }},
		{"exe", c, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[c]; s.Exe += ".other"; w[c] = s }},
		{"threads", c, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[c]; s.Tids = s.Tids[:1]; w[c] = s }},
		{"zombie", a1, func(w map[int]procState, _ *[]int, _ map[int]bool) { s := w[a1]; s.State = 'Z'; w[a1] = s }},
		{"missing", free, func(w map[int]procState, p *[]int, _ map[int]bool) {
			w[free] = procState{Pid: free, PPid: tr.w.Pid, Pgid: tr.w.Pid, Sid: tr.w.Pid, State: 'S', Role: "ghost"}
			*p = append(*p, free)
		}},
		{"extra", b1, func(w map[int]procState, p *[]int, _ map[int]bool) {
			delete(w, b1)
			*p = slices.DeleteFunc(*p, func(x int) bool { return x == b1 })
		}},
		{"placeholder", c, func(_ map[int]procState, _ *[]int, g map[int]bool) { g[c] = false }},
	}
	for _, m := range mutations {
		want := map[int]procState{}
		for k, v := range tr.Want {
			want[k] = v
		}
		pids := slices.Clone(tr.Pids)
		gone := map[int]bool{}
		for k, v := range tr.gone {
			gone[k] = v
		}
		m.mutate(want, &pids, gone)
		d := treeDiff(tr.w.Pid, pids, want, gone)
		if len(d) == 0 || !strings.Contains(strings.Join(d, "\n"), strconv.Itoa(m.pid)) {
			t.Errorf("mutation %s: not reported (or not naming pid %d): %q", m.name, m.pid, d)
		} else {
			t.Logf("mutation %s: %s", m.name, strings.Join(d, "; "))
		}
	}
	tr.Finish()
}

// copyExecutable copies an executable (symlinks resolved) to dst, so that
// the cleanup, which kills processes by their executable, only ever
// matches processes of this test.
func copyExecutable(t *testing.T, src, dst string) string {
	t.Helper()
	real, err := filepath.EvalSymlinks(src)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	in, err := os.Open(real)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

func countLines(path string) int {
	return strings.Count(readString(path), "\n")
}

// isGroupHelper tells whether core-PID.img of a dump is a CRIU helper task
// (task_state 4).
func isGroupHelper(t *testing.T, dir string, pid int) bool {
	img, err := decodeImage(filepath.Join(dir, fmt.Sprintf("core-%d.img", pid)))
	if err != nil || len(img.Entries) == 0 {
		return false
	}
	c, ok := img.Entries[0].Message.(*core.CoreEntry)
	return ok && c.GetTc().GetTaskState() == 4
}
