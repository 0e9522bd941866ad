package e2e

// Security of a root restore of a normal user's tree (issue 15), the
// sockets half and the files cryo makes itself. The tree runs as the real
// user cryotest (a listener of testdata/sec_sock.c), plain or in its own
// user and mount namespace; root dumps and restores it while the user
// attacks: a symbolic link in place of the socket's directory (at once, or
// swapped back and forth by a racer), a bind mount over a directory of
// root's, a planted pid file or log link, images the user can write, a
// user namespace id that names nothing. After each attack root's listener
// still holds its socket file and answers, no file appeared in root's
// directory, and the restore either refused in one line or put the user's
// socket where the user had it.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// secSetup is the stage of one test: base (root's, 0755) holds root's
// directory rootDir with a live listener of root's at rootSock, and the
// user's directory userDir (cryotest's, 0755) holding d, where the user's
// listener binds d/sock, and priv, the user's directory for bind mounts.
type secSetup struct {
	t        *testing.T
	base     string
	rootDir  string
	rootSock string
	rootIno  uint64
	userDir  string
	sockDir  string // userDir/d
	priv     string // userDir/priv
	imgDir   string // root's, 0700
	bin      string
}

// newSecSetup makes the stage and starts root's listener, which answers
// "root" to every client.
func newSecSetup(t *testing.T) *secSetup {
	t.Helper()
	requireCryo(t)
	ensureTestUser(t)
	requireUserCanExec(t, cryoBin)
	bin, err := filepath.EvalSymlinks(workloadBin(t, "sec_sock", linkDynamic))
	if err != nil {
		t.Fatal(err)
	}
	requireUserCanExec(t, bin)
	base, err := os.MkdirTemp("", "cryo-sec-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	s := &secSetup{t: t, base: base, rootDir: filepath.Join(base, "root"), userDir: filepath.Join(base, "u"), bin: bin}
	s.rootSock = filepath.Join(s.rootDir, "sock")
	s.sockDir, s.priv = filepath.Join(s.userDir, "d"), filepath.Join(s.userDir, "priv")
	for _, d := range []string{s.rootDir, s.userDir, s.sockDir, s.priv} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{s.userDir, s.sockDir, s.priv} {
		if err := os.Chown(d, testUID, testGID); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.rootSock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("root\n"))
			c.Close()
		}
	}()
	var st unix.Stat_t
	if err := unix.Lstat(s.rootSock, &st); err != nil {
		t.Fatal(err)
	}
	s.rootIno = st.Ino
	s.imgDir = filepath.Join(t.TempDir(), "images")
	if err := os.Mkdir(s.imgDir, 0o700); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkRoot checks that root's listener kept its socket file (same inode,
// root's), still answers there, and that nothing else appeared in root's
// directory.
func (s *secSetup) checkRoot(when string) {
	t := s.t
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(s.rootSock, &st); err != nil || st.Ino != s.rootIno || st.Uid != 0 {
		t.Errorf("%s: root's socket file %s: %v, inode %d (want %d), uid %d", when, s.rootSock, err, st.Ino, s.rootIno, st.Uid)
	}
	if got := secAsk(t, s.rootSock); got != "root" {
		t.Errorf("%s: root's listener at %s answers %q, want \"root\"", when, s.rootSock, got)
	}
	ents, _ := os.ReadDir(s.rootDir)
	var names []string
	for _, e := range ents {
		if n := e.Name(); n != "sock" && n != "precious" {
			names = append(names, n)
		}
	}
	if len(names) > 0 {
		t.Errorf("%s: root's directory holds %v besides its socket and file", when, names)
	}
}

// secAsk connects to a listener at path and returns the first line it
// sends ("" and a logged error if none).
func secAsk(t *testing.T, path string) string {
	t.Helper()
	line, _ := secAskCred(t, path)
	return line
}

