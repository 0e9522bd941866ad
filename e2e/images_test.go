package e2e

import (
	"fmt"
	"io"
	"math"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/apparmor"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/autofs"
	binfmt_misc "github.com/checkpoint-restore/go-criu/v7/crit/images/binfmt-misc"
	bpfmap_data "github.com/checkpoint-restore/go-criu/v7/crit/images/bpfmap-data"
	bpfmap_file "github.com/checkpoint-restore/go-criu/v7/crit/images/bpfmap-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cgroup"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/cpuinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/creds"
	criu_core "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-core"
	criu_sa "github.com/checkpoint-restore/go-criu/v7/crit/images/criu-sa"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/eventpoll"
	ext_file "github.com/checkpoint-restore/go-criu/v7/crit/images/ext-file"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fh"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fifo"
	file_lock "github.com/checkpoint-restore/go-criu/v7/crit/images/file-lock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fs"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fsnotify"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/inventory"
	ipc_msg "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-msg"
	ipc_sem "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-sem"
	ipc_shm "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-shm"
	ipc_var "github.com/checkpoint-restore/go-criu/v7/crit/images/ipc-var"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/memfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mm"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/mnt"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/ns"
	packet_sock "github.com/checkpoint-restore/go-criu/v7/crit/images/packet-sock"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pidns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pipe"
	pipe_data "github.com/checkpoint-restore/go-criu/v7/crit/images/pipe-data"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/pstree"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	remap_file_path "github.com/checkpoint-restore/go-criu/v7/crit/images/remap-file-path"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/rlimit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/seccomp"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/signalfd"
	sk_inet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-inet"
	sk_netlink "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-netlink"
	sk_packet "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-packet"
	sk_unix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	tcp_stream "github.com/checkpoint-restore/go-criu/v7/crit/images/tcp-stream"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timens"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timer"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/timerfd"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tty"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/tun"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/userns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/utsns"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/vma"
	"golang.org/x/sys/unix"
	"google.golang.org/protobuf/proto"
)

