package e2e

// Security of the files a root restore opens for a normal user's tree
// (issue 15, docs/security-files.md): the user (cryotest) runs the
// workload (testdata/secfiles.c), root dumps it, the user attacks the
// paths its files are reopened by, root restores. Each attack must end in
// a one-line refusal or a restore that gives the user nothing new, root's
// files untouched and nothing left behind; once the user undoes the
// attack, the same images restore. Each runs for a plain tree and for a
// tree in its own user and mount namespace (unshare -r -m).

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	ghostfile "github.com/checkpoint-restore/go-criu/v7/crit/images/ghost-file"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// secVariant is how the user's tree is started: argv before the
// workload's own.
type secVariant struct {
	name   string
	prefix []string
}

var secVariants = []secVariant{
	{"plain", nil},
	{"userns", []string{"/usr/bin/unshare", "-r", "-m"}},
}

// secTree is one run of the secfiles workload as the test user.
type secTree struct {
	t      *testing.T
	dir    string // the user's directory, the workload's cwd
	out    string // its stdout and stderr, in dir
	pid    int
	imgDir string
}

// asTestUser runs argv as the test user and fails the test if it fails.
func asTestUser(t *testing.T, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testUserCred()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v: %s", testUserName, strings.Join(argv, " "), err, out)
	}
}

// waitForLine waits until file holds a line starting with prefix.
func waitForLine(t *testing.T, file, prefix string, p *bgProc) string {
	t.Helper()
	deadline := time.Now().Add(bound(t, 30*time.Second))
	for {
		if l := findLine(readString(file), prefix); l != "" {
			return l
		}
		if p != nil && p.Exited() {
			t.Fatalf("exited before printing %q: %s", prefix, clip(readString(file), 2000))
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q line in %s: %s", prefix, file, clip(readString(file), 2000))
		}
		time.Sleep(pollInterval)
	}
}

