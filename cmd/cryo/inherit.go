package main

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// parseInheritFd parses CRIU's --inherit-fd fd[N]:KEY into o.inheritFds:
// cryo's descriptor N stands in for the tree's file KEY (pipe:[INO],
// socket:[INO], a path). N must be open in cryo.
func (o *options) parseInheritFd(v string) error {
	rest, ok := strings.CutPrefix(v, "fd[")
	num, key, ok2 := strings.Cut(rest, "]:")
	if !ok || !ok2 || key == "" {
		return usageError("--inherit-fd %q: want fd[N]:RESOURCE (e.g. fd[3]:pipe:[12345])", v)
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 0 {
		return usageError("--inherit-fd %q: bad descriptor number %q", v, num)
	}
	if _, err := unix.FcntlInt(uintptr(n), unix.F_GETFD, 0); err != nil {
		return fmt.Errorf("--inherit-fd %s: cryo's descriptor %d: %w", v, n, err)
	}
	if o.inheritFds == nil {
		o.inheritFds = map[string]int{}
	}
	if _, dup := o.inheritFds[key]; dup {
		return usageError("--inherit-fd: %s given twice", key)
	}
	o.inheritFds[key] = n
	return nil
}

// closeInherited closes cryo's own copies of the inherited descriptors
// once the tree holds them: a reader outside must see the end of a pipe
// when the tree's last writer goes, not when cryo exits.
func (o *options) closeInherited() {
	for _, n := range o.inheritFds {
		unix.Close(n)
	}
}
