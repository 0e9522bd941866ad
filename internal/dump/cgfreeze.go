package dump

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// The cgroup freezer (CRIU's freeze_cgroup, which runc sends with the
// container's freezer cgroup). Seizing a tree thread by thread, top down,
// leaves a window: a process not yet seized can fork, and a child of it
// that forks again and exits leaves a grandchild reparented to a process
// already walked, which the dump would miss. With the cgroup frozen,
// nothing in it runs while every thread of it is attached and asked to
// stop (ptrace.Tracer.Interrupt); then the cgroup is thawed and each
// thread stops in ptrace before it runs again. The tree is then walked as
// usual, and held with ptrace, not the freezer, for the rest of the dump:
// its state is read and injected into through ptrace stops. Threads of
// the cgroup outside the tree are let go once the walk is done.

// freezeTimeout bounds the wait for the freezer to report the cgroup
// frozen (CRIU's default --timeout is 10 s).
const freezeTimeout = 10 * time.Second

// cgroupFreezer is one cgroup's freezer: v1 (freezer.state) or v2
// (cgroup.freeze).
type cgroupFreezer struct {
	dir string
	v2  bool
	// wasFrozen: the cgroup was frozen before the dump (a paused
	// container); it is frozen again when the dump is done.
	wasFrozen bool
}

// openFreezer checks that dir is a cgroup with a freezer, under
// /sys/fs/cgroup, holding the tree's root.
func openFreezer(dir string, root int) (*cgroupFreezer, error) {
	clean := filepath.Clean(dir)
	if !filepath.IsAbs(clean) || !strings.HasPrefix(clean+"/", "/sys/fs/cgroup/") {
		return nil, fmt.Errorf("freeze_cgroup %s: not a cgroup directory under /sys/fs/cgroup", dir)
	}
	real, err := filepath.EvalSymlinks(clean)
	if err != nil || real != clean {
		return nil, fmt.Errorf("freeze_cgroup %s: not a cgroup directory (%v)", dir, err)
	}
	f := &cgroupFreezer{dir: clean}
	if _, err := os.Stat(filepath.Join(clean, "freezer.state")); err == nil {
		// v1: the freezer hierarchy's directory.
	} else if _, err := os.Stat(filepath.Join(clean, "cgroup.freeze")); err == nil {
		f.v2 = true
	} else {
		return nil, fmt.Errorf("freeze_cgroup %s: no freezer there (neither freezer.state nor cgroup.freeze)", dir)
	}
	pids, err := f.procs()
	if err != nil {
		return nil, err
	}
	found := false
	for _, p := range pids {
		found = found || p == root
	}
	if !found {
		return nil, fmt.Errorf("freeze_cgroup %s: process %d is not in it", dir, root)
	}
	if f.wasFrozen, err = f.frozen(); err != nil {
		return nil, err
	}
	return f, nil
}

// set freezes (true) or thaws the cgroup.
func (f *cgroupFreezer) set(freeze bool) error {
	name, val := "freezer.state", map[bool]string{true: "FROZEN", false: "THAWED"}[freeze]
	if f.v2 {
		name, val = "cgroup.freeze", map[bool]string{true: "1", false: "0"}[freeze]
	}
	if err := os.WriteFile(filepath.Join(f.dir, name), []byte(val), 0); err != nil {
		return fmt.Errorf("freeze_cgroup %s: write %s to %s: %w", f.dir, val, name, err)
	}
	return nil
}

// frozen reports whether every process of the cgroup is frozen: v1's
// freezer.state reads FROZEN (not FREEZING), v2's cgroup.events "frozen 1".
func (f *cgroupFreezer) frozen() (bool, error) {
	if !f.v2 {
		b, err := os.ReadFile(filepath.Join(f.dir, "freezer.state"))
		if err != nil {
			return false, fmt.Errorf("freeze_cgroup %s: %w", f.dir, err)
		}
		return strings.TrimSpace(string(b)) == "FROZEN", nil
	}
	b, err := os.ReadFile(filepath.Join(f.dir, "cgroup.events"))
	if err != nil {
		return false, fmt.Errorf("freeze_cgroup %s: %w", f.dir, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if line == "frozen 1" {
			return true, nil
		}
	}
	return false, nil
}

// freeze freezes the cgroup and waits until the kernel says it is frozen:
// a process in an uninterruptible sleep holds the freezer in FREEZING.
func (f *cgroupFreezer) freeze() error {
	if err := f.set(true); err != nil {
		return err
	}
	deadline := time.Now().Add(freezeTimeout)
	for wait := 100 * time.Microsecond; ; wait = min(2*wait, 50*time.Millisecond) {
		ok, err := f.frozen()
		if err != nil {
			f.set(false)
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			f.set(false)
			return fmt.Errorf("freeze_cgroup %s: not frozen after %v (a process in an uninterruptible sleep?)", f.dir, freezeTimeout)
		}
		time.Sleep(wait)
	}
}

// procs lists the processes of the cgroup and of the cgroups below it,
// which the freezer freezes with it.
func (f *cgroupFreezer) procs() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(f.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() {
			return nil
		}
		file, err := os.Open(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			return err
		}
		defer file.Close()
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			if pid, err := strconv.Atoi(strings.TrimSpace(sc.Text())); err == nil && pid > 0 {
				pids = append(pids, pid)
			}
		}
		return sc.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("freeze_cgroup %s: list its processes: %w", f.dir, err)
	}
	return pids, nil
}

