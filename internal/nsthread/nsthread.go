// Package nsthread runs Go code inside another process's namespace of one
// kind. A Go program is multi-threaded and cannot move itself, but one OS
// thread can join a UTS, IPC or network namespace: the code runs on a
// locked thread that joins it, and the thread is thrown away afterwards
// (its goroutine exits still locked, so the runtime never reuses it).
package nsthread

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Run runs fn on a thread that joined pid's namespace of the given kind
// ("uts", "ipc", "net") with setns(flag).
func Run(pid int, kind string, flag int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("process %d: %s namespace: %w", pid, kind, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, flag); err != nil {
			errc <- fmt.Errorf("process %d: enter its %s namespace: %w", pid, kind, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