// entryTypes maps an image magic name to the protobuf entry type, as
// go-criu's crit/cli.protoHandler does (copied: crit/cli needs cobra, which
// this module does not require). PAGEMAP and GHOST_FILE decode with a nil
// type (crit handles them specially).
var entryTypes = map[string]func() proto.Message{
	"APPARMOR":       func() proto.Message { return &apparmor.ApparmorEntry{} },
	"AUTOFS":         func() proto.Message { return &autofs.AutofsEntry{} },
	"BINFMT_MISC":    func() proto.Message { return &binfmt_misc.BinfmtMiscEntry{} },
	"BPFMAP_DATA":    func() proto.Message { return &bpfmap_data.BpfmapDataEntry{} },
	"BPFMAP_FILE":    func() proto.Message { return &bpfmap_file.BpfmapFileEntry{} },
	"CGROUP":         func() proto.Message { return &cgroup.CgroupEntry{} },
	"CORE":           func() proto.Message { return &criu_core.CoreEntry{} },
	"CPUINFO":        func() proto.Message { return &cpuinfo.CpuinfoEntry{} },
	"CREDS":          func() proto.Message { return &creds.CredsEntry{} },
	"EVENTFD_FILE":   func() proto.Message { return &eventfd.EventfdFileEntry{} },
	"EVENTPOLL_FILE": func() proto.Message { return &eventpoll.EventpollFileEntry{} },
	"EVENTPOLL_TFD":  func() proto.Message { return &eventpoll.EventpollTfdEntry{} },
	"EXT_FILES":      func() proto.Message { return &ext_file.ExtFileEntry{} },
	"FANOTIFY_FILE":  func() proto.Message { return &fsnotify.FanotifyFileEntry{} },
	"FANOTIFY_MARK":  func() proto.Message { return &fsnotify.FanotifyMarkEntry{} },
	"FDINFO":         func() proto.Message { return &fdinfo.FdinfoEntry{} },
	"FIFO":           func() proto.Message { return &fifo.FifoEntry{} },
	"FIFO_DATA":      func() proto.Message { return &pipe_data.PipeDataEntry{} },
	"FILES":          func() proto.Message { return &fdinfo.FileEntry{} },
	"FILE_LOCKS":     func() proto.Message { return &file_lock.FileLockEntry{} },
	"FS":             func() proto.Message { return &fs.FsEntry{} },
	"IDS":            func() proto.Message { return &criu_core.TaskKobjIdsEntry{} },
	"INETSK":         func() proto.Message { return &sk_inet.InetSkEntry{} },
	"INOTIFY_FILE":   func() proto.Message { return &fsnotify.InotifyFileEntry{} },
	"INOTIFY_WD":     func() proto.Message { return &fsnotify.InotifyWdEntry{} },
	"INVENTORY":      func() proto.Message { return &inventory.InventoryEntry{} },
	"IPCNS_MSG":      func() proto.Message { return &ipc_msg.IpcMsgEntry{} },
	"IPCNS_SEM":      func() proto.Message { return &ipc_sem.IpcSemEntry{} },
	"IPCNS_SHM":      func() proto.Message { return &ipc_shm.IpcShmEntry{} },
	"IPC_VAR":        func() proto.Message { return &ipc_var.IpcVarEntry{} },
	"IRMAP_CACHE":    func() proto.Message { return &fh.IrmapCacheEntry{} },
	"ITIMERS":        func() proto.Message { return &timer.ItimerEntry{} },
	"MEMFD_INODE":    func() proto.Message { return &memfd.MemfdInodeEntry{} },
	"MM":             func() proto.Message { return &mm.MmEntry{} },
	"MNTS":           func() proto.Message { return &mnt.MntEntry{} },
	"NETDEV":         func() proto.Message { return &netdev.NetDeviceEntry{} },
	"NETLINK_SK":     func() proto.Message { return &sk_netlink.NetlinkSkEntry{} },
	"NETNS":          func() proto.Message { return &netdev.NetnsEntry{} },
	"NS_FILES":       func() proto.Message { return &ns.NsFileEntry{} },
	"PACKETSK":       func() proto.Message { return &packet_sock.PacketSockEntry{} },
	"PIDNS":          func() proto.Message { return &pidns.PidnsEntry{} },
	"PIPES":          func() proto.Message { return &pipe.PipeEntry{} },
	"PIPES_DATA":     func() proto.Message { return &pipe_data.PipeDataEntry{} },
	"POSIX_TIMERS":   func() proto.Message { return &timer.PosixTimerEntry{} },
	"PSTREE":         func() proto.Message { return &pstree.PstreeEntry{} },
	"REG_FILES":      func() proto.Message { return &regfile.RegFileEntry{} },
	"REMAP_FPATH":    func() proto.Message { return &remap_file_path.RemapFilePathEntry{} },
	"RLIMIT":         func() proto.Message { return &rlimit.RlimitEntry{} },
	"SECCOMP":        func() proto.Message { return &seccomp.SeccompEntry{} },
	"SIGACT":         func() proto.Message { return &criu_sa.SaEntry{} },
	"SIGNALFD":       func() proto.Message { return &signalfd.SignalfdEntry{} },
	"SK_QUEUES":      func() proto.Message { return &sk_packet.SkPacketEntry{} },
	"STATS":          func() proto.Message { return &stats.StatsEntry{} },
	"TCP_STREAM":     func() proto.Message { return &tcp_stream.TcpStreamEntry{} },
	"TIMENS":         func() proto.Message { return &timens.TimensEntry{} },
	"TIMERFD":        func() proto.Message { return &timerfd.TimerfdEntry{} },
	"TTY_DATA":       func() proto.Message { return &tty.TtyDataEntry{} },
	"TTY_FILES":      func() proto.Message { return &tty.TtyFileEntry{} },
	"TTY_INFO":       func() proto.Message { return &tty.TtyInfoEntry{} },
	"TUNFILE":        func() proto.Message { return &tun.TunfileEntry{} },
	"UNIXSK":         func() proto.Message { return &sk_unix.UnixSkEntry{} },
	"USERNS":         func() proto.Message { return &userns.UsernsEntry{} },
	"UTSNS":          func() proto.Message { return &utsns.UtsnsEntry{} },
	"VMAS":           func() proto.Message { return &vma.VmaEntry{} },
	"PAGEMAP":        func() proto.Message { return nil },
	"GHOST_FILE":     func() proto.Message { return nil },
}

// expectedMagic is the magic of images whose file name starts with the key.
var expectedMagic = map[string]string{
	"inventory": "INVENTORY",
	"pstree":    "PSTREE",
	"core":      "CORE",
	"mm":        "MM",
	"pagemap":   "PAGEMAP",
	"fdinfo":    "FDINFO",
	"files":     "FILES",
	"fs":        "FS",
	"ids":       "IDS",
	"creds":     "CREDS",
	"reg-files": "REG_FILES",
}

