package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// A Unix socket's path name is bound again by the process that holds it,
// with its effective ids, never by cryo: a root restore must not create,
// remove or chown a file at a path the dumped user controls. The directory
// of the name is opened by that process without following any symbolic
// link (openat2 RESOLVE_NO_SYMLINKS), a socket file left there is removed
// only when no socket still holds it, and the file bound is checked to be
// the one in that directory before its mode and owner are set, through a
// descriptor of it (never through its name).

// socketDir is the directory of a socket's path name, open in process p.
type socketDir struct {
	p    *process
	fd   uint64 // the directory, a descriptor of p's (O_PATH)
	dir  string // its path, for messages
	base string // the socket file's name in it
}

// openSocketDir opens, in p and as p's current ids, the directory of the
// absolute socket path. A symbolic link anywhere on the way is refused: it
// could have been planted by the dumped user to lead root's restore to a
// directory of root's.
func (p *process) openSocketDir(path string) (*socketDir, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("socket path %q is not absolute", path)
	}
	dir, base := filepath.Dir(path), filepath.Base(path)
	fd, err := p.openDirNoSymlinks(dir)
	if errors.Is(err, unix.ELOOP) {
		return nil, fmt.Errorf("directory %s of socket %s has a symbolic link on the way, which a restore never follows (the dumped user could have planted it)", dir, path)
	}
	if err != nil {
		return nil, fmt.Errorf("open directory %s of socket %s: %w", dir, path, err)
	}
	return &socketDir{p: p, fd: fd, dir: dir, base: base}, nil
}

// openDirNoSymlinks opens directory dir in p (O_PATH), as p's current ids,
// and fails with ELOOP if a symbolic link is on the way.
func (p *process) openDirNoSymlinks(dir string) (uint64, error) {
	how := make([]byte, 24) // struct open_how: flags, mode, resolve
	binary.LittleEndian.PutUint64(how, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	binary.LittleEndian.PutUint64(how[16:], unix.RESOLVE_NO_SYMLINKS|unix.RESOLVE_NO_MAGICLINKS)
	howAddr, err := p.putAt(0, how)
	if err != nil {
		return 0, err
	}
	dirAddr, err := p.putAt(64, append([]byte(dir), 0))
	if err != nil {
		return 0, err
	}
	return p.leader.Syscall(unix.SYS_OPENAT2, remote.AtFdcwd, dirAddr, howAddr, 24)
}

// close closes the directory's descriptor in p.
func (d *socketDir) close() { d.p.leader.Syscall(unix.SYS_CLOSE, d.fd) }

// procPath reaches the socket file from cryo through p's descriptor of the
// directory: in p's mount namespace, whatever its path now leads to.
func (d *socketDir) procPath() string {
	return fmt.Sprintf("/proc/%d/fd/%d/%s", d.p.pid, d.fd, d.base)
}

// lstat tells what is at the socket's name in the directory (nil: nothing).
func (d *socketDir) lstat() (*unix.Stat_t, error) {
	var st unix.Stat_t
	err := unix.Lstat(d.procPath(), &st)
	if errors.Is(err, unix.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s/%s: %w", d.dir, d.base, err)
	}
	return &st, nil
}

// unlink removes name from the directory, in p, as p's current ids.
func (d *socketDir) unlink(name string) error {
	addr, err := d.p.putAt(64, append([]byte(name), 0))
	if err != nil {
		return err
	}
	_, err = d.p.leader.Syscall(unix.SYS_UNLINKAT, d.fd, addr, 0)
	return err
}

// rename renames from to to, both in the directory, in p.
func (d *socketDir) rename(from, to string) error {
	a, err := d.p.putAt(64, append([]byte(from), 0))
	if err != nil {
		return err
	}
	b, err := d.p.putAt(64+uint64(len(from))+1, append([]byte(to), 0))
	if err != nil {
		return err
	}
	_, err = d.p.leader.Syscall(unix.SYS_RENAMEAT2, d.fd, a, d.fd, b, unix.RENAME_NOREPLACE)
	return err
}

// sameFile tells whether st is the file a socket's vfs inode and device
// (as sock_diag gives them: the kernel's dev_t) name.
func sameFile(st *unix.Stat_t, ino, dev uint32) bool {
	return uint32(st.Ino) == ino && unix.Major(st.Dev)<<20|unix.Minor(st.Dev) == dev
}

// liveSocketFile tells whether a socket still holds the socket file st,
// reached at path: sock_diag lists the sockets of cryo's network
// namespace with the file each is bound to; one of another namespace is
// found by connecting (only ECONNREFUSED says nobody holds it; a listener
// merely sees a connection closed at once).
func liveSocketFile(st *unix.Stat_t, path string) (bool, error) {
	all, err := sockdiag.Unixes()
	if err != nil {
		return false, err
	}
	for _, u := range all {
		if u.VfsIno != 0 && sameFile(st, u.VfsIno, u.VfsDev) {
			return true, nil
		}
	}
	if len(path) > 107 {
		return false, nil
	}
	s, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false, err
	}
	defer unix.Close(s)
	err = unix.Connect(s, &unix.SockaddrUnix{Name: path})
	return !errors.Is(err, unix.ECONNREFUSED) && !errors.Is(err, unix.ENOENT), nil
}

