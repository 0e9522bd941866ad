// Package memtrack tracks which pages of a process were written since a
// pre-dump, without soft-dirty bits: a userfaultfd in asynchronous
// write-protect mode (UFFD_FEATURE_WP_ASYNC) registered over the process's
// private areas, read and re-armed with PAGEMAP_SCAN on /proc/PID/pagemap.
// A keeper process holds the userfaultfds between a pre-dump and the next
// dump (keeper.go): closing the last reference unregisters everything and
// clears the protections, so a lost tracker makes every page look written.
package memtrack

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// userfaultfd and PAGEMAP_SCAN ABI (linux/userfaultfd.h, linux/fs.h); x/sys
// has no definitions.
const (
	uffdAPIVersion     = 0xaa
	uffdioAPI          = 0xc018aa3f
	uffdioRegister     = 0xc020aa00
	pagemapScan        = 0xc0606610
	uffdFeatureWPAsync = 1 << 15 // UFFD_FEATURE_WP_ASYNC
	uffdRegisterWP     = 2       // UFFDIO_REGISTER_MODE_WP
	// UserModeOnly is UFFD_USER_MODE_ONLY, the userfaultfd(2) flag an
	// unprivileged user may use; kernel writes into a protected page
	// (read(2) into it) are still resolved and tracked in async mode.
	UserModeOnly = 1

	scanWPMatching = 1 << 0 // PM_SCAN_WP_MATCHING: write-protect what matched
	// Page categories of PAGEMAP_SCAN.
	pageWritten = 1 << 1 // PAGE_IS_WRITTEN
	pagePresent = 1 << 3 // PAGE_IS_PRESENT
	pageSwapped = 1 << 4 // PAGE_IS_SWAPPED
)

type uffdioAPIArg struct{ api, features, ioctls uint64 }
type uffdioRegisterArg struct{ start, len, mode, ioctls uint64 }

// pmScanArg is struct pm_scan_arg.
type pmScanArg struct {
	size, flags, start, end, walkEnd, vec, vecLen, maxPages   uint64
	categoryInverted, categoryMask, categoryAnyof, returnMask uint64
}

// Region is a range of pages a scan matched: [Start, End).
type Region struct{ Start, End, categories uint64 }

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if e != 0 {
		return e
	}
	return nil
}

// EnableWPAsync does UFFDIO_API with UFFD_FEATURE_WP_ASYNC on a fresh
// userfaultfd.
func EnableWPAsync(fd int) error {
	a := uffdioAPIArg{api: uffdAPIVersion, features: uffdFeatureWPAsync}
	if err := ioctl(fd, uffdioAPI, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("UFFDIO_API(WP_ASYNC): %w", err)
	}
	return nil
}

// RegisterWP registers [start, end) of the userfaultfd's process in
// write-protect mode. Registering an area again with the same userfaultfd
// is allowed.
func RegisterWP(fd int, start, end uint64) error {
	r := uffdioRegisterArg{start: start, len: end - start, mode: uffdRegisterWP}
	if err := ioctl(fd, uffdioRegister, unsafe.Pointer(&r)); err != nil {
		return fmt.Errorf("UFFDIO_REGISTER(WP) %#x-%#x: %w", start, end, err)
	}
	return nil
}

// scan runs PAGEMAP_SCAN over [start, end) of the process whose pagemap is
// open as pm, until the walk reaches end, and returns the regions that
// matched (with category bits ret).
func scan(pm int, start, end, flags, mask, anyof, ret uint64) ([]Region, error) {
	var out []Region
	vec := make([]Region, 512)
	for start < end {
		a := pmScanArg{size: uint64(unsafe.Sizeof(pmScanArg{})), flags: flags, start: start, end: end,
			vec: uint64(uintptr(unsafe.Pointer(&vec[0]))), vecLen: uint64(len(vec)),
			categoryMask: mask, categoryAnyof: anyof, returnMask: ret}
		n, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(pm), pagemapScan, uintptr(unsafe.Pointer(&a)))
		if e != 0 {
			return nil, fmt.Errorf("PAGEMAP_SCAN %#x-%#x: %w", start, end, e)
		}
		out = append(out, vec[:n]...)
		if a.walkEnd <= start {
			return nil, fmt.Errorf("PAGEMAP_SCAN %#x-%#x: no progress", start, end)
		}
		start = a.walkEnd
	}
	return out, nil
}

// Written returns the pages of [start, end) written since they were last
// write-protected, present or swapped. Pages of areas not registered (new
// areas, or every area once the tracker is gone) have no protection and
// count as written.
func Written(pm int, start, end uint64) ([]Region, error) {
	return scan(pm, start, end, 0, pageWritten, pagePresent|pageSwapped, pageWritten)
}

// Protect write-protects the present and swapped pages of [start, end)
// in the registered areas (others are skipped), so that the next write to
// each is seen. Unpopulated pages are left alone: protecting them costs
// page tables, and a page populated later has no protection, so it counts
// as written anyway.
func Protect(pm int, start, end uint64) error {
	_, err := scan(pm, start, end, scanWPMatching, 0, pagePresent|pageSwapped, pagePresent|pageSwapped)
	return err
}

// Probe checks that the kernel can track writes this way: a userfaultfd
// with WP_ASYNC in this process, and PAGEMAP_SCAN on its own pagemap.
func Probe() error {
	fd, _, e := unix.Syscall(unix.SYS_USERFAULTFD, unix.O_CLOEXEC|unix.O_NONBLOCK|UserModeOnly, 0, 0)
	if e != 0 {
		return fmt.Errorf("userfaultfd: %w", e)
	}
	defer unix.Close(int(fd))
	if err := EnableWPAsync(int(fd)); err != nil {
		return err
	}
	pm, err := unix.Open("/proc/self/pagemap", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("pagemap: %w", err)
	}
	defer unix.Close(pm)
	page := uint64(unix.Getpagesize())
	var probe [1]byte
	at := uint64(uintptr(unsafe.Pointer(&probe[0]))) &^ (page - 1)
	if _, err := Written(pm, at, at+page); err != nil {
		return err
	}
	return nil
}
