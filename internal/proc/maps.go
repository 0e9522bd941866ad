package proc

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Mapping is one VMA as reported by /proc/PID/smaps: the header line plus the
// VmFlags and Swap lines. The other per-mapping counters (Rss, ...) are not
// kept: the dumper gets page-level truth from Pagemap.
type Mapping struct {
	Start, End uint64
	Prot       int  // unix.PROT_READ|PROT_WRITE|PROT_EXEC from "rwxp"
	Shared     bool // 's' (VM_MAYSHARE) vs 'p' in the permission field
	Offset     uint64
	Major      uint32
	Minor      uint32
	Inode      uint64
	// Path is the pathname field as the kernel printed it: a file path,
	// a pseudo name such as "[stack]", "[heap]", "[vdso]", "[anon:name]",
	// or "" for anonymous memory. A " (deleted)" suffix is removed and
	// reported in Deleted. The kernel prints a newline in a file name as
	// the four bytes `\012` and does not escape backslashes, so such names
	// are ambiguous here; use /proc/PID/map_files for the exact file.
	Path    string
	Deleted bool
	VmFlags VmFlags
	// Swap is how much of it is swapped out, in bytes ("Swap:"; for
	// shared memory, of the object's pages in its range).
	Swap uint64
	// AnonHuge is how much of it is mapped by transparent huge pages, in
	// bytes ("AnonHugePages:").
	AnonHuge uint64
}

// Size returns the length of the mapping in bytes.
func (m Mapping) Size() uint64 { return m.End - m.Start }

// IsSpecial reports whether the mapping is installed by the kernel rather
// than by the program (vDSO and friends). Such mappings are recreated by the
// kernel on restore and must not be dumped as ordinary memory. [vsyscall]
// additionally lies above the task size, so pagemap cannot describe it.
func (m Mapping) IsSpecial() bool {
	switch m.Path {
	case "[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[uprobes]",
		// 32-bit ARM names; harmless elsewhere and keep the list complete.
		"[vectors]", "[sigpage]":
		return true
	}
	return false
}

// VmFlags is the set of two-letter mnemonics from the smaps "VmFlags:" line.
// The bit values are this package's own, not the kernel's VM_* bits, which
// move between kernel versions and architectures.
type VmFlags uint64

// Mnemonics are listed in Documentation/filesystems/proc.rst. Some are
// printed only on some architectures or configurations (sd needs
// CONFIG_MEM_SOFT_DIRTY, ss needs x86 user shadow stacks) and some exist
// only on older kernels (dw, nl); unknown mnemonics are ignored.
const (
	FlagRead        VmFlags = 1 << iota // rd: readable
	FlagWrite                           // wr: writable
	FlagExec                            // ex: executable
	FlagShared                          // sh: shared
	FlagMayRead                         // mr: may read
	FlagMayWrite                        // mw: may write
	FlagMayExec                         // me: may execute
	FlagMayShare                        // ms: may share
	FlagGrowsDown                       // gd: stack segment grows down
	FlagPFNMap                          // pf: pure PFN range
	FlagDenyWrite                       // dw: disabled write to the mapped file (before 5.15)
	FlagLocked                          // lo: pages are locked in memory
	FlagIO                              // io: memory mapped I/O area
	FlagSeqRead                         // sr: sequential read advise provided
	FlagRandRead                        // rr: random read advise provided
	FlagDontCopy                        // dc: do not copy area on fork
	FlagDontExpand                      // de: do not expand area on remapping
	FlagLockOnFault                     // lf: lock on fault pages
	FlagAccount                         // ac: area is accountable
	FlagNoReserve                       // nr: swap space is not reserved for the area
	FlagHugeTLB                         // ht: area uses huge tlb pages
	FlagSyncFault                       // sf: synchronous page fault (MAP_SYNC)
	FlagNonLinear                       // nl: non-linear mapping (before 4.0)
	FlagArch1                           // ar: architecture specific flag
	FlagWipeOnFork                      // wf: wipe on fork
	FlagDontDump                        // dd: do not include area into core dump
	FlagARM64BTI                        // bt: arm64 BTI guarded page
	FlagSoftDirty                       // sd: soft dirty flag
	FlagMixedMap                        // mm: mixed map area
	FlagHugePage                        // hg: huge page advise flag
	FlagNoHugePage                      // nh: no huge page advise flag
	FlagMergeable                       // mg: mergeable advise flag (KSM)
	FlagUffdMissing                     // um: userfaultfd missing tracking
	FlagUffdWP                          // uw: userfaultfd wr-protect tracking
	FlagARM64MTE                        // mt: arm64 MTE allocation tags enabled
	FlagUffdMinor                       // ui: userfaultfd minor fault
	FlagShadowStack                     // ss: shadow stack page
	FlagDroppable                       // dp: always lazily freeable mapping
	FlagSealed                          // sl: sealed (mseal)
)

