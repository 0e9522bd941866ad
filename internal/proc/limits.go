package proc

import (
	"bytes"
	"fmt"

	"golang.org/x/sys/unix"
)

// Rlimit is one resource limit; unix.RLIM_INFINITY stands for "unlimited".
type Rlimit struct{ Cur, Max uint64 }

// NumRlimits is the number of resource limits Linux defines
// (RLIMIT_CPU = 0 ... RLIMIT_RTTIME = 15).
const NumRlimits = 16

// limitNames are the row titles of /proc/PID/limits (lnames[] in
// fs/proc/base.c) keyed by resource number. Rows are matched by title
// rather than position because the numbering differs between architectures
// (RLIMIT_NOFILE is 5 on MIPS) while the titles do not.
var limitNames = [...]struct {
	res  int
	name string
}{
	{unix.RLIMIT_CPU, "Max cpu time"},
	{unix.RLIMIT_FSIZE, "Max file size"},
	{unix.RLIMIT_DATA, "Max data size"},
	{unix.RLIMIT_STACK, "Max stack size"},
	{unix.RLIMIT_CORE, "Max core file size"},
	{unix.RLIMIT_RSS, "Max resident set"},
	{unix.RLIMIT_NPROC, "Max processes"},
	{unix.RLIMIT_NOFILE, "Max open files"},
	{unix.RLIMIT_MEMLOCK, "Max locked memory"},
	{unix.RLIMIT_AS, "Max address space"},
	{unix.RLIMIT_LOCKS, "Max file locks"},
	{unix.RLIMIT_SIGPENDING, "Max pending signals"},
	{unix.RLIMIT_MSGQUEUE, "Max msgqueue size"},
	{unix.RLIMIT_NICE, "Max nice priority"},
	{unix.RLIMIT_RTPRIO, "Max realtime priority"},
	{unix.RLIMIT_RTTIME, "Max realtime timeout"},
}

// Limits reads /proc/PID/limits, indexed by RLIMIT_* number. Reading the
// file works on any process, where prlimit(2) would need the same
// credentials or CAP_SYS_RESOURCE and the task to be alive at that moment.
func Limits(pid int) ([NumRlimits]Rlimit, error) {
	var lim [NumRlimits]Rlimit
	path := pidPath(pid, "limits")
	err := withFile(path, func(b []byte) error {
		var err error
		lim, err = ParseLimits(b)
		return err
	})
	return lim, err
}

// ParseLimits parses the content of /proc/PID/limits. Unknown rows are
// ignored (a future kernel may add resources); a missing known row is an
// error because silently restoring a zero limit would break the process.
func ParseLimits(b []byte) ([NumRlimits]Rlimit, error) {
	var (
		lim  [NumRlimits]Rlimit
		seen [NumRlimits]bool
	)
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		for _, ln := range limitNames {
			// The title is padded to a fixed width; require a blank
			// after it so "Max file size" never matches a longer title.
			if len(line) <= len(ln.name) || !bytes.HasPrefix(line, []byte(ln.name)) || line[len(ln.name)] != ' ' {
				continue
			}
			soft, rest := nextField(line[len(ln.name):])
			hard, _ := nextField(rest)
			var r Rlimit
			var err error
			if r.Cur, err = parseLimitValue(soft); err != nil {
				return lim, fmt.Errorf("%s soft limit: %w", ln.name, err)
			}
			if r.Max, err = parseLimitValue(hard); err != nil {
				return lim, fmt.Errorf("%s hard limit: %w", ln.name, err)
			}
			lim[ln.res] = r
			seen[ln.res] = true
			break
		}
	}
	for _, ln := range limitNames {
		if !seen[ln.res] {
			return lim, fmt.Errorf("no %q row", ln.name)
		}
	}
	return lim, nil
}

func parseLimitValue(b []byte) (uint64, error) {
	if string(b) == "unlimited" {
		return unix.RLIM_INFINITY, nil
	}
	return parseUint(b, 10)
}