// removeStale removes a socket file left at the name by the dumped
// process (killed, not closed), as p's current ids. A socket file some
// socket still holds is refused (a live service's, which removing would
// take away from its clients); anything else stays, and the bind then
// fails.
func (d *socketDir) removeStale() error {
	st, err := d.lstat()
	if err != nil || st == nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return err
	}
	live, err := liveSocketFile(st, d.procPath())
	if err != nil {
		return fmt.Errorf("is %s/%s in use: %w", d.dir, d.base, err)
	}
	if live {
		return fmt.Errorf("socket file %s/%s is held by a live socket: it is not removed", d.dir, d.base)
	}
	if err := d.unlink(d.base); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove the stale socket file %s/%s: %w", d.dir, d.base, err)
	}
	return nil
}

// boundFile checks that socket fd of p is bound to the file at the name in
// the directory (not elsewhere, through a directory swapped meanwhile),
// and returns a descriptor of that file in p (O_PATH), through which its
// mode and owner are set.
func (d *socketDir) boundFile(fd uint64) (uint64, error) {
	var sst unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", d.p.pid, fd), &sst); err != nil {
		return 0, err
	}
	all, err := sockdiag.Unixes()
	if err != nil {
		return 0, err
	}
	u := all[uint32(sst.Ino)]
	if u == nil || u.VfsIno == 0 {
		return 0, fmt.Errorf("the socket has no file after its bind")
	}
	addr, err := d.p.putAt(64, append([]byte(d.base), 0))
	if err != nil {
		return 0, err
	}
	pfd, err := d.p.leader.Syscall(unix.SYS_OPENAT, d.fd, addr, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return 0, fmt.Errorf("the socket file %s/%s: %w", d.dir, d.base, err)
	}
	var st unix.Stat_t
	err = unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", d.p.pid, pfd), &st)
	if err == nil && !sameFile(&st, u.VfsIno, u.VfsDev) {
		err = fmt.Errorf("the socket was bound elsewhere than in %s (the directory was swapped during the restore)", d.dir)
	}
	if err != nil {
		d.p.leader.Syscall(unix.SYS_CLOSE, pfd)
		return 0, err
	}
	return pfd, nil
}

// ownerIDs are the effective uid and gid, as p now sees them, of the
// process that holds file id (the first in the tree's order; the root for
// a file only in flight): the ids a bind, listen or connect of that file
// is made with, so that the socket file is theirs, and SO_PEERCRED names
// them to the socket's peers.
func (fp *filePlan) ownerIDs(p *process, id uint32) (uint32, uint32, error) {
	holder := fp.holderOf(id)
	cr := holder.cores[0].GetThreadCore().GetCreds()
	uid, gid := cr.GetEuid(), cr.GetEgid()
	if u := fp.snap.ns.users[holder.cores[0].GetIds().GetUserNsId()]; u != nil {
		var okU, okG bool
		uid, okU = u.uidMap.ToHost(uid)
		gid, okG = u.gidMap.ToHost(gid)
		if !okU || !okG {
			return 0, 0, fmt.Errorf("the ids %d:%d of process %d are not mapped in its user namespace", cr.GetEuid(), cr.GetEgid(), holder.pid)
		}
	}
	return p.idsInside(uid, gid)
}

// holderOf is the first live process of the tree that holds file id (the
// root for a file only in flight).
func (fp *filePlan) holderOf(id uint32) *checkpoint {
	for _, q := range fp.procs {
		if !q.c.zombie && slices.ContainsFunc(q.c.fds, func(fd *fdinfo.FdinfoEntry) bool { return fd.GetId() == id }) {
			return q.c
		}
	}
	return fp.procs[0].c
}

// asHolder runs fn in p with the effective ids and the supplementary
// groups of the holder of file id (cryo's groups, root's, could open a
// directory of root's group to the bind).
func (fp *filePlan) asHolder(p *process, id uint32, fn func() error) error {
	uid, gid, err := fp.ownerIDs(p, id)
	if err != nil {
		return err
	}
	restoreGroups, err := fp.ownerGroups(p, id)
	if err != nil {
		return err
	}
	defer restoreGroups()
	return p.remote().AsEffective(uint64(uid), uint64(gid), fn)
}

// maxOwnerGroups bounds the groups switched for a socket's holder, in the
// scratch area (8 KiB each way).
const maxOwnerGroups = 2048

