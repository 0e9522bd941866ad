package ptrace

import (
	"fmt"
	"os"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// ReadMem copies len(buf) bytes at addr in process pid into buf with
// process_vm_readv. It fails on unreadable pages (see ReadMemForce).
func ReadMem(pid int, addr uint64, buf []byte) error {
	for done := 0; done < len(buf); {
		local := []unix.Iovec{{Base: &buf[done]}}
		local[0].SetLen(len(buf) - done)
		remote := []unix.RemoteIovec{{Base: uintptr(addr) + uintptr(done), Len: len(buf) - done}}
		n, err := unix.ProcessVMReadv(pid, local, remote, 0)
		if err != nil {
			return fmt.Errorf("read memory of %d at %#x: %w", pid, addr+uint64(done), err)
		}
		if n == 0 {
			return fmt.Errorf("read memory of %d at %#x: short read", pid, addr+uint64(done))
		}
		done += n
	}
	return nil
}

// WriteMem copies buf to addr in process pid with process_vm_writev.
func WriteMem(pid int, addr uint64, buf []byte) error {
	for done := 0; done < len(buf); {
		local := []unix.Iovec{{Base: &buf[done]}}
		local[0].SetLen(len(buf) - done)
		remote := []unix.RemoteIovec{{Base: uintptr(addr) + uintptr(done), Len: len(buf) - done}}
		n, err := unix.ProcessVMWritev(pid, local, remote, 0)
		if err != nil {
			return fmt.Errorf("write memory of %d at %#x: %w", pid, addr+uint64(done), err)
		}
		if n == 0 {
			return fmt.Errorf("write memory of %d at %#x: short write", pid, addr+uint64(done))
		}
		done += n
	}
	return nil
}

// MemFile is /proc/PID/mem, which reaches pages whatever their protection
// (PROT_NONE and read-only mappings), as a debugger does.
type MemFile struct{ f *os.File }

// OpenMem opens /proc/pid/mem for reading and writing (through proc's
// fallback opener, if cryo may not open it itself).
func OpenMem(pid int) (*MemFile, error) {
	f, err := proc.Open(fmt.Sprintf("/proc/%d/mem", pid), os.O_RDWR)
	if err != nil {
		return nil, fmt.Errorf("open memory of %d: %w", pid, err)
	}
	return &MemFile{f: f}, nil
}

// ReadAt reads at a tracee address.
func (m *MemFile) ReadAt(buf []byte, addr uint64) error {
	if _, err := m.f.ReadAt(buf, int64(addr)); err != nil {
		return fmt.Errorf("read %s at %#x: %w", m.f.Name(), addr, err)
	}
	return nil
}

// WriteAt writes at a tracee address.
func (m *MemFile) WriteAt(buf []byte, addr uint64) error {
	if _, err := m.f.WriteAt(buf, int64(addr)); err != nil {
		return fmt.Errorf("write %s at %#x: %w", m.f.Name(), addr, err)
	}
	return nil
}

// Close closes the file.
func (m *MemFile) Close() error { return m.f.Close() }
