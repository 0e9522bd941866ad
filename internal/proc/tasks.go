package proc

import (
	"errors"
	"io/fs"
	"slices"
)

// Tasks returns the thread ids of pid from /proc/PID/task, sorted ascending
// except that the thread-group leader (tid == pid) comes first: tids wrap
// around, so the leader is not necessarily the smallest, and the dumper
// treats it specially.
func Tasks(pid int) ([]int, error) {
	tids, err := readIntDir(pidPath(pid, "task"))
	if err != nil {
		return nil, err
	}
	leaderFirst(tids, pid)
	return tids, nil
}

// leaderFirst moves pid to the front of the sorted tids, keeping the order
// of the others.
func leaderFirst(tids []int, pid int) {
	if i := slices.Index(tids, pid); i > 0 {
		copy(tids[1:i+1], tids[:i])
		tids[0] = pid
	}
}

// ChildrenOf returns the pids of pid's children, sorted: the union of
// /proc/PID/task/*/children, since each file lists only the children forked
// by that one thread. Threads that exit while we iterate are skipped (their
// children are reparented to another thread of the group). The result is
// only reliable for a frozen tree; the children files need
// CONFIG_PROC_CHILDREN.
func ChildrenOf(pid int) ([]int, error) {
	tids, err := Tasks(pid)
	if err != nil {
		return nil, err
	}
	var kids []int
	for _, tid := range tids {
		path := taskPath(pid, tid, "children")
		err := withFile(path, func(b []byte) error {
			k, err := parseIntList(b)
			kids = append(kids, k...)
			return err
		})
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && tid != pid {
				continue
			}
			return nil, err
		}
	}
	slices.Sort(kids)
	return slices.Compact(kids), nil
}