// vmFlagNames is indexed by bit number; it drives both parsing and String.
var vmFlagNames = [...]string{
	"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "dw", "lo",
	"io", "sr", "rr", "dc", "de", "lf", "ac", "nr", "ht", "sf", "nl", "ar",
	"wf", "dd", "bt", "sd", "mm", "hg", "nh", "mg", "um", "uw", "mt", "ui",
	"ss", "dp", "sl",
}

// vmFlagTable maps a two-lowercase-letter mnemonic to its bit so that
// parsing a VmFlags line is a table lookup per token, with no allocation.
var vmFlagTable [26 * 26]VmFlags

func init() {
	for i, n := range vmFlagNames {
		vmFlagTable[int(n[0]-'a')*26+int(n[1]-'a')] = 1 << i
	}
}

// lookupVmFlag returns the bit for a mnemonic, or 0 if it is unknown.
func lookupVmFlag(tok []byte) VmFlags {
	if len(tok) != 2 || tok[0] < 'a' || tok[0] > 'z' || tok[1] < 'a' || tok[1] > 'z' {
		return 0
	}
	return vmFlagTable[int(tok[0]-'a')*26+int(tok[1]-'a')]
}

// Has reports whether all flags in f are set.
func (v VmFlags) Has(f VmFlags) bool { return v&f == f }

// String renders the set in the kernel's format, e.g. "rd wr mr mw me gd ac".
func (v VmFlags) String() string {
	var sb strings.Builder
	for i, n := range vmFlagNames {
		if v&(1<<i) != 0 {
			if sb.Len() > 0 {
				sb.WriteByte(' ')
			}
			sb.WriteString(n)
		}
	}
	return sb.String()
}

// ParseVmFlags parses the value of a "VmFlags:" line. Unknown mnemonics are
// ignored so that new kernels do not break the dumper.
func ParseVmFlags(b []byte) VmFlags {
	var v VmFlags
	for {
		var tok []byte
		tok, b = nextField(b)
		if len(tok) == 0 {
			return v
		}
		v |= lookupVmFlag(tok)
	}
}

// Maps returns the mappings of pid's address space from /proc/PID/smaps.
// All threads share one mm, so pass the thread-group leader's pid (a thread
// id works too and yields the same list).
//
// smaps is not read atomically: the kernel renders it in chunks and re-finds
// its position by address between reads, so a process changing its mappings
// meanwhile yields a mix of old and new state, and a process that exits
// mid-read yields a silently truncated list. Freeze the tree first.
func Maps(pid int) ([]Mapping, error) {
	path := pidPath(pid, "smaps")
	f, err := Open(path, os.O_RDONLY)
	if err != nil {
		return nil, ioError(err)
	}
	defer f.Close()
	maps, err := ParseSmaps(f)
	if err != nil {
		var se *syntaxError
		if errors.As(err, &se) {
			return nil, parseError(path, err)
		}
		return nil, ioError(err)
	}
	return maps, nil
}

// syntaxError tells a malformed line from an I/O error of the underlying
// reader, which ParseSmaps returns unchanged.
type syntaxError struct {
	line int
	err  error
}

func (e *syntaxError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *syntaxError) Unwrap() error { return e.err }

// smapsBufSize covers any header line in one buffer: a path is at most
// PATH_MAX bytes before escaping, so long lines are the rare slow path.
const smapsBufSize = 64 << 10

// ParseSmaps parses the content of /proc/PID/smaps. It also accepts
// /proc/PID/maps, which is the same header lines without the field lines;
// VmFlags are then zero. Errors of r are returned unwrapped.
func ParseSmaps(r io.Reader) ([]Mapping, error) {
	br := bufio.NewReaderSize(r, smapsBufSize)
	var (
		maps   []Mapping
		long   []byte // accumulates a line longer than the bufio buffer
		lineNo int
		// intern makes all mappings of one file share a single Path
		// string; a library typically has four or five VMAs.
		intern = make(map[string]string)
	)
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			long = append(long, line...)
			continue
		}
		if long != nil {
			line = append(long, line...)
			long = nil
		}
		if err != nil && err != io.EOF {
			return nil, err
		}
		if len(line) > 0 {
			lineNo++
			if perr := parseSmapsLine(bytes.TrimSuffix(line, []byte{'\n'}), &maps, intern); perr != nil {
				return nil, &syntaxError{lineNo, perr}
			}
		}
		if err == io.EOF {
			return maps, nil
		}
	}
}

