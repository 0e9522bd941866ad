package dump

import (
	"sync"

	"golang.org/x/sys/unix"
)

// reapMemory frees the address spaces of the killed processes from cryo's
// side with process_mrelease(2), in one goroutine per process, while their
// exit frees them too: on a paravirtualized guest tearing down 1 GiB of
// small pages takes up to a second on one CPU, and the dump only returns
// once every thread is gone. pidfds are opened before the kill, so that
// no recycled PID is touched. It returns a function that waits for the
// goroutines. Failures are ignored: the exit frees the memory anyway.
func reapMemory(pidfds []int) func() {
	var wg sync.WaitGroup
	for _, fd := range pidfds {
		wg.Add(1)
		go func(fd int) {
			defer wg.Done()
			defer unix.Close(fd)
			unix.Syscall(unix.SYS_PROCESS_MRELEASE, uintptr(fd), 0, 0)
		}(fd)
	}
	return wg.Wait
}