// secAskCred also returns the listener's credentials (SO_PEERCRED).
func secAskCred(t *testing.T, path string) (string, *unix.Ucred) {
	t.Helper()
	c, err := net.DialTimeout("unix", path, bound(t, 5*time.Second))
	if err != nil {
		t.Logf("connect %s: %v", path, err)
		return "", nil
	}
	defer c.Close()
	raw, err := c.(*net.UnixConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var cred *unix.Ucred
	raw.Control(func(fd uintptr) { cred, _ = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED) })
	c.SetReadDeadline(time.Now().Add(bound(t, 5*time.Second)))
	line, _ := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), cred
}

var secReadyRe = regexp.MustCompile(`(?m)^READY pid=(\d+)`)

// startListener starts the user's listener bound to sock, as cryotest:
// plain, or (userns) under unshare -Urm, after the shell command pre
// (mounts) when not empty. It returns the listener's PID once READY.
func (s *secSetup) startListener(userns bool, pre, sock string) (int, *bgProc) {
	t := s.t
	t.Helper()
	out := filepath.Join(s.base, fmt.Sprintf("out-%d.txt", time.Now().UnixNano()))
	argv := []string{s.bin, sock}
	if userns {
		script := "exec " + s.bin + " " + sock
		if pre != "" {
			script = pre + " && " + script
		}
		argv = []string{"unshare", "-U", "-r", "-m", "sh", "-c", script}
	}
	cmd := userCommand(t, s.userDir, out, argv...)
	p, err := startBg(t, "sec_sock", cmd)
	if err != nil {
		t.Fatal(err)
	}
	for end := time.Now().Add(bound(t, readyTimeout)); ; time.Sleep(pollInterval) {
		if m := secReadyRe.FindStringSubmatch(readString(out)); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid, p
		}
		if p.Exited() || time.Now().After(end) {
			hung()
			t.Fatalf("the user's listener did not print READY (exited %v): %s", p.Exited(), readString(out))
		}
	}
}

// dumpListener dumps the listener as root and waits until it is gone.
func (s *secSetup) dumpListener(pid int, launcher *bgProc) {
	t := s.t
	t.Helper()
	dump(t, pid, s.imgDir)
	launcher.Wait(bound(t, killTimeout))
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Fatal(err)
	}
}

// restore restores the images as root (-d, with extra flags).
func (s *secSetup) restore(extra ...string) cryoResult {
	s.t.Helper()
	return runCryo(s.t, append([]string{"restore", "-D", s.imgDir, "-d", "-v", "4", "-o", "restore.log"}, extra...)...)
}

// stopRestored kills a restored tree (our child through CLONE_PARENT) and
// waits until its PID is free.
func stopRestored(t *testing.T, pid int) {
	t.Helper()
	unix.Kill(pid, unix.SIGKILL)
	if err := waitPidFree(pid, bound(t, pidFreeTimeout)); err != nil {
		t.Error(err)
	}
}

// assertNothingLeft checks a refused restore left no process at pid.
func assertNothingLeft(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(bound(t, 2*time.Second))
	for pidAlive(pid) && time.Now().Before(deadline) {
		reapZombieChildren()
		time.Sleep(pollInterval)
	}
	if pidAlive(pid) {
		t.Errorf("a process is left at pid %d after the refused restore", pid)
		stopRestored(t, pid)
	}
	checkNoStrayCryo(t, "after the refused restore")
}

// asUser runs a shell command as cryotest and fails the test if it fails.
func asUser(t *testing.T, dir, script string) {
	t.Helper()
	cmd := exec.Command("sh", "-c", script)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: testUserCred()}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as %s: %s: %v\n%s", testUserName, script, err, out)
	}
}

// TestE2ESecSockSymlinkDir: the user replaces the directory of their
// listener's socket with a symbolic link to root's directory, which holds
// a live root listener at the same name. Root's restore refuses in one
// line; root's socket file is neither removed nor replaced.
func TestE2ESecSockSymlinkDir(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "userns"}[userns], func(t *testing.T) {
			s := newSecSetup(t)
			pid, l := s.startListener(userns, "", filepath.Join(s.sockDir, "sock"))
			s.dumpListener(pid, l)
			asUser(t, s.userDir, "mv d d.old && ln -s "+s.rootDir+" d")
			res := s.restore()
			t.Logf("%s", res)
			assertOneErrorLine(t, res, "symbolic link", s.sockDir)
			assertNothingLeft(t, pid)
			s.checkRoot("after the restore")
		})
	}
}

