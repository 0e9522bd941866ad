package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// Environment variables understood by the suite.
const (
	// envCryoBin names an already built cryo binary to test instead of
	// building ./cmd/cryo.
	envCryoBin = "CRYO_BIN"
	// envNoCR=1 skips dump/restore: the workloads are only started and
	// sent SIGTERM, to check that they pass on their own. Tests that need
	// cryo itself are skipped. A developer aid, not used in CI.
	envNoCR = "CRYO_E2E_NO_CR"
	// envCorrupt=1 makes every workload damage the state it checks after
	// SIGTERM (WL_CORRUPT=1) and inverts the verdict: the test then passes
	// only if the workload reports FAIL. A developer aid to see that the
	// checks can fail; meant to be used with CRYO_E2E_NO_CR=1.
	envCorrupt = "CRYO_E2E_CORRUPT"
)

var (
	repoRoot string
	cryoBin  string // absolute path, symlinks resolved
	binDir   string
	isRoot   bool
	noCR     bool
	corrupt  bool

	// workloadBins[name][linkage] = path; linkage "dynamic" or "static".
	workloadBins = map[string]map[string]string{}
	// staticSkip[name] = why the static build of a workload is missing.
	staticSkip = map[string]string{}
)

const (
	linkDynamic = "dynamic"
	linkStatic  = "static"
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	isRoot = os.Geteuid() == 0
	noCR = os.Getenv(envNoCR) == "1"

	// Descriptors inherited from whoever started `go test` (a CI runner's
	// pipes, say) must not leak into the workloads: cryo would have to dump
	// them. exec.Cmd passes on every fd without FD_CLOEXEC.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: close_range(CLOEXEC): %v\n", err)
		return 2
	}
	corrupt = os.Getenv(envCorrupt) == "1"

	tmp, err := os.MkdirTemp("", "cryo-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	defer os.RemoveAll(tmp)
	// The workloads may run under other uids (creds test).
	if err := os.Chmod(tmp, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}

	repoRoot, err = findRepoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}

	switch {
	case os.Getenv(envCryoBin) != "":
		cryoBin, err = filepath.Abs(os.Getenv(envCryoBin))
		if err == nil {
			cryoBin, err = filepath.EvalSymlinks(cryoBin)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: %s: %v\n", envCryoBin, err)
			return 2
		}
		fmt.Printf("e2e: testing %s=%s\n", envCryoBin, cryoBin)
	case noCR:
		fmt.Printf("e2e: %s=1: not building cryo, workloads run without checkpoint/restore\n", envNoCR)
	default:
		cryoBin = filepath.Join(tmp, "cryo")
		cmd := exec.Command("go", "build", "-o", cryoBin, "./cmd/cryo")
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			fmt.Fprintf(os.Stderr, "e2e: FAIL: cannot build cryo (CGO_ENABLED=0 go build -o %s ./cmd/cryo in %s): %v\n%s\n",
				cryoBin, repoRoot, err, out)
			fmt.Fprintf(os.Stderr, "e2e: (set %s=/path/to/cryo to test a prebuilt binary)\n", envCryoBin)
			return 1
		}
	}

	binDir = filepath.Join(tmp, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 2
	}
	if err := buildWorkloads(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: FAIL: %v\n", err)
		return 1
	}

	// Processes restored with -d are reparented when cryo exits: as a
	// subreaper the test process gets them, can reap them and learn their
	// exit status, and no zombie is left with init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: PR_SET_CHILD_SUBREAPER: %v\n", err)
		return 2
	}
	if !isRoot {
		fmt.Fprintf(os.Stderr, "e2e: not running as root (euid %d): the tests that need root will FAIL\n", os.Geteuid())
	}
	return m.Run()
}

// findRepoRoot walks up from the working directory to the go.mod of the
// cryo module.
func findRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.Contains(data, []byte("module github.com/cryo-cr/cryo")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("cannot find the go.mod of github.com/cryo-cr/cryo above the working directory")
		}
		dir = parent
	}
}

// buildWorkloads compiles every testdata/*.c twice: dynamic and static.
// A failing dynamic build is fatal; a failing static build only makes the
// static subtests of that workload skip.
func buildWorkloads() error {
	srcs, err := filepath.Glob(filepath.Join(repoRoot, "e2e", "testdata", "*.c"))
	if err != nil {
		return err
	}
	if len(srcs) == 0 {
		return fmt.Errorf("no workloads in e2e/testdata")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		return fmt.Errorf("gcc is needed to build the workloads: %v", err)
	}
	sort.Strings(srcs)

	type job struct{ src, name, link string }
	var jobs []job
	for _, src := range srcs {
		name := strings.TrimSuffix(filepath.Base(src), ".c")
		workloadBins[name] = map[string]string{}
		jobs = append(jobs, job{src, name, linkDynamic}, job{src, name, linkStatic})
	}

	var (
		mu   sync.Mutex
		errs []string
		wg   sync.WaitGroup
		ch   = make(chan job)
	)
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				out := filepath.Join(binDir, j.name+"."+map[string]string{linkDynamic: "dyn", linkStatic: "static"}[j.link])
				args := []string{"-O1", "-g", "-pthread", "-Wall", "-o", out, j.src}
				args = append(args, ldlibs(j.src)...)
				if j.link == linkStatic {
					args = append([]string{"-static"}, args...)
				}
				cmd := exec.Command("gcc", args...)
				cmd.Dir = filepath.Dir(j.src)
				msg, err := cmd.CombinedOutput()
				mu.Lock()
				switch {
				case err == nil:
					workloadBins[j.name][j.link] = out
				case j.link == linkStatic:
					reason := fmt.Sprintf("static build of %s failed: %v: %s", j.name, err, firstLine(string(msg)))
					staticSkip[j.name] = reason
					fmt.Printf("e2e: %s (static subtests of %s will be skipped)\n", reason, j.name)
				default:
					errs = append(errs, fmt.Sprintf("gcc %s: %v\n%s", strings.Join(args, " "), err, msg))
				}
				mu.Unlock()
			}
		}()
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("cannot build the workloads:\n%s", strings.Join(errs, "\n"))
	}
	return nil
}

// ldlibs returns the libraries a workload links with, from its line
// "e2e-ldlibs: -lfoo ..." (e.g. sqlite_lock.c needs libsqlite3).
func ldlibs(src string) []string {
	b, err := os.ReadFile(src)
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if _, v, ok := strings.Cut(line, "e2e-ldlibs:"); ok {
			return strings.Fields(v)
		}
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// requireRoot fails (does not skip) a test that needs root.
func requireRoot(t *testing.T) {
	t.Helper()
	if !isRoot {
		t.Fatalf("this test needs root (euid is %d): cryo needs ptrace, PID control and credential changes; run the suite as root", os.Geteuid())
	}
}

// requireCryo skips tests about cryo's own behaviour in CRYO_E2E_NO_CR mode.
func requireCryo(t *testing.T) {
	t.Helper()
	requireRoot(t)
	if noCR {
		t.Skipf("%s=1: this test is about cryo itself", envNoCR)
	}
}

// workloadBin returns the binary of a workload for a linkage, skipping the
// test if the static build is unavailable.
func workloadBin(t *testing.T, name, link string) string {
	t.Helper()
	bins, ok := workloadBins[name]
	if !ok {
		t.Fatalf("no workload %q (testdata/%s.c)", name, name)
	}
	bin, ok := bins[link]
	if !ok {
		if link == linkStatic {
			t.Skip(staticSkip[name])
		}
		t.Fatalf("workload %s has no %s build", name, link)
	}
	return bin
}
