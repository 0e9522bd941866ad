package proc

import (
	"bytes"
	"errors"
	"fmt"
)

// Stat is /proc/PID/stat, fields in the order of proc(5). Fields the kernel
// zeroes for non-ptrace-readable tasks (StartCode, ..., KStkEIP, WChan) or
// keeps only for compatibility are still parsed so that the numbering stays
// obvious; the few the dumper never needs are simply omitted.
type Stat struct {
	Pid        int
	Comm       string // raw task comm, may contain spaces, parens and newlines
	State      byte
	PPid       int
	Pgrp       int
	Session    int
	TtyNr      int
	Tpgid      int
	Flags      uint64 // PF_* flags
	MinFlt     uint64
	CMinFlt    uint64
	MajFlt     uint64
	CMajFlt    uint64
	UTime      uint64 // clock ticks
	STime      uint64
	CUTime     int64
	CSTime     int64
	Priority   int
	Nice       int
	NumThreads int
	StartTime  uint64 // clock ticks after boot
	Vsize      uint64 // bytes
	RSS        int64  // pages
	RSSLim     uint64
	StartCode  uint64
	EndCode    uint64
	StartStack uint64
	ExitSignal int
	Processor  int
	RTPriority uint32
	Policy     uint32
	StartData  uint64
	EndData    uint64
	StartBrk   uint64
	ArgStart   uint64
	ArgEnd     uint64
	EnvStart   uint64
	EnvEnd     uint64
	ExitCode   int
}

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (*Stat, error) {
	return readStat(pidPath(pid, "stat"))
}

// ReadTaskStat reads /proc/PID/task/TID/stat. Unlike ReadStat of the leader
// it reports per-thread values (State, Processor, times).
func ReadTaskStat(pid, tid int) (*Stat, error) {
	return readStat(taskPath(pid, tid, "stat"))
}

func readStat(path string) (*Stat, error) {
	var s *Stat
	err := withFile(path, func(b []byte) error {
		var err error
		s, err = ParseStat(b)
		return err
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// statFields is the number of fields after comm (fields 3..52 of proc(5))
// that ParseStat requires; every kernel since 3.5 prints them all. Later
// kernels may append more, which are ignored.
const statFields = 50

// ParseStat parses the content of a /proc/PID/stat file.
func ParseStat(b []byte) (*Stat, error) {
	// comm is printed raw between "(" and ")" and may itself contain
	// ") (", so the name ends at the last ')': no later field can
	// contain one.
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 0 || closing < open {
		return nil, errors.New("no (comm) field")
	}
	s := &Stat{}
	pid, err := parseIntField(trimSpace(b[:open]))
	if err != nil {
		return nil, fmt.Errorf("pid: %w", err)
	}
	s.Pid = pid
	s.Comm = string(b[open+1 : closing])

	var fields [statFields][]byte
	rest := b[closing+1:]
	for i := range fields {
		fields[i], rest = nextField(rest)
		if len(fields[i]) == 0 {
			return nil, fmt.Errorf("only %d fields after comm, want %d", i, statFields)
		}
	}
	// field returns proc(5) field number n (1-based, comm is 2).
	field := func(n int) []byte { return fields[n-3] }

	if st := field(3); len(st) != 1 {
		return nil, fmt.Errorf("bad state %q", st)
	}
	s.State = field(3)[0]

	// The remaining fields are parsed through a table so that an error
	// names the field and each field costs one line.
	ints := []struct {
		n   int
		dst *int
	}{
		{4, &s.PPid}, {5, &s.Pgrp}, {6, &s.Session}, {7, &s.TtyNr}, {8, &s.Tpgid},
		{18, &s.Priority}, {19, &s.Nice}, {20, &s.NumThreads},
		{38, &s.ExitSignal}, {39, &s.Processor}, {52, &s.ExitCode},
	}
	for _, f := range ints {
		if *f.dst, err = parseIntField(field(f.n)); err != nil {
			return nil, fmt.Errorf("field %d: %w", f.n, err)
		}
	}
	int64s := []struct {
		n   int
		dst *int64
	}{
		{16, &s.CUTime}, {17, &s.CSTime}, {24, &s.RSS},
	}
	for _, f := range int64s {
		if *f.dst, err = parseInt(field(f.n)); err != nil {
			return nil, fmt.Errorf("field %d: %w", f.n, err)
		}
	}
	uints := []struct {
		n   int
		dst *uint64
	}{
		{9, &s.Flags}, {10, &s.MinFlt}, {11, &s.CMinFlt}, {12, &s.MajFlt}, {13, &s.CMajFlt},
		{14, &s.UTime}, {15, &s.STime}, {22, &s.StartTime}, {23, &s.Vsize}, {25, &s.RSSLim},
		{26, &s.StartCode}, {27, &s.EndCode}, {28, &s.StartStack},
		{45, &s.StartData}, {46, &s.EndData}, {47, &s.StartBrk},
		{48, &s.ArgStart}, {49, &s.ArgEnd}, {50, &s.EnvStart}, {51, &s.EnvEnd},
	}
	for _, f := range uints {
		if *f.dst, err = parseUint(field(f.n), 10); err != nil {
			return nil, fmt.Errorf("field %d: %w", f.n, err)
		}
	}
	if s.RTPriority, err = parseUint32(field(40), 10); err != nil {
		return nil, fmt.Errorf("field 40: %w", err)
	}
	if s.Policy, err = parseUint32(field(41), 10); err != nil {
		return nil, fmt.Errorf("field 41: %w", err)
	}
	return s, nil
}
