package proc

import (
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"golang.org/x/sys/unix"
)

// Parser tests on fixed text captured from (or modelled on) Linux 6.18.

// statLine builds a stat line with the given comm around real 6.18 fields.
func statLine(pid, comm string) string {
	return pid + " (" + comm + ") S 2471 2471 1797 34816 -1 4194304 96 0 0 0 0 0 0 0 20 -5 3 0 16612 3133440 358 " +
		"18446744073709551615 94540501434368 94540501454249 140726602931312 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 " +
		"94540501470256 94540501471872 94540975833088 140726602934980 140726602935000 140726602935000 140726602936299 0\n"
}

func TestParseStat(t *testing.T) {
	for _, comm := range []string{"cat", "", "a) (b", ") (", "x) S 1 2 3 (", "with space", "new\nline", "((", "))"} {
		st, err := ParseStat([]byte(statLine("2475", comm)))
		if err != nil {
			t.Errorf("comm %q: %v", comm, err)
			continue
		}
		if st.Comm != comm || st.Pid != 2475 || st.State != 'S' || st.PPid != 2471 || st.TtyNr != 34816 || st.Tpgid != -1 {
			t.Errorf("comm %q: %+v", comm, st)
		}
		if st.Nice != -5 || st.NumThreads != 3 || st.StartTime != 16612 || st.Vsize != 3133440 || st.RSS != 358 ||
			st.RSSLim != unix.RLIM_INFINITY || st.StartCode != 94540501434368 || st.EndCode != 94540501454249 ||
			st.ExitSignal != 17 || st.Processor != 1 || st.StartData != 94540501470256 ||
			st.EnvEnd != 140726602936299 || st.ExitCode != 0 || st.Flags != 4194304 {
			t.Errorf("comm %q: %+v", comm, st)
		}
	}

	bad := []string{
		"",
		"123",
		"123 (x",
		"123 x) S",
		"abc (x) S 1 2 3",
		statLine("1", "x")[:60], // truncated
		strings.Replace(statLine("1", "x"), " S ", " SS ", 1),      // state not one char
		strings.Replace(statLine("1", "x"), " 2471 ", " 24z1 ", 1), // garbage number
		strings.Replace(statLine("1", "x"), " 16612 ", " 99999999999999999999999 ", 1),
	}
	for _, b := range bad {
		if st, err := ParseStat([]byte(b)); err == nil {
			t.Errorf("ParseStat(%q) = %+v, want error", b, st)
		}
	}

	// Fields appended by a future kernel are ignored.
	if _, err := ParseStat([]byte(strings.TrimSuffix(statLine("1", "x"), "\n") + " 7 8\n")); err != nil {
		t.Errorf("extra fields: %v", err)
	}
}

const sampleStatus = "Name:\ta\\\\b\\nc) (d \n" +
	"Umask:\t0027\n" +
	"State:\tS (sleeping)\n" +
	"Tgid:\t2474\n" +
	"Ngid:\t0\n" +
	"Pid:\t2475\n" +
	"PPid:\t2471\n" +
	"TracerPid:\t17\n" +
	"Uid:\t1000\t1001\t1002\t1003\n" +
	"Gid:\t2000\t2001\t2002\t2003\n" +
	"FDSize:\t256\n" +
	"Groups:\t4 24 27 \n" +
	"NStgid:\t2474\t12\n" +
	"NSpid:\t2475\t13\n" +
	"NSpgid:\t2471\t1\n" +
	"NSsid:\t1797\t1\n" +
	"Kthread:\t0\n" +
	"VmPeak:\t    3060 kB\n" +
	"Threads:\t2\n" +
	"SigQ:\t0/96364\n" +
	"SigPnd:\t0000000000000100\n" +
	"ShdPnd:\t0000000000004000\n" +
	"SigBlk:\t0000000000010000\n" +
	"SigIgn:\t0000000000001000\n" +
	"SigCgt:\t0000000180004002\n" +
	"CapInh:\t0000000000000000\n" +
	"CapPrm:\t000001fffeffffff\n" +
	"CapEff:\t000001fffeffffff\n" +
	"CapBnd:\t000001ffffffffff\n" +
	"CapAmb:\t0000000000000001\n" +
	"NoNewPrivs:\t1\n" +
	"Seccomp:\t2\n" +
	"Seccomp_filters:\t1\n" +
	"Speculation_Store_Bypass:\tthread vulnerable\n" +
	"Cpus_allowed_list:\t0-1\n" +
	"voluntary_ctxt_switches:\t0\n"

