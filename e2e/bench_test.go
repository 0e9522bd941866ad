package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
)

// benchReps is how many times each figure is measured; the table shows the
// median.
const benchReps = 3

// BenchmarkSpeed prints the speed table of docs/speed.md for cryo, and for
// CRIU when a criu binary is found in $CRIU_BIN or on PATH: dump and
// restore of 1 GiB and 64 MiB of touched anonymous memory (images on
// tmpfs, /dev/shm), the freeze of `dump --leave-running` at 1 GiB, and the
// wall time of dump + restore of a small process tree. Each figure is the
// median of benchReps runs; every restored process checks its memory.
// `make bench` runs it once (-benchtime 1x); it measures, it asserts no
// speed.
func BenchmarkSpeed(b *testing.B) {
	if os.Getuid() != 0 {
		b.Fatal("the benchmark dumps and restores processes: run it as root")
	}
	tools := []benchTool{{name: "cryo", bin: cryoBin}}
	criu := os.Getenv("CRIU_BIN")
	if criu == "" {
		criu, _ = exec.LookPath("criu")
	}
	if criu != "" {
		t := benchTool{name: "criu", bin: criu, criu: true}
		if err := t.works(b); err != nil {
			fmt.Printf("criu (%s) does not work on this machine, no CRIU figures: %v\n", criu, err)
		} else {
			tools = append(tools, t)
		}
	} else {
		fmt.Println("no criu binary (CRIU_BIN or PATH): no CRIU figures")
	}
	var rows []benchRow
	for _, t := range tools {
		rows = append(rows, t.measure(b))
	}
	fmt.Printf("\nmedian of %d runs; images on /dev/shm; %s\n", benchReps, benchMachine())
	fmt.Printf("| tool | dump 1 GiB | dump 1 GiB, until the images are complete | restore 1 GiB | freeze, dump -R 1 GiB | dump 64 MiB | restore 64 MiB | small tree dump+restore |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		images := "not reported"
		if r.images1G > 0 {
			images = rate(r.images1G, 1<<30)
		}
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.tool,
			rate(r.dump1G, 1<<30), images, rate(r.restore1G, 1<<30), ms(r.freeze1G),
			rate(r.dump64M, 64<<20), rate(r.restore64M, 64<<20), ms(r.smallTree))
	}
	fmt.Println("dump 1 GiB: until the command returns, the tree killed and gone; until the images are complete: from the start of the freeze (cryo's log).")
	for _, r := range rows {
		if r.note != "" {
			fmt.Printf("%s: %s\n", r.tool, r.note)
		}
	}
	// Incremental: cryo only (CRIU's pre-dump needs soft-dirty bits).
	var inc []incFigures
	for i := 0; i < benchReps; i++ {
		f, err := tools[0].incremental(b, 1024)
		if err != nil {
			b.Fatalf("cryo, pre-dump + dump of 1 GiB: %v", err)
		}
		inc = append(inc, f)
	}
	slices.SortFunc(inc, func(a, b incFigures) int { return int(a.freeze - b.freeze) })
	m := inc[len(inc)/2]
	fmt.Printf("cryo, 1 GiB, pre-dump then 10%% of the pages written then dump (the run of median final freeze): pre-dump freeze %s, %d MiB written; final dump (kills) freeze %s, %d MiB written\n",
		ms(m.preFreeze), m.full>>20, ms(m.freeze), m.written>>20)
}

// benchTool is cryo or CRIU, run by the same commands (CRIU's flags).
type benchTool struct {
	name, bin string
	criu      bool
}

// benchRow holds the medians of one tool.
type benchRow struct {
	tool                           string
	dump1G, restore1G, freeze1G    time.Duration
	images1G                       time.Duration // median "images complete after" (cryo only)
	dump64M, restore64M, smallTree time.Duration
	note                           string
}

func ms(d time.Duration) string { return fmt.Sprintf("%.0f ms", float64(d.Microseconds())/1000) }

