// Package proc parses the /proc files the dumper needs to describe a Linux
// process tree: memory mappings, pagemap, status, stat, limits, file
// descriptors, namespaces and id maps; and it takes copies of a process's
// descriptors (CopyFd), for what /proc does not show.
//
// Every reader comes in two halves: a function that opens the file for a pid
// (ReadStat, Maps, ...) and a Parse* function that only sees bytes. The split
// keeps the parsers testable and fuzzable on fixed text and keeps I/O error
// handling in one place.
//
// Processes can exit at any moment while their /proc files are being read.
// All I/O errors are returned wrapped (never swallowed) and an ESRCH returned
// by a read on an already opened file is made to match fs.ErrNotExist too, so
// callers can treat "the process went away" uniformly with
// errors.Is(err, fs.ErrNotExist).
package proc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// procRoot is the procfs mount used for every path. It is a single constant
// so that pointing the package at another procfs instance is a one-line change.
const procRoot = "/proc"

// pageSize is cached because Pagemap converts addresses to file offsets on
// every call and the value never changes for the life of the process.
var pageSize = uint64(unix.Getpagesize())

// PageSize returns the system page size in bytes, the unit of /proc/PID/pagemap
// entries and of mapping boundaries.
func PageSize() uint64 { return pageSize }

func pidPath(pid int, name string) string {
	return procRoot + "/" + strconv.Itoa(pid) + "/" + name
}

func taskPath(pid, tid int, name string) string {
	return procRoot + "/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/" + name
}

// goneError marks an ESRCH from a /proc file that was opened successfully:
// seq_file handlers return ESRCH when the task was reaped between open and
// read. Callers care about "process gone", which for a not-yet-opened file is
// ENOENT, so this error matches fs.ErrNotExist as well as unix.ESRCH.
type goneError struct{ err error }

func (e *goneError) Error() string        { return e.err.Error() }
func (e *goneError) Unwrap() error        { return e.err }
func (e *goneError) Is(target error) bool { return target == fs.ErrNotExist }

// ioError wraps an os error with the package prefix. The os error already
// carries the operation and the path, so repeating them would only add noise.
func ioError(err error) error {
	if errors.Is(err, unix.ESRCH) {
		err = &goneError{err}
	}
	return fmt.Errorf("proc: %w", err)
}

func parseError(path string, err error) error {
	return fmt.Errorf("proc: parse %s: %w", path, err)
}

// bufPool recycles read buffers for the small, frequently read files (stat,
// status, fdinfo of every thread and fd). Parsers never retain the slice.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

const maxPooledBuf = 64 << 10

// withFile reads the whole file at path into a pooled buffer and calls parse
// on it. The buffer is only valid during the call.
//
// Reading everything before parsing matters for seq_file based files: the
// kernel renders single-record files (stat, status) in one go on the first
// read, so the bytes we get are a consistent snapshot.
func withFile(path string, parse func([]byte) error) error {
	f, err := Open(path, os.O_RDONLY)
	if err != nil {
		return ioError(err)
	}
	defer f.Close()

	bp := bufPool.Get().(*[]byte)
	defer func() {
		// Do not let one huge file (an epoll fdinfo with 100k targets)
		// pin its buffer in the pool.
		if cap(*bp) <= maxPooledBuf {
			bufPool.Put(bp)
		}
	}()
	buf := (*bp)[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = buf
			return ioError(err)
		}
	}
	*bp = buf
	if err := parse(buf); err != nil {
		return parseError(path, err)
	}
	return nil
}

// readFile returns a private copy of a whole file, for callers that hand the
// bytes out (cmdline, environ).
func readFile(path string) ([]byte, error) {
	b, err := ReadFile(path)
	if err != nil {
		return nil, ioError(err)
	}
	return b, nil
}

func readLink(path string) (string, error) {
	s, err := Readlink(path)
	if err != nil {
		return "", ioError(err)
	}
	return s, nil
}

// readSingleUint reads a file holding one number (oom_score_adj, loginuid,
// personality) in the given base.
func readSingleUint(path string, base int) (uint64, error) {
	var v uint64
	err := withFile(path, func(b []byte) error {
		var err error
		v, err = parseUint(trimSpace(b), base)
		return err
	})
	return v, err
}

// CopyFd takes a copy of descriptor fd of process pid (pidfd_getfd): the
// same open file, a socket say, to query or fill from cryo. The caller
// closes it.
func CopyFd(pid, fd int) (int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, fmt.Errorf("pidfd of process %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	s, err := unix.PidfdGetfd(pidfd, fd, 0)
	if err != nil {
		return -1, fmt.Errorf("take a copy of fd %d: %w", fd, err)
	}
	return s, nil
}