// TestE2ESecSockSymlinkRace: a racer of the user's swaps the socket's
// directory with a symbolic link to root's directory and back, without
// pause, while root restores; several rounds. Each restore either refuses
// in one line or binds the socket in the user's own directory; root's
// listener keeps its file and answers after each.
func TestE2ESecSockSymlinkRace(t *testing.T) {
	s := newSecSetup(t)
	pid, l := s.startListener(false, "", filepath.Join(s.sockDir, "sock"))
	s.dumpListener(pid, l)
	const rounds = 12
	refused, restored := 0, 0
	for i := 0; i < rounds; i++ {
		racer := exec.Command("sh", "-c", "while :; do ln -sfn "+s.rootDir+" lnk; mv -T d real; mv -T lnk d; mv -T d lnk; mv -T real d; done")
		racer.Dir = s.userDir
		racer.SysProcAttr = &syscall.SysProcAttr{Credential: testUserCred(), Setpgid: true}
		rp, err := startBg(t, "racer", racer)
		if err != nil {
			t.Fatal(err)
		}
		res := s.restore()
		unix.Kill(-rp.Pid(), unix.SIGKILL)
		if !rp.Wait(bound(t, killTimeout)) {
			t.Fatalf("the racer did not stop")
		}
		// The user's directory back at its name, the link gone.
		asUser(t, s.userDir, "if [ -d real ]; then rm -f d; mv -T real d; fi; rm -f lnk")
		if res.ExitCode == 0 {
			restored++
			var st unix.Stat_t
			if err := unix.Lstat(filepath.Join(s.sockDir, "sock"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Uid != testUID {
				t.Errorf("round %d: restored, but %s/sock is not a socket file of the user's: %v, mode %#o, uid %d", i, s.sockDir, err, st.Mode, st.Uid)
			}
			stopRestored(t, pid)
		} else {
			refused++
			assertOneErrorLine(t, res)
			assertNothingLeft(t, pid)
		}
		s.checkRoot(fmt.Sprintf("round %d", i))
	}
	t.Logf("%d rounds: %d restored, %d refused", rounds, restored, refused)
}

// TestE2ESecSockBindMount: the user's tree has its own user and mount
// namespace, where the user's directory is bind-mounted over root's
// directory, and binds its socket there. Root's restore binds it in the
// tree's mount namespace, so in the user's directory: root's listener, at
// the same path on the host, keeps its file and answers. The restored
// listener reports the user's uid (4242) to its clients.
func TestE2ESecSockBindMount(t *testing.T) {
	s := newSecSetup(t)
	pid, l := s.startListener(true, "mount --bind "+s.priv+" "+s.rootDir, s.rootSock)
	s.checkRoot("before the dump")
	s.dumpListener(pid, l)
	res := s.restore()
	if res.ExitCode != 0 {
		logFile(t, filepath.Join(s.imgDir, "restore.log"))
		t.Fatalf("%s", res)
	}
	defer stopRestored(t, pid)
	s.checkRoot("after the restore")
	line, cred := secAskCred(t, filepath.Join(s.priv, "sock"))
	if !strings.HasPrefix(line, "uid=") || cred == nil || cred.Uid != testUID {
		t.Errorf("the restored listener, reached at %s/sock: answers %q with SO_PEERCRED %+v, want uid %d", s.priv, line, cred, testUID)
	}
}

// TestE2ESecSockPeerCred: after root's restore, the user's listener
// reports the user's uid to its clients (SO_PEERCRED), not root's: listen
// happens with the user's ids. Plain and in the tree's own user and mount
// namespace.
func TestE2ESecSockPeerCred(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "userns"}[userns], func(t *testing.T) {
			s := newSecSetup(t)
			sock := filepath.Join(s.sockDir, "sock")
			pid, l := s.startListener(userns, "", sock)
			if _, cred := secAskCred(t, sock); cred == nil || cred.Uid != testUID {
				t.Fatalf("before the dump, the listener's SO_PEERCRED is %+v, want uid %d", cred, testUID)
			}
			s.dumpListener(pid, l)
			res := s.restore()
			if res.ExitCode != 0 {
				logFile(t, filepath.Join(s.imgDir, "restore.log"))
				t.Fatalf("%s", res)
			}
			defer stopRestored(t, pid)
			line, cred := secAskCred(t, sock)
			if cred == nil || cred.Uid != testUID || cred.Gid != testGID || int(cred.Pid) != pid {
				t.Errorf("restored listener: SO_PEERCRED %+v, want pid %d uid %d gid %d", cred, pid, testUID, testGID)
			}
			if !strings.HasPrefix(line, "uid=") {
				t.Errorf("restored listener answers %q", line)
			}
			var st unix.Stat_t
			if err := unix.Lstat(sock, &st); err != nil || st.Uid != testUID {
				t.Errorf("restored socket file %s: %v, uid %d, want the user's", sock, err, st.Uid)
			}
			s.checkRoot("after the restore")
		})
	}
}

