package proc

import (
	"errors"
	"fmt"
)

// Status holds the fields of /proc/PID/status the dumper restores or checks.
// Lines absent from the file leave their field zero: zombies and kernel
// threads print a reduced set.
type Status struct {
	// Name is the comm with the kernel's status escaping undone (status
	// prints '\n' as `\n` and '\\' as `\\`, unlike stat and comm).
	Name      string
	State     byte // first letter of the State line, e.g. 'S'
	Tgid      int
	Pid       int
	PPid      int
	TracerPid int
	Uid       [4]uint32 // real, effective, saved, filesystem
	Gid       [4]uint32 // real, effective, saved, filesystem
	Groups    []uint32
	CapInh    uint64
	CapPrm    uint64
	CapEff    uint64
	CapBnd    uint64
	CapAmb    uint64
	// NoNewPrivs mirrors prctl(PR_GET_NO_NEW_PRIVS).
	NoNewPrivs bool
	// Seccomp is the seccomp mode: 0 disabled, 1 strict, 2 filter.
	Seccomp int
	// Umask is missing from status for tasks without an fs_struct
	// (exiting tasks), hence HasUmask.
	Umask    uint32
	HasUmask bool
	SigPnd   uint64 // thread-private pending signals
	ShdPnd   uint64 // process-wide pending signals
	SigBlk   uint64
	SigIgn   uint64
	SigCgt   uint64
	Threads  int
	// The NS* lists give the id in each pid namespace the task is visible
	// in, outermost (the reader's) first.
	NSpid  []int
	NStgid []int
	NSpgid []int
	NSsid  []int
}

// ReadStatus reads /proc/PID/status.
func ReadStatus(pid int) (*Status, error) {
	return readStatus(pidPath(pid, "status"))
}

// ReadTaskStatus reads /proc/PID/task/TID/status; signal masks, creds and
// capabilities are per thread.
func ReadTaskStatus(pid, tid int) (*Status, error) {
	return readStatus(taskPath(pid, tid, "status"))
}

func readStatus(path string) (*Status, error) {
	var s *Status
	err := withFile(path, func(b []byte) error {
		var err error
		s, err = ParseStatus(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ParseStatus parses the content of a /proc/PID/status file. Unknown lines
// are ignored; a line the dumper relies on that does not parse is an error.
func ParseStatus(b []byte) (*Status, error) {
	s := &Status{}
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		key, val, ok := cutKey(line)
		if !ok {
			continue
		}
		if string(key) == "Name" {
			// comm may begin or end with blanks, which cutKey would
			// trim: take everything after the one separating tab.
			val = line[len("Name:"):]
			if len(val) > 0 && val[0] == '\t' {
				val = val[1:]
			}
		}
		if err := s.setField(string(key), val); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	if s.Name == "" && s.Pid == 0 {
		return nil, errors.New("no Name or Pid line")
	}
	return s, nil
}

// setField stores one status line. The switch on string(key) does not
// allocate.
func (s *Status) setField(key string, val []byte) error {
	var err error
	switch key {
	case "Name":
		s.Name = unescapeStatusName(val)
	case "State":
		if len(val) == 0 {
			return errors.New("empty")
		}
		s.State = val[0]
	case "Tgid":
		s.Tgid, err = parseIntField(val)
	case "Pid":
		s.Pid, err = parseIntField(val)
	case "PPid":
		s.PPid, err = parseIntField(val)
	case "TracerPid":
		s.TracerPid, err = parseIntField(val)
	case "Uid":
		err = parseIDQuad(val, &s.Uid)
	case "Gid":
		err = parseIDQuad(val, &s.Gid)
	case "Groups":
		s.Groups, err = parseUint32List(val)
	case "CapInh":
		s.CapInh, err = parseUint(val, 16)
	case "CapPrm":
		s.CapPrm, err = parseUint(val, 16)
	case "CapEff":
		s.CapEff, err = parseUint(val, 16)
	case "CapBnd":
		s.CapBnd, err = parseUint(val, 16)
	case "CapAmb":
		s.CapAmb, err = parseUint(val, 16)
	case "NoNewPrivs":
		var v int
		v, err = parseIntField(val)
		s.NoNewPrivs = v != 0
	case "Seccomp":
		s.Seccomp, err = parseIntField(val)
	case "Umask":
		s.Umask, err = parseUint32(val, 8)
		s.HasUmask = err == nil
	case "SigPnd":
		s.SigPnd, err = parseUint(val, 16)
	case "ShdPnd":
		s.ShdPnd, err = parseUint(val, 16)
	case "SigBlk":
		s.SigBlk, err = parseUint(val, 16)
	case "SigIgn":
		s.SigIgn, err = parseUint(val, 16)
	case "SigCgt":
		s.SigCgt, err = parseUint(val, 16)
	case "Threads":
		s.Threads, err = parseIntField(val)
	case "NSpid":
		s.NSpid, err = parseIntList(val)
	case "NStgid":
		s.NStgid, err = parseIntList(val)
	case "NSpgid":
		s.NSpgid, err = parseIntList(val)
	case "NSsid":
		s.NSsid, err = parseIntList(val)
	}
	return err
}

// parseIDQuad parses "real effective saved fs" of the Uid and Gid lines.
func parseIDQuad(b []byte, dst *[4]uint32) error {
	for i := range dst {
		var f []byte
		f, b = nextField(b)
		v, err := parseUint32(f, 10)
		if err != nil {
			return err
		}
		dst[i] = v
	}
	return nil
}

func parseUint32List(b []byte) ([]uint32, error) {
	var out []uint32
	for {
		var f []byte
		f, b = nextField(b)
		if len(f) == 0 {
			return out, nil
		}
		v, err := parseUint32(f, 10)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
}

// unescapeStatusName undoes the escaping status applies to comm
// (seq_escape_str with ESCAPE_SPACE|ESCAPE_SPECIAL restricted to "\n\\").
// Other escape sequences are decoded too in case the set grows; an unknown
// sequence is kept verbatim.
func unescapeStatusName(b []byte) string {
	if !containsByte(b, '\\') {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c != '\\' || i+1 == len(b) {
			out = append(out, c)
			continue
		}
		var r byte
		switch b[i+1] {
		case 'n':
			r = '\n'
		case '\\':
			r = '\\'
		case 't':
			r = '\t'
		case 'r':
			r = '\r'
		case 'f':
			r = '\f'
		case 'v':
			r = '\v'
		case 'a':
			r = '\a'
		case 'e':
			r = 0x1b
		case '"':
			r = '"'
		default:
			out = append(out, c)
			continue
		}
		out = append(out, r)
		i++
	}
	return string(out)
}

func containsByte(b []byte, c byte) bool {
	for _, x := range b {
		if x == c {
			return true
		}
	}
	return false
}