var vmFlagsKey = []byte("VmFlags:")

func parseSmapsLine(line []byte, maps *[]Mapping, intern map[string]string) error {
	if len(line) == 0 {
		return nil
	}
	if bytes.HasPrefix(line, vmFlagsKey) {
		if len(*maps) == 0 {
			return errors.New("VmFlags before the first mapping")
		}
		(*maps)[len(*maps)-1].VmFlags = ParseVmFlags(line[len(vmFlagsKey):])
		return nil
	}
	// Field lines are "Key: value"; a header's first token is
	// "start-end" and never contains ':'.
	tok, rest := nextField(line)
	if len(tok) > 0 && tok[len(tok)-1] == ':' {
		if (string(tok) == "Swap:" || string(tok) == "AnonHugePages:") && len(*maps) > 0 {
			kb, _ := nextField(rest)
			v, err := strconv.ParseUint(string(kb), 10, 64)
			if err != nil {
				return fmt.Errorf("%s %w", tok, err)
			}
			m := &(*maps)[len(*maps)-1]
			if string(tok) == "Swap:" {
				m.Swap = v << 10
			} else {
				m.AnonHuge = v << 10
			}
		}
		return nil
	}
	var m Mapping
	path, err := parseMapHeader(line, &m)
	if err != nil {
		return err
	}
	if bytes.HasSuffix(path, deletedSuffix) {
		path = path[:len(path)-len(deletedSuffix)]
		m.Deleted = true
	}
	if len(path) > 0 {
		s, ok := intern[string(path)]
		if !ok {
			s = string(path)
			intern[s] = s
		}
		m.Path = s
	}
	*maps = append(*maps, m)
	return nil
}

var deletedSuffix = []byte(" (deleted)")

// parseMapHeader parses "start-end perms offset major:minor inode   path"
// and returns the raw path bytes.
func parseMapHeader(line []byte, m *Mapping) ([]byte, error) {
	rest := line
	var f []byte
	var err error

	f, rest = nextField(rest)
	start, end, ok := bytes.Cut(f, []byte{'-'})
	if !ok {
		return nil, fmt.Errorf("bad address range %q", f)
	}
	if m.Start, err = parseUint(start, 16); err != nil {
		return nil, fmt.Errorf("bad start address: %w", err)
	}
	if m.End, err = parseUint(end, 16); err != nil {
		return nil, fmt.Errorf("bad end address: %w", err)
	}
	if m.End < m.Start {
		return nil, fmt.Errorf("address range %q ends before it starts", f)
	}

	f, rest = nextField(rest)
	if len(f) != 4 {
		return nil, fmt.Errorf("bad permissions %q", f)
	}
	for i, want := range [3]byte{'r', 'w', 'x'} {
		switch f[i] {
		case want:
			m.Prot |= [3]int{unix.PROT_READ, unix.PROT_WRITE, unix.PROT_EXEC}[i]
		case '-':
		default:
			return nil, fmt.Errorf("bad permissions %q", f)
		}
	}
	switch f[3] {
	case 's':
		m.Shared = true
	case 'p':
	default:
		return nil, fmt.Errorf("bad permissions %q", f)
	}

	f, rest = nextField(rest)
	if m.Offset, err = parseUint(f, 16); err != nil {
		return nil, fmt.Errorf("bad offset: %w", err)
	}

	f, rest = nextField(rest)
	major, minor, ok := bytes.Cut(f, []byte{':'})
	if !ok {
		return nil, fmt.Errorf("bad device %q", f)
	}
	if m.Major, err = parseUint32(major, 16); err != nil {
		return nil, fmt.Errorf("bad device major: %w", err)
	}
	if m.Minor, err = parseUint32(minor, 16); err != nil {
		return nil, fmt.Errorf("bad device minor: %w", err)
	}

	f, rest = nextField(rest)
	if m.Inode, err = parseUint(f, 10); err != nil {
		return nil, fmt.Errorf("bad inode: %w", err)
	}

	// The kernel pads with spaces up to a fixed column before the path.
	// Only leading spaces are padding: a file name may legitimately end
	// in whitespace or contain tabs.
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	return rest, nil
}