// secRootFile makes a file of root's holding "precious", which a planted
// link names; checkRootFile checks it is untouched.
func secRootFile(t *testing.T, s *secSetup) string {
	t.Helper()
	path := filepath.Join(s.rootDir, "precious")
	if err := os.WriteFile(path, []byte("precious\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func checkRootFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	var st unix.Stat_t
	if err == nil {
		err = unix.Lstat(path, &st)
	}
	if err != nil || string(data) != "precious\n" || st.Uid != 0 {
		t.Errorf("root's file %s: %v, contents %q, uid %d: it was written through a planted link", path, err, data, st.Uid)
	}
}

// TestE2ESecPidfileSymlink: the user plants a symbolic link at the path of
// root's --pidfile, to a file of root's. The restore refuses in one line
// before it starts (the pid file is created with O_EXCL|O_NOFOLLOW, as
// CRIU does); root's file is untouched. A fresh path works.
func TestE2ESecPidfileSymlink(t *testing.T) {
	s := newSecSetup(t)
	precious := secRootFile(t, s)
	pid, l := s.startListener(false, "", filepath.Join(s.sockDir, "sock"))
	s.dumpListener(pid, l)
	planted := filepath.Join(s.userDir, "restored.pid")
	asUser(t, s.userDir, "ln -s "+precious+" restored.pid")
	res := s.restore("--pidfile", planted)
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "pid file", "restored.pid")
	assertNothingLeft(t, pid)
	checkRootFile(t, precious)
	fresh := filepath.Join(t.TempDir(), "fresh.pid")
	res = s.restore("--pidfile", fresh)
	if res.ExitCode != 0 {
		t.Fatalf("%s", res)
	}
	defer stopRestored(t, pid)
	if got := strings.TrimSpace(readString(fresh)); got != strconv.Itoa(pid) {
		t.Errorf("pid file %s holds %q, want %d", fresh, got, pid)
	}
	checkRootFile(t, precious)
	s.checkRoot("after the restores")
}

// TestE2ESecLogSymlink: in an images directory the user can write (root
// vouches for the images with --trust-images, or root dumps into it), the
// user plants the log's name as a link to a file of root's. cryo refuses
// in one line and never writes through the link.
func TestE2ESecLogSymlink(t *testing.T) {
	s := newSecSetup(t)
	precious := secRootFile(t, s)
	pid, l := s.startListener(false, "", filepath.Join(s.sockDir, "sock"))
	img := filepath.Join(s.userDir, "images")
	asUser(t, s.userDir, "mkdir -m 700 images && ln -s "+precious+" images/dump.log")
	res := runCryo(t, "dump", "-t", strconv.Itoa(pid), "-D", img, "-v", "4", "-o", "dump.log")
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "log file")
	checkRootFile(t, precious)
	if !pidAlive(pid) {
		t.Fatalf("the refused dump took the listener %d down", pid)
	}
	asUser(t, s.userDir, "rm images/dump.log")
	s.imgDir = img
	s.dumpListener(pid, l)
	asUser(t, s.userDir, "ln -s "+precious+" images/restore.log")
	res = s.restore("--trust-images")
	t.Logf("%s", res)
	assertOneErrorLine(t, res, "log file")
	assertNothingLeft(t, pid)
	checkRootFile(t, precious)
}