// rootSecret makes a root-only file (a stand-in for /etc/shadow) in a
// root directory the user can search, and returns its path and a check
// that it is untouched.
func rootSecret(t *testing.T) (string, func(when string)) {
	t.Helper()
	dir := rootDir(t)
	path := filepath.Join(dir, "shadow")
	want := []byte("root secret\n")
	if err := os.WriteFile(path, want, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, func(when string) {
		t.Helper()
		var st unix.Stat_t
		got, err := os.ReadFile(path)
		if err != nil || unix.Lstat(path, &st) != nil {
			t.Fatalf("%s: root's file %s: %v", when, path, err)
		}
		if !bytes.Equal(got, want) || st.Uid != 0 || st.Mode != unix.S_IFREG|0o600 || st.Nlink != 1 {
			t.Errorf("%s: root's file %s was touched: %q, uid %d, mode %#o, %d links", when, path, got, st.Uid, st.Mode, st.Nlink)
		}
	}
}

// rootDir makes a root directory, mode 0755, the user can search but not
// write (a stand-in for /etc).
func rootDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cryo-root-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// startSecTree starts secfiles MODE as the test user in a fresh directory
// of theirs, after setup made its files there, and dumps it (killed).
func startSecTree(t *testing.T, v secVariant, mode string, setup func(dir string)) *secTree {
	t.Helper()
	requireCryo(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	bin := workloadBin(t, "secfiles", linkDynamic)
	requireUserCanExec(t, bin)
	s := &secTree{t: t, dir: usernsDir(t, 0o755), imgDir: t.TempDir()}
	s.out = filepath.Join(s.dir, "out")
	if setup != nil {
		setup(s.dir)
	}
	argv := append(append([]string(nil), v.prefix...), bin, mode)
	p, err := startBg(t, "secfiles", userCommand(t, s.dir, s.out, argv...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill(t) })
	waitForLine(t, s.out, "READY", p)
	s.pid = p.Pid()
	dump(t, s.pid, s.imgDir)
	if !p.Wait(bound(t, 30*time.Second)) {
		t.Fatalf("the dumped tree %d is still running", s.pid)
	}
	return s
}

// restore runs a root restore of the images, detached; log names its log.
func (s *secTree) restore(log string) cryoResult {
	s.t.Helper()
	if err := waitPidFree(s.pid, bound(s.t, 30*time.Second)); err != nil {
		s.t.Fatal(err)
	}
	return runCryo(s.t, "restore", "-D", s.imgDir, "-d", "-v", "4", "-o", log)
}

// finish stops a restored tree and returns whether it printed PASS.
func (s *secTree) finish() {
	s.t.Helper()
	before := strings.Count(readString(s.out), "\nPASS")
	unix.Kill(s.pid, unix.SIGTERM)
	if err := waitPidFree(s.pid, bound(s.t, 30*time.Second)); err != nil {
		s.t.Fatal(err)
	}
	out := readString(s.out)
	if strings.Count(out, "\nPASS") != before+1 {
		s.t.Errorf("the restored process did not pass its checks:\n%s", clip(out, 3000))
	}
}

// refused checks that a restore was refused in one line naming what, and
// left no process behind. A restore that went through instead is stopped
// and reported with what the process saw.
func (s *secTree) refused(res cryoResult, what ...string) {
	s.t.Helper()
	if res.ExitCode == 0 && !res.TimedOut {
		unix.Kill(s.pid, unix.SIGTERM)
		waitPidFree(s.pid, bound(s.t, 30*time.Second))
		s.t.Fatalf("the restore was not refused; the restored process said:\n%s", clip(readString(s.out), 3000))
	}
	assertOneErrorLine(s.t, res, what...)
	logFile(s.t, filepath.Join(s.imgDir, res.Args[len(res.Args)-1]))
	if err := waitPidFree(s.pid, bound(s.t, 10*time.Second)); err != nil {
		s.t.Errorf("after the refused restore: %v", err)
	}
	checkNoStrayCryo(s.t, "after the refused restore")
}

// userData makes ./data, the user's file the open mode holds.
func userData(t *testing.T) func(dir string) {
	return func(dir string) {
		path := filepath.Join(dir, "data")
		if err := os.WriteFile(path, []byte("user data\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(path, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestE2ESecFilesSymlinkSwap (H1): the user replaces the file their
// process holds open with a symlink to a root-only file. The restore is
// refused in one line naming the file; root's file is untouched; once the
// user puts their file back, the same images restore and the process
// finds its own file.
func TestE2ESecFilesSymlinkSwap(t *testing.T) {
	for _, v := range secVariants {
		t.Run(v.name, func(t *testing.T) {
			secret, untouched := rootSecret(t)
			s := startSecTree(t, v, "open", userData(t))
			data := filepath.Join(s.dir, "data")
			asTestUser(t, "mv", data, data+".orig")
			asTestUser(t, "ln", "-s", secret, data)
			s.refused(s.restore("restore-attack.log"), data, "symbolic link")
			untouched("after the restore")
			asTestUser(t, "rm", data)
			asTestUser(t, "mv", data+".orig", data)
			if res := s.restore("restore.log"); res.ExitCode != 0 {
				t.Fatalf("restore with the user's file back: %s", res)
			}
			s.finish()
			untouched("at the end")
		})
	}
}

// TestE2ESecFilesFifo (M3): a FIFO where the images say regular file (held
// read-only: that open of a FIFO blocks) is refused in one line, without
// blocking, nothing left behind; the next restore works once the file is
// back.
func TestE2ESecFilesFifo(t *testing.T) {
	for _, v := range secVariants {
		t.Run(v.name, func(t *testing.T) {
			s := startSecTree(t, v, "openro", userData(t))
			data := filepath.Join(s.dir, "data")
			asTestUser(t, "mv", data, data+".orig")
			asTestUser(t, "mkfifo", data)
			s.refused(s.restore("restore-fifo.log"), data, "a FIFO")
			checkDirIs(t, s.dir, "data", "data.orig", "out")
			asTestUser(t, "rm", data)
			asTestUser(t, "mv", data+".orig", data)
			if res := s.restore("restore.log"); res.ExitCode != 0 {
				t.Fatalf("restore with the user's file back: %s", res)
			}
			s.finish()
		})
	}
}

// TestE2ESecFilesDirectory (low): a directory where the images say
// regular file (held read-only, which a directory allows) is refused in
// one line; the next restore works once the file is back.
func TestE2ESecFilesDirectory(t *testing.T) {
	for _, v := range secVariants {
		t.Run(v.name, func(t *testing.T) {
			s := startSecTree(t, v, "openro", userData(t))
			data := filepath.Join(s.dir, "data")
			asTestUser(t, "mv", data, data+".orig")
			asTestUser(t, "mkdir", data)
			s.refused(s.restore("restore-dir.log"), data, "a directory")
			asTestUser(t, "rmdir", data)
			asTestUser(t, "mv", data+".orig", data)
			if res := s.restore("restore.log"); res.ExitCode != 0 {
				t.Fatalf("restore with the user's file back: %s", res)
			}
			s.finish()
		})
	}
}

// checkDirIs fails the test unless dir holds exactly names.
func checkDirIs(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// TestE2ESecFilesGhostRace (H2): the user's process holds a deleted file
// of ./sub; while root restores, a racer of the user's swaps ./sub with a
// symlink to a root directory (a stand-in for /etc) as fast as it can.
// 20 rounds: each is refused in one line or restores the process with its
// own file; never does a file appear in the root directory, and nothing
// is left in ./sub. Without the racer, the images restore.
func TestE2ESecFilesGhostRace(t *testing.T) {
	for _, v := range secVariants {
		t.Run(v.name, func(t *testing.T) {
			etc := rootDir(t)
			if err := os.WriteFile(filepath.Join(etc, "keep"), []byte("root's\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			s := startSecTree(t, v, "ghost", func(dir string) {
				sub := filepath.Join(dir, "sub")
				if err := os.Mkdir(sub, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(sub, testUID, testGID); err != nil {
					t.Fatal(err)
				}
			})
			sub, evil := filepath.Join(s.dir, "sub"), filepath.Join(s.dir, "evil")
			asTestUser(t, "ln", "-s", etc, evil)
			racer := workloadBin(t, "secrace", linkDynamic)
			requireUserCanExec(t, racer)
			var refusedN, restoredN int
			for round := 0; round < 20; round++ {
				raceOut := filepath.Join(t.TempDir(), "race")
				rp, err := startBg(t, "secrace", userCommand(t, s.dir, raceOut, racer, sub, evil))
				if err != nil {
					t.Fatal(err)
				}
				waitForLine(t, raceOut, "RACING", rp)
				res := s.restore(fmt.Sprintf("restore-race-%d.log", round))
				unix.Kill(rp.Pid(), unix.SIGTERM)
				if !rp.Wait(bound(t, 30*time.Second)) {
					t.Fatal("the racer did not stop")
				}
				t.Logf("round %d: %s", round, strings.TrimSpace(readString(raceOut)))
				if fi, err := os.Lstat(sub); err == nil && fi.Mode()&os.ModeSymlink != 0 {
					if err := unix.Renameat2(unix.AT_FDCWD, sub, unix.AT_FDCWD, evil, unix.RENAME_EXCHANGE); err != nil {
						t.Fatal(err)
					}
				}
				if res.ExitCode == 0 {
					restoredN++
					s.finish()
				} else {
					refusedN++
					s.refused(res, "sub")
				}
				checkDirIs(t, etc, "keep")
				checkDirIs(t, sub)
				checkDirIs(t, s.dir, "evil", "out", "sub")
				if t.Failed() {
					t.Fatalf("round %d: %s", round, res)
				}
			}
			t.Logf("20 rounds with the racer: %d refused, %d restored", refusedN, restoredN)
			if res := s.restore("restore.log"); res.ExitCode != 0 {
				t.Fatalf("restore without the racer: %s", res)
			}
			s.finish()
			checkDirIs(t, sub)
			checkDirIs(t, etc, "keep")
		})
	}
}

// TestE2ESecFilesSparseGhosts (M2): four deleted sparse files of 60 MiB
// each come back streamed from the images, holes kept: the images and
// cryo's memory stay small. Ghosts that claim more than the budget in
// all are refused in one line before anything is made.
func TestE2ESecFilesSparseGhosts(t *testing.T) {
	s := startSecTree(t, secVariants[0], "sparse", nil)
	var blocks int64
	filepath.Walk(s.imgDir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			blocks += fi.Sys().(*syscall.Stat_t).Blocks
		}
		return nil
	})
	t.Logf("images: %d KiB on disk", blocks/2)
	if blocks*512 > 64<<20 {
		t.Errorf("the images of four sparse 60 MiB files take %d MiB on disk", blocks*512>>20)
	}
	if err := waitPidFree(s.pid, bound(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	cmd, stdout, stderr := cryoCommand(t, "restore", "-D", s.imgDir, "-d", "-v", "4", "-o", "restore.log")
	start := time.Now()
	if err := cmd.Run(); err != nil {
		logFile(t, filepath.Join(s.imgDir, "restore.log"))
		t.Fatalf("restore: %v: %s%s", err, readString(stdout), readString(stderr))
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
	t.Logf("restore of 240 MiB of sparse deleted files: %v, peak memory %d MiB", time.Since(start), rss>>10)
	if rss > 160<<10 {
		t.Errorf("cryo restore peaked at %d MiB of memory for 240 MiB of deleted files: their contents are not streamed", rss>>10)
	}
	s.finish()
	checkDirIs(t, s.dir, "out")

	// Two ghosts claiming 1 GiB each: over the budget of all ghosts.
	dir, err := image.Open(s.imgDir)
	if err != nil {
		t.Fatal(err)
	}
	ghosts, _ := filepath.Glob(filepath.Join(s.imgDir, "ghost-file-*.img"))
	if len(ghosts) != 4 {
		t.Fatalf("%d ghost images, want 4", len(ghosts))
	}
	for _, g := range ghosts[:2] {
		id, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(g), "ghost-file-"), ".img"))
		if err != nil {
			t.Fatal(err)
		}
		e, data, err := dir.OpenGhost(uint32(id))
		if err != nil {
			t.Fatal(err)
		}
		data.Close()
		big := proto.Clone(e).(*ghostfile.GhostFileEntry)
		big.Size = proto.Uint64(image.MaxGhostBytes)
		if err := dir.WriteGhostFrom(uint32(id), big, io.LimitReader(zeroReader{}, image.MaxGhostBytes)); err != nil {
			t.Fatal(err)
		}
	}
	s.refused(s.restore("restore-budget.log"), "ghost-file-", "total over")
	checkDirIs(t, s.dir, "out")
}

// zeroReader reads zeros forever.
type zeroReader struct{}

func (zeroReader) Read(b []byte) (int, error) {
	clear(b)
	return len(b), nil
}

// TestE2ESecFilesChroot (issue 11): a process of the user's chrooted into
// a directory of theirs (chroot --userspec) comes back with the same
// root and working directory, its executable and mappings and its open
// file, each resolved as the user and found inside the chroot.
func TestE2ESecFilesChroot(t *testing.T) {
	requireCryo(t)
	ensureTestUser(t)
	static := workloadBin(t, "secfiles", linkStatic)
	jail := usernsDir(t, 0o755)
	userData(t)(jail)
	bin, err := os.ReadFile(static)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jail, "w"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &secTree{t: t, dir: jail, out: filepath.Join(jail, "out"), imgDir: t.TempDir()}
	cmd := userCommand(t, jail, s.out, "/usr/sbin/chroot", "--userspec=4242:4242", jail, "/w", "open")
	cmd.SysProcAttr.Credential = nil // chroot(1) needs root, then becomes the user
	p, err := startBg(t, "chroot secfiles", cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.kill(t) })
	waitForLine(t, s.out, "READY", p)
	s.pid = p.Pid()
	fsView := func(when string) {
		t.Helper()
		for _, l := range []string{"root", "cwd"} {
			if got, err := os.Readlink(fmt.Sprintf("/proc/%d/%s", s.pid, l)); err != nil || got != jail {
				t.Errorf("%s: %s of %d is %q (%v), want %s", when, l, s.pid, got, err, jail)
			}
		}
		if got, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", s.pid)); err != nil || got != filepath.Join(jail, "w") {
			t.Errorf("%s: exe of %d is %q (%v), want %s/w", when, s.pid, got, err, jail)
		}
		st := procStatus(fmt.Sprintf("/proc/%d/status", s.pid))
		if f := strings.Fields(st["Uid"]); len(f) != 4 || f[0] != strconv.Itoa(testUID) {
			t.Errorf("%s: uids of %d are %q, want %d", when, s.pid, st["Uid"], testUID)
		}
	}
	fsView("before the dump")
	dump(t, s.pid, s.imgDir)
	if !p.Wait(bound(t, 30*time.Second)) {
		t.Fatalf("the dumped process %d is still running", s.pid)
	}
	if res := s.restore("restore.log"); res.ExitCode != 0 {
		logFile(t, filepath.Join(s.imgDir, "restore.log"))
		t.Fatalf("restore: %s", res)
	}
	fsView("after the restore")
	s.finish()
}