// decodeImage decodes one image file with go-criu's crit.
func decodeImage(path string) (*crit.CriuImage, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	magic, err := crit.ReadMagic(f)
	if err != nil {
		return nil, fmt.Errorf("magic: %w", err)
	}
	newType, ok := entryTypes[magic]
	if !ok {
		return nil, fmt.Errorf("no entry type known for magic %s", magic)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	img, err := crit.New(f, nil, "", false, false).Decode(newType())
	if err != nil {
		return nil, fmt.Errorf("decode (magic %s): %w", magic, err)
	}
	return img, nil
}

// goodDump starts a workload (memory, dynamic), dumps it and returns it.
func goodDump(t *testing.T, threads int) *Workload {
	t.Helper()
	w := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", strconv.Itoa(threads))
	w.Checkpoint()
	return w
}

// TestE2EImagePermissions: the image directory is 0700 and every file in it
// (images and the log) 0600, even under umask 0. If -D names a missing
// directory, cryo either creates it 0700 or fails with one "cryo:" line.
func TestE2EImagePermissions(t *testing.T) {
	requireCryo(t)
	old := unix.Umask(0)
	defer unix.Umask(old)
	w := goodDump(t, 4)
	checkImageModes(t, w.ImgDir)

	w2 := startWorkload(t, workloadBin(t, "memory", linkDynamic), "-t", "1")
	missing := filepath.Join(t.TempDir(), "not-yet")
	res := tryDump(t, w2.Pid, missing)
	if res.ExitCode != 0 {
		t.Logf("dump into a missing directory failed (allowed): %s", firstLine(res.Stderr))
		assertOneErrorLine(t, res)
		w2.assertRunningUntouched("after the failed dump")
		return
	}
	w2.reapOriginal()
	checkImageModes(t, missing)
}

func checkImageModes(t *testing.T, dir string) {
	t.Helper()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %o, want 0700", dir, st.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 {
		t.Errorf("%s is empty", dir)
	}
	for _, e := range ents {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() {
			t.Errorf("%s/%s: not a regular file (%v)", dir, e.Name(), info.Mode())
			continue
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s/%s: mode %o, want 0600", dir, e.Name(), info.Mode().Perm())
		}
	}
}

