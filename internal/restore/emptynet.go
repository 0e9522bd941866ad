package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// checkEmptyNet refuses images whose net namespace was left out of the
// dump (empty_ns) unless the restore makes a new one, and a new one for a
// normal user, who may not make it outside the tree's user namespace. It
// returns whether a new one is to be made: as CRIU (root_ns_mask &
// empty_ns), empty_ns makes none for a tree that was in the dumper's own
// net namespace (a rootless runc container shares the host's), which is
// restored in cryo's.
func checkEmptyNet(dir *image.Dir, snap *snapshot, opts Options) (bool, error) {
	if len(snap.procs[0].cores) == 0 || snap.procs[0].cores[0].GetIds().GetNetNsId() == 0 {
		if opts.EmptyNetNS && os.Geteuid() != 0 {
			return false, errors.New("empty_ns: a new net namespace for the tree is made by root only yet")
		}
		return opts.EmptyNetNS, nil
	}
	id := snap.procs[0].cores[0].GetIds().GetNetNsId()
	var e netdev.NetnsEntry
	err := dir.ReadOne(image.NetnsName(id), "NETNS", &e)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // the dumper's own: restored in cryo's
	}
	if err != nil {
		return false, err
	}
	if key := e.GetExtKey(); key != "" && key != image.EmptyNetKey {
		if err := joinExternalNet(key, opts); err != nil {
			return false, err
		}
		snap.externalNet = key
		return false, nil
	}
	if e.GetExtKey() == image.EmptyNetKey && !opts.EmptyNetNS {
		return false, fmt.Errorf("%s: the tree's net namespace was left out of the dump (empty_ns): the restore must make a new one (empty_ns)", image.NetnsName(id))
	}
	// The tree's own (loadNet read it) or the one left out.
	if opts.EmptyNetNS && os.Geteuid() != 0 {
		return false, errors.New("empty_ns: a new net namespace for the tree is made by root only yet")
	}
	return opts.EmptyNetNS, nil
}

// joinExternalNet checks that the caller gives the net namespace the dump
// left out as external (--external net[INO]:KEY, podman's extRootNetNS)
// with --inherit-fd fd[N]:KEY (podman makes and configures a new one for
// the restored container): newEmptyNet moves the stub into it.
func joinExternalNet(key string, opts Options) error {
	fd, ok := opts.InheritFds[key]
	if !ok {
		return fmt.Errorf("the tree's net namespace was left out of the dump as external %q: give the one to restore it in with --inherit-fd fd[N]:%s", key, key)
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("external net namespace %s: joined by root only yet", key)
	}
	t, err := unix.IoctlRetInt(fd, unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("external net namespace %s, fd %d: %w", key, fd, err)
	}
	if t != unix.CLONE_NEWNET {
		return fmt.Errorf("external net namespace %s: fd %d is not a net namespace", key, fd)
	}
	return nil
}

// joinNet moves the stub into the net namespace the caller gave for an
// external one (joinExternalNet), through cryo's descriptor of it.
func (r *restorer) joinNet(stub *process, key string) error {
	fd := r.opts.InheritFds[key]
	ns, err := stub.open(fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), fd), unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("external net namespace %s: %w", key, err)
	}
	defer stub.leader.Syscall(unix.SYS_CLOSE, ns)
	if _, err := stub.leader.Syscall(unix.SYS_SETNS, ns, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("external net namespace %s: setns: %w", key, err)
	}
	r.logf("external net namespace %s: the tree is restored in the one given with --inherit-fd fd[%d]", key, fd)
	return nil
}

// newEmptyNet moves the stub into a new net namespace with its loopback
// up, before the root is cloned from it, when the restore is to make one
// (Options.EmptyNetNS): the tree comes back in it. Unlike CRIU's, whose
// restored containers answer nothing on 127.0.0.1 (criu#590), the loopback
// is up.
func (r *restorer) newEmptyNet(stub *process) error {
	if key := r.snap.externalNet; key != "" {
		return r.joinNet(stub, key)
	}
	if !r.opts.EmptyNetNS {
		return nil
	}
	if _, err := stub.leader.Syscall(unix.SYS_UNSHARE, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("empty_ns: new net namespace: %w", err)
	}
	fd, err := stub.leader.Syscall(unix.SYS_SOCKET, unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("empty_ns: socket to bring the loopback up: %w", err)
	}
	defer stub.leader.Syscall(unix.SYS_CLOSE, fd)
	// struct ifreq: the name, then the flags (a short); 40 bytes in all.
	var ifr [40]byte
	copy(ifr[:], "lo")
	binary.LittleEndian.PutUint16(ifr[unix.IFNAMSIZ:], unix.IFF_UP)
	addr, err := stub.put(ifr[:])
	if err != nil {
		return err
	}
	if _, err := stub.leader.Syscall(unix.SYS_IOCTL, fd, unix.SIOCSIFFLAGS, addr); err != nil {
		return fmt.Errorf("empty_ns: loopback up: %w", err)
	}
	r.logf("empty_ns: the tree is restored in a new net namespace, loopback up")
	return nil
}