// TestE2ESecImagesUserWritable: root refuses, in one line naming the
// cause and --trust-images, images a normal user could have written: the
// directory the user's, a file the user's, the directory writable by all,
// a parent directory the user's. With --trust-images the same images are
// restored.
func TestE2ESecImagesUserWritable(t *testing.T) {
	s := newSecSetup(t)
	pid, l := s.startListener(false, "", filepath.Join(s.sockDir, "sock"))
	s.dumpListener(pid, l)
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"directory owned by the user", func(t *testing.T, dir string) { os.Chown(dir, testUID, testGID) }, "owned by uid 4242"},
		{"a file owned by the user", func(t *testing.T, dir string) { os.Chown(filepath.Join(dir, "pstree.img"), testUID, testGID) }, "pstree.img is owned by uid 4242"},
		{"directory writable by all", func(t *testing.T, dir string) { os.Chmod(dir, 0o777) }, "writable by every user"},
		{"a file writable by its group", func(t *testing.T, dir string) {
			os.Chown(filepath.Join(dir, "inventory.img"), 0, testGID)
			os.Chmod(filepath.Join(dir, "inventory.img"), 0o660)
		}, "writable by group 4242"},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "images")
			copyDir(t, s.imgDir, dir)
			c.damage(t, dir)
			res := runCryo(t, "restore", "-D", dir, "-d", "-v", "4", "-o", "restore.log")
			t.Logf("%s", res)
			assertOneErrorLine(t, res, c.want, "--trust-images")
			assertNothingLeft(t, pid)
			res = runCryo(t, "restore", "-D", dir, "-d", "-v", "4", "-o", "restore.log", "--trust-images")
			if res.ExitCode != 0 {
				t.Fatalf("with --trust-images: %s", res)
			}
			stopRestored(t, pid)
		})
	}
	t.Run("parent_owned_by_the_user", func(t *testing.T) {
		dir := filepath.Join(s.userDir, "images")
		copyDir(t, s.imgDir, dir)
		res := runCryo(t, "restore", "-D", dir, "-d", "-v", "4", "-o", "restore.log")
		t.Logf("%s", res)
		assertOneErrorLine(t, res, s.userDir+" is owned by uid 4242", "--trust-images")
		assertNothingLeft(t, pid)
	})
	s.checkRoot("after the restores")
}

// TestE2ESecBogusUserns: the root's user namespace id in its core image
// is changed to one that names nothing (no userns image, not the one the
// inventory recorded). Root's restore refuses it in one line instead of
// taking it as cryo's own namespace. Plain and in its own user namespace.
func TestE2ESecBogusUserns(t *testing.T) {
	for _, userns := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "userns"}[userns], func(t *testing.T) {
			s := newSecSetup(t)
			pid, l := s.startListener(userns, "", filepath.Join(s.sockDir, "sock"))
			s.dumpListener(pid, l)
			editImage(t, filepath.Join(s.imgDir, fmt.Sprintf("core-%d.img", pid)), func(m proto.Message) {
				if c, ok := m.(*core.CoreEntry); ok {
					c.Ids.UserNsId = proto.Uint32(4242)
				}
			})
			res := s.restore()
			t.Logf("%s", res)
			assertOneErrorLine(t, res, "user namespace 4242 names nothing")
			assertNothingLeft(t, pid)
		})
	}
}