// TestE2EImagesDecode: every *.img file except the raw pages-*.img (and
// stats-dump) decodes with go-criu's crit; the expected images exist (inventory, pstree, core
// of every thread, mm, pagemap, pages); pstree holds the pid and tids; file
// names match their magic; the pagemap's present pages add up to the size of
// the pages file; -o dump.log wrote the log into the image directory.
func TestE2EImagesDecode(t *testing.T) {
	requireCryo(t)
	w := goodDump(t, 4)
	ents, err := os.ReadDir(w.ImgDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	t.Logf("images: %s", strings.Join(names, " "))

	required := []string{"inventory.img", "pstree.img", fmt.Sprintf("mm-%d.img", w.Pid), fmt.Sprintf("pagemap-%d.img", w.Pid)}
	for _, tid := range w.Tids {
		required = append(required, fmt.Sprintf("core-%d.img", tid))
	}
	for _, r := range required {
		if !slices.Contains(names, r) {
			t.Errorf("missing image %s", r)
		}
	}

	decoded := map[string]*crit.CriuImage{}
	pagesFiles := 0
	for _, name := range names {
		// stats-dump/stats-restore: CRIU's names for the STATS images
		if !strings.HasSuffix(name, ".img") && name != "stats-dump" && name != "stats-restore" {
			continue
		}
		if strings.HasPrefix(name, "pages-") {
			pagesFiles++
			continue
		}
		img, err := decodeImage(filepath.Join(w.ImgDir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		decoded[name] = img
		prefix := strings.TrimSuffix(name, ".img")
		if i := strings.LastIndexByte(prefix, '-'); i > 0 {
			if _, err := strconv.Atoi(prefix[i+1:]); err == nil {
				prefix = prefix[:i]
			}
		}
		if want, ok := expectedMagic[prefix]; ok && img.Magic != want {
			t.Errorf("%s: magic %s, want %s", name, img.Magic, want)
		}
	}
	if pagesFiles == 0 {
		t.Errorf("no pages-*.img")
	}
	if st, err := os.Stat(filepath.Join(w.ImgDir, "dump.log")); err != nil || st.Size() == 0 {
		t.Errorf("dump -v 4 -o dump.log: no log written in the image directory (%v)", err)
	}

	if img := decoded["pstree.img"]; img != nil {
		found := false
		for _, e := range img.Entries {
			ps, ok := e.Message.(*pstree.PstreeEntry)
			if !ok || int(ps.GetPid()) != w.Pid {
				continue
			}
			found = true
			var tids []int
			for _, tid := range ps.GetThreads() {
				tids = append(tids, int(tid))
			}
			if !slices.Equal(sortedCopy(tids), sortedCopy(w.Tids)) {
				t.Errorf("pstree: threads %v, want %v", tids, w.Tids)
			}
			if int(ps.GetSid()) != w.Pid || int(ps.GetPgid()) != w.Pid {
				t.Errorf("pstree: sid %d pgid %d, want %d (the workload is a session leader)", ps.GetSid(), ps.GetPgid(), w.Pid)
			}
		}
		if !found {
			t.Errorf("pstree.img has no entry for pid %d", w.Pid)
		}
	}

	if img := decoded[fmt.Sprintf("pagemap-%d.img", w.Pid)]; img != nil {
		checkPagemapVsPages(t, w.ImgDir, img)
	}
}

// Pagemap entry flags (criu/include/pagemap.h).
const (
	peParent  = 1 << 0
	peLazy    = 1 << 1
	pePresent = 1 << 2
)

func checkPagemapVsPages(t *testing.T, dir string, img *crit.CriuImage) {
	t.Helper()
	if len(img.Entries) == 0 {
		t.Errorf("pagemap: no entries")
		return
	}
	head, ok := img.Entries[0].Message.(*pagemap.PagemapHead)
	if !ok {
		t.Errorf("pagemap: first entry is %T, want PagemapHead", img.Entries[0].Message)
		return
	}
	var pages uint64
	for _, e := range img.Entries[1:] {
		pe, ok := e.Message.(*pagemap.PagemapEntry)
		if !ok {
			t.Errorf("pagemap: entry %T", e.Message)
			return
		}
		if pe.GetVaddr()%4096 != 0 {
			t.Errorf("pagemap: vaddr %#x not page aligned", pe.GetVaddr())
		}
		f := pe.GetFlags()
		if f&(peParent|peLazy) == 0 && (f == 0 || f&pePresent != 0) && !pe.GetInParent() {
			pages += uint64(pe.GetNrPages())
		}
	}
	pagesFile := filepath.Join(dir, fmt.Sprintf("pages-%d.img", head.GetPagesId()))
	st, err := os.Stat(pagesFile)
	if err != nil {
		t.Errorf("pagemap head names pages_id %d: %v", head.GetPagesId(), err)
		return
	}
	if uint64(st.Size()) != pages*4096 {
		t.Errorf("pagemap lists %d present pages (%d bytes) but %s has %d bytes", pages, pages*4096, filepath.Base(pagesFile), st.Size())
	}
	// 8 MiB of patterned anonymous memory at least
	if pages < 2048 {
		t.Errorf("pagemap lists only %d present pages; the memory workload has more than 2048", pages)
	}
}

// TestE2ECorruptImages: restoring from damaged images fails cleanly: exit
// status non-zero, exactly one "cryo:" line on stderr, no panic, no process
// left at the PID, no stray cryo stub.
func TestE2ECorruptImages(t *testing.T) {
	requireCryo(t)
	w := goodDump(t, 1)
	pid := w.Pid
	core := fmt.Sprintf("core-%d.img", pid)
	mmImg := fmt.Sprintf("mm-%d.img", pid)
	pm := fmt.Sprintf("pagemap-%d.img", pid)

	cases := []struct {
		name   string
		damage func(t *testing.T, dir string)
	}{
		{"core-truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, core)
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(p, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"core-magic-zeroed", func(t *testing.T, dir string) {
			// bytes 4..8: the CORE magic after the IMG_COMMON magic
			overwrite(t, filepath.Join(dir, core), 4, make([]byte, 4))
		}},
		{"core-header-zeroed", func(t *testing.T, dir string) {
			overwrite(t, filepath.Join(dir, core), 0, make([]byte, 8))
		}},
		{"mm-garbage", func(t *testing.T, dir string) {
			garbage := make([]byte, 4096)
			rand.New(rand.NewSource(1)).Read(garbage)
			if err := os.WriteFile(filepath.Join(dir, mmImg), garbage, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"pagemap-missing", func(t *testing.T, dir string) {
			if err := os.Remove(filepath.Join(dir, pm)); err != nil {
				t.Fatal(err)
			}
		}},
		{"pagemap-absurd-nr-pages", func(t *testing.T, dir string) {
			changed := false
			editImage(t, filepath.Join(dir, pm), func(m proto.Message) {
				if pe, ok := m.(*pagemap.PagemapEntry); ok && !changed {
					pe.NrPages = proto.Uint32(math.MaxUint32)
					changed = true
				}
			})
			if !changed {
				t.Fatalf("%s has no pagemap entry to damage", pm)
			}
		}},
		{"cpu-lacks-xfeature", func(t *testing.T, dir string) {
			// The dumped threads "used" an XSAVE component no CPU has.
			editImage(t, filepath.Join(dir, "cpuinfo.img"), func(m proto.Message) {
				x := m.(*cpuinfo.CpuinfoEntry).GetX86Entry()[0]
				x.XfeaturesMask = proto.Uint64(x.GetXfeaturesMask() | 1<<62)
			})
		}},
		{"mapped-file-changed", func(t *testing.T, dir string) {
			// The memory workload maps a file of its own; change one byte of
			// it (same size) and put it back after this case.
			var mapped string
			for _, e := range filesImage(t, dir) {
				if r := e.GetReg(); r != nil && r.ChecksumConfig != nil && strings.HasPrefix(r.GetName(), os.TempDir()) {
					mapped = r.GetName()
				}
			}
			if mapped == "" {
				t.Fatal("no mapped file of the workload in files.img")
			}
			orig, err := os.ReadFile(mapped)
			if err != nil {
				t.Fatal(err)
			}
			changed := append([]byte(nil), orig...)
			changed[len(changed)/2] ^= 0xff
			if err := os.WriteFile(mapped, changed, 0o600); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.WriteFile(mapped, orig, 0o600) })
		}},
		{"pages-truncated", func(t *testing.T, dir string) {
			ps, _ := filepath.Glob(filepath.Join(dir, "pages-*.img"))
			if len(ps) == 0 {
				t.Fatal("no pages-*.img")
			}
			for _, p := range ps {
				st, err := os.Stat(p)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Truncate(p, st.Size()/2); err != nil {
					t.Fatal(err)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assertRestoreRefused(t, w, c.damage)
		})
	}
}

// assertRestoreRefused restores a damaged copy of w's images (damage
// changes the copy) and asserts the restore is refused in one line and
// leaves nothing behind: no process at w's PID, no stray cryo.
func assertRestoreRefused(t *testing.T, w *Workload, damage func(t *testing.T, dir string), mustContain ...string) {
	t.Helper()
	pid := w.Pid
	dir := filepath.Join(t.TempDir(), "images")
	copyDir(t, w.ImgDir, dir)
	_ = os.Remove(filepath.Join(dir, "restore.log"))
	damage(t, dir)

	res := runCryo(t, "restore", "-D", dir, "-v", "4", "-o", "restore.log")
	t.Logf("%s", res)
	if res.ExitCode == 0 || res.TimedOut || t.Failed() {
		logFile(t, filepath.Join(dir, "restore.log"))
		t.Logf("workload output:\n%s", w.Output())
	}
	assertOneErrorLine(t, res, mustContain...)
	// nothing left behind: no process at the PID, no stub
	deadline := time.Now().Add(2 * time.Second)
	for pidAlive(pid) && time.Now().Before(deadline) {
		reapZombieChildren()
		time.Sleep(pollInterval)
	}
	if pidAlive(pid) {
		st := procStatus(fmt.Sprintf("/proc/%d/status", pid))
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		t.Errorf("a process is left at pid %d after the failed restore (name %q, exe %s, state %s)", pid, st["Name"], exe, st["State"])
		if exe == w.Bin || (cryoBin != "" && strings.HasPrefix(exe, cryoBin)) {
			_ = unix.Kill(pid, unix.SIGKILL)
			_, _ = waitForeign(pid, killTimeout)
		}
	}
	checkNoStrayCryo(t, "after the failed restore")
}

// filesImage decodes files.img of an image directory.
func filesImage(t *testing.T, dir string) []*fdinfo.FileEntry {
	t.Helper()
	img, err := decodeImage(filepath.Join(dir, "files.img"))
	if err != nil {
		t.Fatalf("decode files.img: %v", err)
	}
	var out []*fdinfo.FileEntry
	for _, e := range img.Entries {
		if fe, ok := e.Message.(*fdinfo.FileEntry); ok {
			out = append(out, fe)
		}
	}
	return out
}

// editImage rewrites every entry of an image file through edit.
func editImage(t *testing.T, path string, edit func(proto.Message)) {
	t.Helper()
	img, err := decodeImage(path)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	for _, e := range img.Entries {
		edit(e.Message)
	}
	writeImage(t, path, img)
}

// writeImage encodes img over the image file at path.
func writeImage(t *testing.T, path string, img *crit.CriuImage) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := crit.New(nil, f, "", false, false).Encode(img); err != nil {
		t.Fatalf("encode %s: %v", path, err)
	}
}

func overwrite(t *testing.T, path string, off int64, data []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(data, off); err != nil {
		t.Fatal(err)
	}
}

// copyDir copies the regular files of src into a new directory dst (0700,
// files 0600).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.Mkdir(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
