package e2e

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
)

// incFigures are the figures of one incremental dump of bench_mem.
type incFigures struct {
	preFreeze, freeze time.Duration // frozen_time of the pre-dump, and of the dump
	full, written     uint64        // pages bytes of the pre-dump, and of the dump
}

// dumpStatsOf reads the dump entry of dir's stats-dump.
func dumpStatsOf(dir string) (*stats.DumpStatsEntry, error) {
	d, err := image.Open(dir)
	if err != nil {
		return nil, err
	}
	var st stats.StatsEntry
	if err := d.ReadOne("stats-dump", "STATS", &st); err != nil {
		return nil, err
	}
	if st.GetDump() == nil {
		return nil, errors.New("stats-dump has no dump entry")
	}
	return st.GetDump(), nil
}

// incremental pre-dumps a bench_mem of mib MiB, makes it rewrite a tenth
// of its pages, then dumps it (killing it) with the pre-dump as parent,
// and returns both freezes and the bytes each wrote (cryo only: CRIU needs
// soft-dirty bits, which this kernel lacks).
func (t benchTool) incremental(b *testing.B, mib int) (incFigures, error) {
	var f incFigures
	work, err := os.MkdirTemp("/dev/shm", "cryo-bench-")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(work)
	cmd, err := benchStart(b, work, mib)
	if err != nil {
		return f, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	pid := fmt.Sprint(cmd.Process.Pid)
	d1, d2 := filepath.Join(work, "d1"), filepath.Join(work, "d2")
	if _, err := t.run("pre-dump", "-t", pid, "-D", d1, "-o", "pre.log", "-v4"); err != nil {
		return f, fmt.Errorf("%v (%s)", err, logTail(d1, "pre.log"))
	}
	out := filepath.Join(work, "out")
	deadline := time.Now().Add(60 * time.Second)
	// SIGUSR1 again until it answers (a signal just before its pause()
	// is not seen until the next one).
	for !strings.Contains(readString(out), "TOUCHED") {
		if time.Now().After(deadline) {
			return f, fmt.Errorf("bench_mem did not rewrite its pages: %s", readString(out))
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := t.run("dump", "-t", pid, "-D", d2, "-o", "dump.log", "-v4", "--prev-images-dir", "../d1", "--track-mem"); err != nil {
		return f, fmt.Errorf("%v (%s)", err, logTail(d2, "dump.log"))
	}
	for i, dir := range []string{d1, d2} {
		st, err := dumpStatsOf(dir)
		if err != nil {
			return f, err
		}
		fr := time.Duration(st.GetFrozenTime()) * time.Microsecond
		bytes := st.GetPagesWritten() * uint64(os.Getpagesize())
		if i == 0 {
			f.preFreeze, f.full = fr, bytes
		} else {
			f.freeze, f.written = fr, bytes
		}
	}
	return f, nil
}
