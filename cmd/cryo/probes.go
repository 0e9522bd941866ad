package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// probeKcmpEpoll asks kcmp for the file behind a watch of an epoll set of
// cryo's own: the kernel knows KCMP_EPOLL_TFD from Linux 4.13.
func probeKcmpEpoll() (string, error) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(ep)
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(ev)
	if err := unix.EpollCtl(ep, unix.EPOLL_CTL_ADD, ev, &unix.EpollEvent{Events: unix.EPOLLIN}); err != nil {
		return "", err
	}
	pid := os.Getpid()
	same, err := kcmpEpollTfd(pid, ev, pid, ep, ev)
	if err != nil {
		return "", err
	}
	if !same {
		return "", fmt.Errorf("kcmp says the watched eventfd is another file")
	}
	return "", nil
}

// kcmpEpollTFD is KCMP_EPOLL_TFD of linux/kcmp.h (x/sys/unix lacks it).
const kcmpEpollTFD = 7

// kcmpEpollTfd tells whether descriptor fd1 of pid1 is the file that the
// epoll set epfd of pid2 watches under number tfd (kcmp KCMP_EPOLL_TFD).
func kcmpEpollTfd(pid1, fd1, pid2, epfd, tfd int) (bool, error) {
	// struct kcmp_epoll_slot { __u32 efd, tfd, toff; }
	slot := make([]byte, 12)
	binary.NativeEndian.PutUint32(slot[0:], uint32(epfd))
	binary.NativeEndian.PutUint32(slot[4:], uint32(tfd))
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(pid1), uintptr(pid2), kcmpEpollTFD, uintptr(fd1), uintptrOf(slot), 0)
	runtime.KeepAlive(slot)
	if e != 0 {
		return false, e
	}
	return r == 0, nil
}

func probeMntID() (string, error) {
	b, err := os.ReadFile("/proc/self/fdinfo/0")
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "mnt_id:") {
		return "", fmt.Errorf("no mnt_id in fdinfo")
	}
	return "", nil
}

func probeTimerfdInfo() (string, error) {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "it_value:") {
		return "", fmt.Errorf("no it_value in a timerfd's fdinfo")
	}
	return "", nil
}

func probeTimens() (string, error) {
	_, err := os.Stat("/proc/self/ns/time")
	return "", err
}

func probePidfdGetfd() (string, error) {
	pfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(pfd)
	fd, err := unix.PidfdGetfd(pfd, 0, 0)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}

func probeNsPid() (string, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "", err
	}
	if !strings.Contains(string(b), "\nNStgid:") {
		return "", fmt.Errorf("no NStgid in /proc/self/status")
	}
	return "", nil
}

func probeBufLock() (string, error) {
	s, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(s)
	_, err = unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_BUF_LOCK)
	return "", err
}

func probeIPv6Freebind() (string, error) {
	s, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(s)
	return "", unix.SetsockoptInt(s, unix.SOL_IPV6, unix.IPV6_FREEBIND, 1)
}

func probeOpenat2() (string, error) {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_NO_SYMLINKS})
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}

func probeMemfd() (string, error) {
	fd, err := unix.MemfdCreate("cryo-check", unix.MFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	unix.Close(fd)
	return "", nil
}