// seizeTreeFrozen is seizeTree with the tree's cgroup frozen first (see
// above), when opts.FreezeCgroup names it. A cgroup frozen before the dump
// (a paused container) is frozen again when the dump returns.
func (d *dumper) seizeTreeFrozen(root int) (refreeze func(), err error) {
	refreeze = func() {}
	if d.opts.FreezeCgroup == "" {
		return refreeze, d.seizeTree(root)
	}
	if _, err := os.Stat(d.opts.FreezeCgroup); errors.Is(err, fs.ErrNotExist) && os.Geteuid() != 0 {
		// runc names a freezer cgroup for a rootless container even
		// where it could make none (cgroup v1): there is nothing to
		// freeze, and the user could not write it anyway.
		d.logf("freeze_cgroup %s: no such cgroup (a rootless container has none): the tree is seized with ptrace only", d.opts.FreezeCgroup)
		return refreeze, d.seizeTree(root)
	}
	f, err := openFreezer(d.opts.FreezeCgroup, root)
	if err != nil {
		return refreeze, err
	}
	if f.wasFrozen {
		refreeze = func() {
			if err := f.set(true); err != nil {
				d.logf("warning: %v", err)
			}
		}
	}
	if err := d.seizeFrozen(f); err != nil {
		return refreeze, err
	}
	err = d.seizeTree(root)
	d.releaseFrozen(f)
	return refreeze, err
}

// seizeFrozen freezes the cgroup, attaches every thread in it and asks it
// to stop, and thaws the cgroup: the walk of seizeTree then finds the
// tree's threads stopping or stopped, none of them having run since the
// freeze. On error nothing stays attached and the cgroup is as it was.
func (d *dumper) seizeFrozen(f *cgroupFreezer) error {
	start := time.Now()
	if err := f.freeze(); err != nil {
		return err
	}
	n, err := d.interruptCgroup(f)
	if terr := f.set(false); terr != nil && err == nil {
		err = terr
	}
	if err != nil {
		d.tr.ReleaseInterrupted()
		if f.wasFrozen {
			f.set(true)
		}
		return err
	}
	d.logf("freeze_cgroup %s: %d threads attached while frozen, cgroup thawed after %v", f.dir, n, time.Since(start))
	return nil
}

// interruptCgroup attaches and interrupts every thread of the frozen
// cgroup, and returns how many.
func (d *dumper) interruptCgroup(f *cgroupFreezer) (int, error) {
	pids, err := f.procs()
	if err != nil {
		return 0, err
	}
	self := os.Getpid()
	n := 0
	for _, pid := range pids {
		if pid == self {
			return n, fmt.Errorf("freeze_cgroup %s: cryo itself is in it", f.dir)
		}
		tids, err := proc.Tasks(pid)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // a zombie reaped while frozen
			}
			return n, fmt.Errorf("freeze_cgroup %s: process %d: %w", f.dir, pid, err)
		}
		for _, tid := range tids {
			if err := d.tr.Interrupt(pid, tid); err != nil {
				if errors.Is(err, unix.ESRCH) {
					continue // a zombie thread
				}
				if errors.Is(err, unix.EPERM) {
					return n, fmt.Errorf("freeze_cgroup %s: process %d: not allowed to trace it (already traced, or not ours): %w", f.dir, pid, err)
				}
				return n, fmt.Errorf("freeze_cgroup %s: process %d: %w", f.dir, pid, err)
			}
			n++
		}
	}
	return n, nil
}

// releaseFrozen lets go of the cgroup's threads the walk did not take
// (processes of the cgroup outside the tree).
func (d *dumper) releaseFrozen(f *cgroupFreezer) {
	n, err := d.tr.ReleaseInterrupted()
	if n > 0 {
		d.logf("freeze_cgroup %s: %d threads of it outside the tree let go", f.dir, n)
	}
	if err != nil {
		d.logf("warning: freeze_cgroup %s: %v", f.dir, err)
	}
}