func TestParseStatus(t *testing.T) {
	s, err := ParseStatus([]byte(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := Status{
		Name: "a\\b\nc) (d ", State: 'S', Tgid: 2474, Pid: 2475, PPid: 2471, TracerPid: 17,
		Uid: [4]uint32{1000, 1001, 1002, 1003}, Gid: [4]uint32{2000, 2001, 2002, 2003},
		Groups: []uint32{4, 24, 27},
		CapPrm: 0x1fffeffffff, CapEff: 0x1fffeffffff, CapBnd: 0x1ffffffffff, CapAmb: 1,
		NoNewPrivs: true, Seccomp: 2, Umask: 0o27, HasUmask: true,
		SigPnd: 0x100, ShdPnd: 0x4000, SigBlk: 0x10000, SigIgn: 0x1000, SigCgt: 0x180004002,
		Threads: 2, NSpid: []int{2475, 13}, NStgid: []int{2474, 12}, NSpgid: []int{2471, 1}, NSsid: []int{1797, 1},
	}
	if !statusEqual(s, &want) {
		t.Errorf("got  %+v\nwant %+v", *s, want)
	}

	// Reduced output, empty groups and no Umask, like a zombie's.
	s, err = ParseStatus([]byte("Name:\tz\nState:\tZ (zombie)\nTgid:\t5\nPid:\t5\nGroups:\t \nThreads:\t1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.HasUmask || len(s.Groups) != 0 || s.State != 'Z' || s.Name != "z" {
		t.Errorf("zombie status = %+v", s)
	}

	for _, b := range []string{
		"",
		"Name:\tx\nPid:\tabc\n",
		"Name:\tx\nUid:\t1 2 3\n",
		"Name:\tx\nSigBlk:\tzz\n",
		"Name:\tx\nState:\t\n",
		"Name:\tx\nUmask:\t0999\n",
	} {
		if s, err := ParseStatus([]byte(b)); err == nil {
			t.Errorf("ParseStatus(%q) = %+v, want error", b, s)
		}
	}
}

func statusEqual(a, b *Status) bool {
	return a.Name == b.Name && a.State == b.State && a.Tgid == b.Tgid && a.Pid == b.Pid && a.PPid == b.PPid &&
		a.TracerPid == b.TracerPid && a.Uid == b.Uid && a.Gid == b.Gid && slices.Equal(a.Groups, b.Groups) &&
		a.CapInh == b.CapInh && a.CapPrm == b.CapPrm && a.CapEff == b.CapEff && a.CapBnd == b.CapBnd &&
		a.CapAmb == b.CapAmb && a.NoNewPrivs == b.NoNewPrivs && a.Seccomp == b.Seccomp && a.Umask == b.Umask &&
		a.HasUmask == b.HasUmask && a.SigPnd == b.SigPnd && a.ShdPnd == b.ShdPnd && a.SigBlk == b.SigBlk &&
		a.SigIgn == b.SigIgn && a.SigCgt == b.SigCgt && a.Threads == b.Threads &&
		slices.Equal(a.NSpid, b.NSpid) && slices.Equal(a.NStgid, b.NStgid) &&
		slices.Equal(a.NSpgid, b.NSpgid) && slices.Equal(a.NSsid, b.NSsid)
}

func TestUnescapeStatusName(t *testing.T) {
	for in, want := range map[string]string{
		``:          "",
		`plain`:     "plain",
		`a\nb`:      "a\nb",
		`a\\nb`:     `a\nb`,
		`a\\\nb`:    "a\\\nb",
		`trailing\`: `trailing\`,
		`\q`:        `\q`,
		"tab\there": "tab\there",
	} {
		if got := unescapeStatusName([]byte(in)); got != want {
			t.Errorf("unescapeStatusName(%q) = %q, want %q", in, got, want)
		}
	}
}

const sampleLimits = `Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             96364                96364                processes 
Max open files            20000                1048576              files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       96364                96364                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
`

func TestParseLimits(t *testing.T) {
	lim, err := ParseLimits([]byte(sampleLimits))
	if err != nil {
		t.Fatal(err)
	}
	inf := uint64(unix.RLIM_INFINITY)
	want := map[int]Rlimit{
		unix.RLIMIT_CPU:     {inf, inf},
		unix.RLIMIT_STACK:   {8388608, inf},
		unix.RLIMIT_CORE:    {0, inf},
		unix.RLIMIT_NPROC:   {96364, 96364},
		unix.RLIMIT_NOFILE:  {20000, 1048576},
		unix.RLIMIT_MEMLOCK: {8388608, 8388608},
		unix.RLIMIT_NICE:    {0, 0},
		unix.RLIMIT_RTTIME:  {inf, inf},
	}
	for res, w := range want {
		if lim[res] != w {
			t.Errorf("resource %d = %+v, want %+v", res, lim[res], w)
		}
	}

	// Row order must not matter, and unknown rows are skipped.
	lines := strings.Split(strings.TrimSuffix(sampleLimits, "\n"), "\n")
	slices.Reverse(lines)
	lines = append(lines, "Max future thing          1                    2                    widgets")
	lim2, err := ParseLimits([]byte(strings.Join(lines, "\n")))
	if err != nil || lim2 != lim {
		t.Errorf("reordered: %v, %v", lim2, err)
	}

	missing := strings.Replace(sampleLimits, "Max file locks ", "Max file blocks", 1)
	if _, err := ParseLimits([]byte(missing)); err == nil || !strings.Contains(err.Error(), "Max file locks") {
		t.Errorf("missing row: err = %v", err)
	}
	badValue := strings.Replace(sampleLimits, "8388608              unlimited", "8388608              infinite ", 1)
	if _, err := ParseLimits([]byte(badValue)); err == nil {
		t.Error("bad value accepted")
	}
}

const sampleSmaps = `55861b0d6000-55861b0d8000 r--p 00000000 fe:00 247026                     /usr/bin/cat
Size:                  8 kB
KernelPageSize:        4 kB
Rss:                   8 kB
VmFlags: rd mr mw me 
55861b0d8000-55861b0dd000 r-xp 00002000 fe:00 247026                     /usr/bin/cat
Size:                 20 kB
VmFlags: rd ex mr mw me 
5608311eb000-56083120c000 rw-p 00000000 00:00 0                          [heap]
AnonHugePages:      2048 kB
VmFlags: rd wr mr mw me ac 
7f1641453000-7f1641475000 rw-p 00000000 00:00 0 
THPeligible:           0
ProtectionKey:         0
VmFlags: rd wr mr mw me ac xx zz 
7f8e59e27000-7f8e59e28000 r--p 00000000 00:01 4                          /memfd:hello (deleted)
VmFlags: rd mr mw me 
7f8e59e28000-7f8e59e29000 r--s 00001000 103:0a 9978707                   /tmp/x y (deleted) z (deleted)
VmFlags: rd sh mr mw me ms 
7f8e59e29000-7f8e59e2b000 rw-s 00000000 00:01 3                          /dev/zero (deleted)
Rss:                   4 kB
Swap:                  8 kB
SwapPss:               8 kB
VmFlags: rd wr sh mr mw me ms 
7f8e5a03d000-7f8e5a041000 r--p 00000000 00:00 0                          [vvar]
VmFlags: rd mr pf io de dd 
7f8e5a041000-7f8e5a043000 r--p 00000000 00:00 0                          [vvar_vclock]
VmFlags: rd mr pf io de dd 
7f8e5a043000-7f8e5a045000 r-xp 00000000 00:00 0                          [vdso]
VmFlags: rd ex mr mw me de 
7ffda160b000-7ffda162c000 rw-p 00000000 00:00 0                          [stack]
VmFlags: rd wr mr mw me gd ac 
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]
VmFlags: ex 
`

func TestParseSmaps(t *testing.T) {
	maps, err := ParseSmaps(strings.NewReader(sampleSmaps))
	if err != nil {
		t.Fatal(err)
	}
	want := []Mapping{
		{Start: 0x55861b0d6000, End: 0x55861b0d8000, Prot: unix.PROT_READ, Major: 0xfe, Inode: 247026, Path: "/usr/bin/cat",
			VmFlags: FlagRead | FlagMayRead | FlagMayWrite | FlagMayExec},
		{Start: 0x55861b0d8000, End: 0x55861b0dd000, Prot: unix.PROT_READ | unix.PROT_EXEC, Offset: 0x2000, Major: 0xfe, Inode: 247026,
			Path: "/usr/bin/cat", VmFlags: FlagRead | FlagExec | FlagMayRead | FlagMayWrite | FlagMayExec},
		{Start: 0x5608311eb000, End: 0x56083120c000, Prot: unix.PROT_READ | unix.PROT_WRITE, Path: "[heap]", AnonHuge: 2 << 20,
			VmFlags: FlagRead | FlagWrite | FlagMayRead | FlagMayWrite | FlagMayExec | FlagAccount},
		{Start: 0x7f1641453000, End: 0x7f1641475000, Prot: unix.PROT_READ | unix.PROT_WRITE,
			VmFlags: FlagRead | FlagWrite | FlagMayRead | FlagMayWrite | FlagMayExec | FlagAccount},
		{Start: 0x7f8e59e27000, End: 0x7f8e59e28000, Prot: unix.PROT_READ, Minor: 1, Inode: 4, Path: "/memfd:hello", Deleted: true,
			VmFlags: FlagRead | FlagMayRead | FlagMayWrite | FlagMayExec},
		{Start: 0x7f8e59e28000, End: 0x7f8e59e29000, Prot: unix.PROT_READ, Shared: true, Offset: 0x1000, Major: 0x103, Minor: 0xa,
			Inode: 9978707, Path: "/tmp/x y (deleted) z", Deleted: true,
			VmFlags: FlagRead | FlagShared | FlagMayRead | FlagMayWrite | FlagMayExec | FlagMayShare},
		{Start: 0x7f8e59e29000, End: 0x7f8e59e2b000, Prot: unix.PROT_READ | unix.PROT_WRITE, Shared: true, Minor: 1, Inode: 3,
			Path: "/dev/zero", Deleted: true, Swap: 8 << 10,
			VmFlags: FlagRead | FlagWrite | FlagShared | FlagMayRead | FlagMayWrite | FlagMayExec | FlagMayShare},
		{Start: 0x7f8e5a03d000, End: 0x7f8e5a041000, Prot: unix.PROT_READ, Path: "[vvar]",
			VmFlags: FlagRead | FlagMayRead | FlagPFNMap | FlagIO | FlagDontExpand | FlagDontDump},
		{Start: 0x7f8e5a041000, End: 0x7f8e5a043000, Prot: unix.PROT_READ, Path: "[vvar_vclock]",
			VmFlags: FlagRead | FlagMayRead | FlagPFNMap | FlagIO | FlagDontExpand | FlagDontDump},
		{Start: 0x7f8e5a043000, End: 0x7f8e5a045000, Prot: unix.PROT_READ | unix.PROT_EXEC, Path: "[vdso]",
			VmFlags: FlagRead | FlagExec | FlagMayRead | FlagMayWrite | FlagMayExec | FlagDontExpand},
		{Start: 0x7ffda160b000, End: 0x7ffda162c000, Prot: unix.PROT_READ | unix.PROT_WRITE, Path: "[stack]",
			VmFlags: FlagRead | FlagWrite | FlagMayRead | FlagMayWrite | FlagMayExec | FlagGrowsDown | FlagAccount},
		{Start: 0xffffffffff600000, End: 0xffffffffff601000, Prot: unix.PROT_EXEC, Path: "[vsyscall]", VmFlags: FlagExec},
	}
	if !slices.Equal(maps, want) {
		for i := range max(len(maps), len(want)) {
			var g, w Mapping
			if i < len(maps) {
				g = maps[i]
			}
			if i < len(want) {
				w = want[i]
			}
			if g != w {
				t.Errorf("mapping %d:\n got  %+v\n want %+v", i, g, w)
			}
		}
	}
	special := 0
	for _, m := range maps {
		if m.IsSpecial() {
			special++
		}
	}
	if special != 4 {
		t.Errorf("%d special mappings, want 4 (vvar, vvar_vclock, vdso, vsyscall)", special)
	}

	// The plain maps format parses the same, with zero VmFlags, and a
	// reader returning one byte at a time exercises the buffering.
	var plain strings.Builder
	for _, l := range strings.SplitAfter(sampleSmaps, "\n") {
		if l != "" && !strings.Contains(strings.Fields(l)[0], ":") {
			plain.WriteString(l)
		}
	}
	maps, err = ParseSmaps(iotest.OneByteReader(strings.NewReader(plain.String())))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != len(want) {
		t.Fatalf("maps format: %d mappings", len(maps))
	}
	for i := range maps {
		w := want[i]
		w.VmFlags, w.Swap, w.AnonHuge = 0, 0, 0
		if maps[i] != w {
			t.Errorf("maps format %d: %+v", i, maps[i])
		}
	}

	// A header longer than the bufio buffer (the slow path).
	long := "/" + strings.Repeat("d", smapsBufSize+100)
	maps, err = ParseSmaps(strings.NewReader("1000-2000 rw-p 00000000 00:00 0   " + long + "\nVmFlags: rd\n"))
	if err != nil || len(maps) != 1 || maps[0].Path != long || maps[0].VmFlags != FlagRead {
		t.Errorf("long line: %v", err)
	}

	// No trailing newline is fine.
	if maps, err := ParseSmaps(strings.NewReader("1000-2000 rw-p 00000000 00:00 0")); err != nil || len(maps) != 1 {
		t.Errorf("no newline: %v %v", maps, err)
	}
}

func TestParseSmapsErrors(t *testing.T) {
	if _, err := ParseSmaps(strings.NewReader("VmFlags: rd\n")); err == nil {
		t.Error("VmFlags before any mapping accepted")
	}
	for _, b := range []string{
		"1000 rw-p 00000000 00:00 0\n",
		"2000-1000 rw-p 00000000 00:00 0\n",
		"1000-2000 rw-q 00000000 00:00 0\n",
		"1000-2000 rwx 00000000 00:00 0\n",
		"1000-2000 rXxp 00000000 00:00 0\n",
		"1000-2000 rw-p 0000000g 00:00 0\n",
		"1000-2000 rw-p 00000000 0000 0\n",
		"1000-2000 rw-p 00000000 00:00 x\n",
		"1000-2000 rw-p 00000000 00:00\n",
		"1000-2000 rw-p 00000000 100000000:00 0\n",
		"zzzz-2000 rw-p 00000000 00:00 0\n",
	} {
		_, err := ParseSmaps(strings.NewReader("1000-2000 r--p 00000000 00:00 0\nVmFlags: rd\n" + b))
		var se *syntaxError
		if !errors.As(err, &se) {
			t.Errorf("ParseSmaps(%q): err = %v, want syntax error", b, err)
		} else if se.line != 3 {
			t.Errorf("ParseSmaps(%q): error on line %d, want 3", b, se.line)
		}
	}

	// Reader errors come back as they are, not as syntax errors.
	boom := errors.New("boom")
	_, err := ParseSmaps(io.MultiReader(strings.NewReader("1000-2000 r--p 00000000 00:00 0\n"), iotest.ErrReader(boom)))
	var se *syntaxError
	if !errors.Is(err, boom) || errors.As(err, &se) {
		t.Errorf("reader error = %v", err)
	}
}

func TestVmFlags(t *testing.T) {
	all := strings.Join(vmFlagNames[:], " ")
	v := ParseVmFlags([]byte(all))
	if v.String() != all {
		t.Errorf("round trip: %q", v.String())
	}
	if bitsSet := countBits(uint64(v)); bitsSet != len(vmFlagNames) {
		t.Errorf("%d bits for %d names", bitsSet, len(vmFlagNames))
	}
	for name, f := range map[string]VmFlags{
		"gd": FlagGrowsDown, "dc": FlagDontCopy, "dd": FlagDontDump, "de": FlagDontExpand, "hg": FlagHugePage,
		"nh": FlagNoHugePage, "mg": FlagMergeable, "wf": FlagWipeOnFork, "lo": FlagLocked, "io": FlagIO,
		"pf": FlagPFNMap, "sr": FlagSeqRead, "rr": FlagRandRead, "ms": FlagMayShare, "sh": FlagShared,
		"sd": FlagSoftDirty, "mm": FlagMixedMap, "ac": FlagAccount, "nr": FlagNoReserve, "ss": FlagShadowStack,
		"um": FlagUffdMissing, "uw": FlagUffdWP, "ht": FlagHugeTLB, "sl": FlagSealed, "dp": FlagDroppable,
	} {
		if got := ParseVmFlags([]byte(" " + name + " ")); got != f {
			t.Errorf("%s -> %v", name, got)
		}
	}
	if v := ParseVmFlags([]byte("rd ?? RD r rdx zz wr")); v != FlagRead|FlagWrite {
		t.Errorf("unknown tokens: %q", v)
	}
	if !(FlagRead | FlagWrite).Has(FlagRead) || FlagRead.Has(FlagRead|FlagWrite) {
		t.Error("Has")
	}
}

func countBits(x uint64) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

func TestParseFdInfo(t *testing.T) {
	const epoll = "pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t1057\n" +
		"tfd:        5 events:       19 data:                5  pos:0 ino:3 sdev:e\n" +
		"tfd:        7 events:       19 data:                7  pos:0 ino:4 sdev:e\n"
	fi, err := ParseFdInfo([]byte(epoll))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Pos != 0 || fi.Flags != 0o2000002 || fi.MntID != 16 || fi.Ino != 1057 {
		t.Errorf("epoll fdinfo = %+v", fi)
	}
	if len(fi.Lines) != 2 || !strings.HasPrefix(fi.Lines[1], "tfd:        7 ") {
		t.Errorf("Lines = %q", fi.Lines)
	}
	if !strings.HasPrefix(fi.Extra["tfd"], "7 events:") {
		t.Errorf("Extra = %q", fi.Extra)
	}

	const inotify = "pos:\t0\nflags:\t00\nmnt_id:\t16\nino:\t1057\n" +
		"inotify wd:1 ino:2 sdev:800001 mask:fce ignored_mask:0 fhandle-bytes:8 fhandle-type:1 f_handle:0200000000000000\n" +
		"lock:\t1: FLOCK  ADVISORY  WRITE 1234 08:01:2 0 EOF\n"
	fi, err = ParseFdInfo([]byte(inotify))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Flags != 0 || len(fi.Lines) != 2 || fi.Extra["inotify wd"] == "" || fi.Extra["lock"] == "" {
		t.Errorf("inotify fdinfo = %+v", fi)
	}

	for _, b := range []string{"pos:\tx\n", "flags:\t0800\n", "mnt_id:\t\n", "ino:\t-1\n"} {
		if _, err := ParseFdInfo([]byte(b)); err == nil {
			t.Errorf("ParseFdInfo(%q) succeeded", b)
		}
	}
}

func TestParseIDMapAndNs(t *testing.T) {
	m, err := ParseIDMap([]byte("         0          0 4294967295\n         1     100000      65536\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []IDMapEntry{{0, 0, 4294967295}, {1, 100000, 65536}}; !slices.Equal(m, want) {
		t.Errorf("ParseIDMap = %v", m)
	}
	if m, err := ParseIDMap(nil); err != nil || len(m) != 0 {
		t.Errorf("empty map = %v, %v", m, err)
	}
	for _, b := range []string{"0 0\n", "0 0 1 2\n", "0 0 4294967296\n", "a b c\n"} {
		if _, err := ParseIDMap([]byte(b)); err == nil {
			t.Errorf("ParseIDMap(%q) succeeded", b)
		}
	}

	for in, want := range map[string]uint64{"user:[4026531837]": 4026531837, "pid:[1]": 1} {
		if got, err := ParseNsLink(in); err != nil || got != want {
			t.Errorf("ParseNsLink(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "user", "user:[]", "user:[12", "user:12]", ":[x]", "net:["} {
		if _, err := ParseNsLink(in); err == nil {
			t.Errorf("ParseNsLink(%q) succeeded", in)
		}
	}
}

func TestParseNumbers(t *testing.T) {
	if v, err := parseUint([]byte("18446744073709551615"), 10); err != nil || v != 1<<64-1 {
		t.Errorf("max uint64: %d %v", v, err)
	}
	if v, err := parseUint([]byte("ffffffffffffffff"), 16); err != nil || v != 1<<64-1 {
		t.Errorf("max hex: %x %v", v, err)
	}
	for _, s := range []string{"18446744073709551616", "", "-1", "1 2", "0x10"} {
		if _, err := parseUint([]byte(s), 10); err == nil {
			t.Errorf("parseUint(%q) succeeded", s)
		}
	}
	if _, err := parseUint([]byte("10000000000000000"), 16); err == nil {
		t.Error("hex overflow accepted")
	}
	if _, err := parseUint([]byte("8"), 8); err == nil {
		t.Error("octal 8 accepted")
	}
	if v, err := parseInt([]byte("-9223372036854775808")); err != nil || v != -1<<63 {
		t.Errorf("min int64: %d %v", v, err)
	}
	for _, s := range []string{"9223372036854775808", "-9223372036854775809", "-", "--1"} {
		if _, err := parseInt([]byte(s)); err == nil {
			t.Errorf("parseInt(%q) succeeded", s)
		}
	}
}

func TestParseAuxv(t *testing.T) {
	if _, err := ParseAuxv(make([]byte, 12)); err == nil {
		t.Error("odd length accepted")
	}
	w, err := ParseAuxv([]byte{6, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0})
	if err != nil || len(w) != 2 || w[0] != 6 || w[1] != 4096 {
		t.Errorf("ParseAuxv = %v, %v", w, err)
	}
}

func TestPagemapEntryBits(t *testing.T) {
	e := PagemapEntry(1<<63 | 1<<61 | 1<<56 | 1<<55 | 0x12345)
	if !e.Present() || e.Swapped() || !e.FileOrSharedAnon() || !e.Exclusive() || !e.SoftDirty() || e.UffdWP() ||
		e.GuardRegion() || e.PFN() != 0x12345 {
		t.Errorf("present entry %#x decoded wrong", uint64(e))
	}
	s := PagemapEntry(1<<62 | 1<<57 | 0x3<<5 | 0x2)
	if s.Present() || !s.Swapped() || s.SwapType() != 2 || s.SwapOffset() != 3 || !s.UffdWP() {
		t.Errorf("swap entry %#x decoded wrong", uint64(s))
	}
	if !PagemapEntry(1 << 58).GuardRegion() {
		t.Error("guard bit")
	}
}

func TestLeaderFirst(t *testing.T) {
	for _, c := range []struct {
		in   []int
		pid  int
		want []int
	}{
		{[]int{3, 5, 9, 12}, 9, []int{9, 3, 5, 12}},
		{[]int{3, 5, 9, 12}, 3, []int{3, 5, 9, 12}},
		{[]int{3, 5, 9, 12}, 12, []int{12, 3, 5, 9}},
		{[]int{3, 5}, 7, []int{3, 5}}, // leader already reaped
		{nil, 1, nil},
	} {
		got := slices.Clone(c.in)
		leaderFirst(got, c.pid)
		if !slices.Equal(got, c.want) {
			t.Errorf("leaderFirst(%v, %d) = %v, want %v", c.in, c.pid, got, c.want)
		}
	}
}