// ownerGroups gives p the supplementary groups of the holder of file id,
// as p sees them, and returns how to give it back its own. Where p may not
// set its groups (a user namespace that denies setgroups, or a cryo
// without root) they stay: they are then no more than the holder's
// process had there.
func (fp *filePlan) ownerGroups(p *process, id uint32) (func(), error) {
	none := func() {}
	holder := fp.holderOf(id)
	u := fp.snap.ns.users[holder.cores[0].GetIds().GetUserNsId()]
	var want []byte
	for _, g := range holder.cores[0].GetThreadCore().GetCreds().GetGroups() {
		host, ok := g, true
		if u != nil {
			host, ok = u.gidMap.ToHost(g)
		}
		if !ok {
			continue
		}
		in := host
		if p.userns != nil {
			if in = p.userns.gidMap.ToInside(host); in == userns.Overflow {
				continue
			}
		}
		want = binary.LittleEndian.AppendUint32(want, in)
	}
	if len(want)/4 > maxOwnerGroups {
		return none, fmt.Errorf("process %d has %d supplementary groups", holder.pid, len(want)/4)
	}
	rp := p.remote()
	cur, err := rp.Put(8192, make([]byte, 4*maxOwnerGroups))
	if err != nil {
		return none, err
	}
	n, err := rp.Call(unix.SYS_GETGROUPS, maxOwnerGroups, cur)
	if err != nil {
		return none, nil // more than the bound: kept
	}
	old, err := rp.Get(8192, int(n)*4)
	if err != nil {
		return none, err
	}
	addr := p.scratch
	if len(want) > 0 {
		if addr, err = rp.Put(8192, want); err != nil {
			return none, err
		}
	}
	if _, err := rp.Call(unix.SYS_SETGROUPS, uint64(len(want)/4), addr); err != nil {
		return none, nil
	}
	return func() {
		addr := p.scratch
		if len(old) > 0 {
			addr, _ = rp.Put(8192, old)
		}
		rp.Call(unix.SYS_SETGROUPS, n, addr)
	}, nil
}

// bindName binds socket fd of p (file id) to its saved name, as its
// holder: an abstract name as it is; a path name in its directory, opened
// safely, after the stale file of the dumped socket is removed, then given
// its saved mode and owner through a descriptor of the file.
func (fp *filePlan) bindName(p *process, fd uint64, id uint32) error {
	u := fp.snap.files[id].GetUsk()
	name := u.GetName()
	bind := func() error {
		sa := sockdiag.Sockaddr(name)
		addr, err := p.put(sa)
		if err != nil {
			return err
		}
		_, err = p.leader.Syscall(unix.SYS_BIND, fd, addr, uint64(len(sa)))
		if err != nil {
			return fmt.Errorf("bind %q: %w", printable(name), err)
		}
		return nil
	}
	if name[0] == 0 {
		return fp.asHolder(p, id, bind)
	}
	path := socketPath(u)
	var pfd uint64
	err := fp.asHolder(p, id, func() error {
		d, err := p.openSocketDir(path)
		if err != nil {
			return err
		}
		defer d.close()
		if err := d.removeStale(); err != nil {
			return err
		}
		if isRelative(name) {
			back, err := p.enterDir(u.GetNameDir())
			if err != nil {
				return err
			}
			err = bind()
			back()
			if err != nil {
				return fmt.Errorf("%w in %s", err, u.GetNameDir())
			}
		} else if err := bind(); err != nil {
			return err
		}
		pfd, err = d.boundFile(fd)
		if err != nil {
			// Bound elsewhere, where the holder may write: its file
			// goes, by the name, as the holder.
			if addr, perr := p.putString(path); perr == nil {
				p.leader.Syscall(sysUnlink, addr)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	defer p.leader.Syscall(unix.SYS_CLOSE, pfd)
	if fp.boundPaths == nil {
		fp.boundPaths = map[string]bool{}
	}
	fp.boundPaths[path] = true
	if perms := u.GetFilePerms(); perms != nil {
		// The file, not its name: through p's descriptor of it.
		file := fmt.Sprintf("/proc/%d/fd/%d", p.pid, pfd)
		if err := unix.Chmod(file, perms.GetMode()&0o7777); err != nil {
			p.r.logf("%s: mode %#o: %v", path, perms.GetMode()&0o7777, err)
		}
		if err := unix.Chown(file, int(perms.GetUid()), int(perms.GetGid())); err != nil {
			p.r.logf("%s: owner %d:%d: %v", path, perms.GetUid(), perms.GetGid(), err)
		}
	}
	return nil
}

// boundPath is a path by which cryo reaches the file socket id is bound
// to, to send it datagrams: its maker's descriptor of the directory
// (/proc/PID/fd/N/name), opened as its holder without following links and
// checked to hold that socket's file, never the name resolved in cryo's
// namespace, where the dumped user could have swapped a directory for a
// link to another socket (a root service's). done closes the directory.
func (fp *filePlan) boundPath(id uint32) (path string, done func(), err error) {
	p, ok := fp.madeIn[id]
	if !ok {
		return "", nil, fmt.Errorf("socket file %d was not made", id)
	}
	var d *socketDir
	err = fp.asHolder(p, id, func() error {
		var err error
		d, err = p.openSocketDir(socketPath(fp.snap.files[id].GetUsk()))
		return err
	})
	if err != nil {
		return "", nil, err
	}
	pfd, err := d.boundFile(fp.temp[id])
	if err != nil {
		d.close()
		return "", nil, err
	}
	p.leader.Syscall(unix.SYS_CLOSE, pfd)
	if path = d.procPath(); len(path) > 107 {
		d.close()
		return "", nil, fmt.Errorf("%s: too long to reach the socket by", path)
	}
	return path, d.close, nil
}