func rate(d time.Duration, bytes float64) string {
	return fmt.Sprintf("%.2f s, %.2f GB/s", d.Seconds(), bytes/d.Seconds()/1e9)
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

// benchMachine describes the machine in one line.
func benchMachine() string {
	var u syscall.Utsname
	syscall.Uname(&u)
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	load := strings.Fields(readString("/proc/loadavg"))
	if len(load) > 0 {
		load = load[:1]
	}
	return fmt.Sprintf("Linux %s, %d CPUs, load %s", rel, countCPUs(), strings.Join(load, ""))
}

func countCPUs() int {
	n := 0
	for _, l := range strings.Split(readString("/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(l, "processor") {
			n++
		}
	}
	return n
}

// works dumps and restores a small bench_mem once: Debian's criu 3.17
// fails on recent kernels, which the table must say in one line.
func (t benchTool) works(b *testing.B) error {
	_, _, err := t.dumpRestore(b, 4, nil, true)
	return err
}

// measure takes the figures of one tool.
func (t benchTool) measure(b *testing.B) benchRow {
	r := benchRow{tool: t.name}
	var d1, r1, f1, d64, r64, small, img1 []time.Duration
	var notes []string
	for i := 0; i < benchReps; i++ {
		d, rs, err := t.dumpRestore(b, 1024, nil, i == 0)
		if err != nil {
			b.Fatalf("%s, 1 GiB: %v", t.name, err)
		}
		d1, r1 = append(d1, d), append(r1, rs)
		if note := t.killNote(); note != "" && i == 0 {
			notes = append(notes, note)
		}
		if im := t.imagesComplete(); im > 0 {
			img1 = append(img1, im)
		}
		d, rs, err = t.dumpRestore(b, 64, nil, i == 0)
		if err != nil {
			b.Fatalf("%s, 64 MiB: %v", t.name, err)
		}
		d64, r64 = append(d64, d), append(r64, rs)
		f, err := t.freeze(b, 1024)
		if err != nil {
			b.Fatalf("%s, dump --leave-running of 1 GiB: %v", t.name, err)
		}
		f1 = append(f1, f)
		s, err := t.smallTree(b)
		if err != nil {
			b.Fatalf("%s, small tree: %v", t.name, err)
		}
		small = append(small, s)
	}
	r.dump1G, r.restore1G, r.freeze1G = median(d1), median(r1), median(f1)
	if len(img1) == len(d1) {
		r.images1G = median(img1)
	}
	r.dump64M, r.restore64M, r.smallTree = median(d64), median(r64), median(small)
	r.note = strings.Join(notes, "; ")
	return r
}

// lastLog is where the log of the last 1 GiB dump is kept, for killNote.
func lastLog() string { return filepath.Join(os.TempDir(), "cryo-bench-last-dump.log") }

// killNote reports, from cryo's log of the last dump, when the images
// were complete and how long the kill took.
func (t benchTool) killNote() string {
	if t.criu {
		return ""
	}
	for _, l := range strings.Split(readString(lastLog()), "\n") {
		if i := strings.Index(l, "stats: "); i >= 0 {
			return "first 1 GiB dump: " + l[i+len("stats: "):]
		}
	}
	return ""
}

// imagesCompleteRe finds when the images were complete in cryo's log.
var imagesCompleteRe = regexp.MustCompile(`images complete after ([0-9.]+) ms`)

// imagesComplete is when the last 1 GiB dump's images were complete, from
// the start of the freeze, as cryo's log says (0 for CRIU, whose log does
// not say it).
func (t benchTool) imagesComplete() time.Duration {
	if t.criu {
		return 0
	}
	m := imagesCompleteRe.FindStringSubmatch(readString(lastLog()))
	if m == nil {
		return 0
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0
	}
	return time.Duration(v * float64(time.Millisecond))
}

// benchStart starts bench_mem holding mib MiB in its own session, output
// to work/out, and waits for READY.
func benchStart(b *testing.B, work string, mib int) (*exec.Cmd, error) {
	bin := workloadBins["bench_mem"][linkDynamic]
	if bin == "" {
		b.Fatal("bench_mem workload was not built")
	}
	out := filepath.Join(work, "out")
	of, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer of.Close()
	cmd := exec.Command(bin, fmt.Sprint(mib))
	cmd.Stdout, cmd.Stderr, cmd.Dir = of, of, work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(120 * time.Second)
	for !strings.Contains(readString(out), "READY") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, fmt.Errorf("workload not ready: %s", readString(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, nil
}

// run runs the tool with args and returns how long it took.
func (t benchTool) run(args ...string) (time.Duration, error) {
	t0 := time.Now()
	msg, err := exec.Command(t.bin, args...).CombinedOutput()
	d := time.Since(t0)
	if err != nil {
		return d, fmt.Errorf("%s %s: %v: %s", t.name, args[0], err, lastLine(string(msg)))
	}
	return d, nil
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// logTail is the last error-looking line of a tool's log in dir.
func logTail(dir, name string) string {
	var last string
	for _, l := range strings.Split(readString(filepath.Join(dir, name)), "\n") {
		if strings.Contains(l, "Error") || strings.Contains(l, "error") {
			last = strings.TrimSpace(l)
		}
	}
	return last
}

// dumpRestore dumps (killing) and restores a bench_mem of mib MiB and
// returns both durations; with check, the restored process verifies its
// memory (else it is killed: a 1 GiB check takes seconds here).
func (t benchTool) dumpRestore(b *testing.B, mib int, extra []string, check bool) (time.Duration, time.Duration, error) {
	work, err := os.MkdirTemp("/dev/shm", "cryo-bench-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(work)
	cmd, err := benchStart(b, work, mib)
	if err != nil {
		return 0, 0, err
	}
	pid := cmd.Process.Pid
	dir := filepath.Join(work, "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, err
	}
	d, err := t.run(append([]string{"dump", "-t", fmt.Sprint(pid), "-D", dir, "-o", "dump.log", "-v4"}, extra...)...)
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return 0, 0, fmt.Errorf("%v (%s)", err, logTail(dir, "dump.log"))
	}
	cmd.Wait()
	if data, err := os.ReadFile(filepath.Join(dir, "dump.log")); err == nil && mib == 1024 {
		os.WriteFile(lastLog(), data, 0o600)
	}
	if err := waitPidFree(pid, 60*time.Second); err != nil {
		return 0, 0, err
	}
	r, err := t.run("restore", "-D", dir, "-d", "-o", "restore.log", "-v4")
	if err != nil {
		return 0, 0, fmt.Errorf("%v (%s)", err, logTail(dir, "restore.log"))
	}
	if !check {
		syscall.Kill(pid, syscall.SIGKILL)
		_, err := waitForeign(pid, 60*time.Second)
		return d, r, err
	}
	out := filepath.Join(work, "out")
	deadline := time.Now().Add(120 * time.Second)
	// SIGTERM again until it answers: a signal sent the instant a tool
	// lets the process go must not hang the benchmark.
	for !strings.Contains(readString(out), "PASS") {
		if strings.Contains(readString(out), "FAIL") || time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			waitForeign(pid, 60*time.Second)
			return 0, 0, fmt.Errorf("restored workload did not pass: %s", readString(out))
		}
		syscall.Kill(pid, syscall.SIGTERM)
		time.Sleep(200 * time.Millisecond)
	}
	_, err = waitForeign(pid, 60*time.Second)
	return d, r, err
}

// freeze dumps a bench_mem of mib MiB with --leave-running and returns the
// frozen time the tool wrote in stats-dump.
func (t benchTool) freeze(b *testing.B, mib int) (time.Duration, error) {
	work, err := os.MkdirTemp("/dev/shm", "cryo-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	cmd, err := benchStart(b, work, mib)
	if err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	dir := filepath.Join(work, "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return 0, err
	}
	if _, err := t.run("dump", "-t", fmt.Sprint(cmd.Process.Pid), "-D", dir, "-o", "dump.log", "-v4", "--leave-running"); err != nil {
		return 0, fmt.Errorf("%v (%s)", err, logTail(dir, "dump.log"))
	}
	d, err := image.Open(dir)
	if err != nil {
		return 0, err
	}
	var st stats.StatsEntry
	if err := d.ReadOne("stats-dump", "STATS", &st); err != nil {
		return 0, err
	}
	if st.GetDump() == nil {
		return 0, errors.New("stats-dump has no dump entry")
	}
	return time.Duration(st.GetDump().GetFrozenTime()) * time.Microsecond, nil
}

// smallTree is the wall time of dump + restore of the tree_basic workload
// (7 processes, one with 3 threads), which then checks itself.
func (t benchTool) smallTree(b *testing.B) (time.Duration, error) {
	bin := workloadBins["tree_basic"][linkDynamic]
	if bin == "" {
		b.Fatal("tree_basic workload was not built")
	}
	work, err := os.MkdirTemp("/dev/shm", "cryo-bench-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(work)
	out := filepath.Join(work, "out")
	of, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(bin)
	cmd.Stdout, cmd.Stderr, cmd.Dir = of, of, work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	of.Close()
	if err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(readString(out), "READY") {
		if time.Now().After(deadline) {
			syscall.Kill(-pid, syscall.SIGKILL)
			cmd.Wait()
			return 0, fmt.Errorf("tree not ready: %s", readString(out))
		}
		time.Sleep(20 * time.Millisecond)
	}
	dir := filepath.Join(work, "images")
	if err := os.Mkdir(dir, 0o700); err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		cmd.Wait()
		return 0, err
	}
	d, err := t.run("dump", "-t", fmt.Sprint(pid), "-D", dir, "-o", "dump.log", "-v4")
	if err != nil {
		syscall.Kill(-pid, syscall.SIGKILL)
		cmd.Wait()
		return 0, fmt.Errorf("%v (%s)", err, logTail(dir, "dump.log"))
	}
	cmd.Wait()
	// Every process of the tree must be gone (reaped: the test binary is
	// their subreaper) before its PIDs can be restored.
	for _, m := range treeLineRe.FindAllStringSubmatch(readString(out), -1) {
		p, _ := strconv.Atoi(m[1])
		if err := waitPidFree(p, 30*time.Second); err != nil {
			return 0, err
		}
	}
	r, err := t.run("restore", "-D", dir, "-d", "-o", "restore.log", "-v4")
	if err != nil {
		return 0, fmt.Errorf("%v (%s)", err, logTail(dir, "restore.log"))
	}
	syscall.Kill(pid, syscall.SIGTERM)
	if _, err := waitForeign(pid, 60*time.Second); err != nil {
		return 0, err
	}
	if !strings.Contains(readString(out), "PASS") {
		return 0, fmt.Errorf("restored tree did not pass: %s", readString(out))
	}
	return d + r, nil
}
