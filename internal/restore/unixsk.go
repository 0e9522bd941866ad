package restore

import (
	"encoding/binary"
	"fmt"
	"github.com/cryo-cr/cryo/internal/fdkind"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// TCP states as sock_diag reports them.
const (
	stateEstablished = 1
	stateClose       = 7
	stateListen      = 10
)

// makeUnixPair recreates two connected Unix sockets with socketpair and
// queues again the bytes each had to read, written into its peer.
func (fp *filePlan) makeUnixPair(p *process, ids []uint32) error {
	t := p.leader
	a := fp.snap.files[ids[0]].GetUsk()
	where := fmt.Sprintf("restore pid %d Unix sockets %d-%d", p.c.pid, a.GetIno(), a.GetPeer())
	ends, err := fp.connectedPair(p, ids)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	// Both ends out of the way first: either may sit at the other's
	// temporary descriptor (the lowest free numbers are temporaries still
	// to be filled), which moving the first would overwrite.
	for i := range ends {
		high, err := t.Syscall(unix.SYS_FCNTL, ends[i], unix.F_DUPFD_CLOEXEC, fp.base+uint64(fp.tempCount()))
		t.Syscall(unix.SYS_CLOSE, ends[i])
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		ends[i] = high
	}
	for i, id := range ids {
		if err := fp.moveTo(p, ends[i], fp.temp[id]); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if err := fp.socketSettings(p, id); err != nil {
			return err
		}
	}
	return nil
}

// connectedPair makes two connected sockets. socketpair gives both ends
// the creator's credentials as SO_PEERCRED and no name; when the saved
// peer credentials say otherwise (a connect/accept made by processes with
// other ids), or an end has a name (the accepted end of a connection
// carries its listener's), a stream or seqpacket pair is made by listening
// with the first end's peer's ids and connecting with the second's, as it
// happened.
func (fp *filePlan) connectedPair(p *process, ids []uint32) ([]uint64, error) {
	t := p.leader
	a, b := fp.snap.files[ids[0]].GetUsk(), fp.snap.files[ids[1]].GetUsk()
	ca, okA, _ := image.GetPeerCred(a)
	cb, okB, _ := image.GetPeerCred(b)
	named := len(a.GetName()) > 0 || len(b.GetName()) > 0
	if !okA || !okB || a.GetType() == unix.SOCK_DGRAM || (ca.UID == 0 && ca.GID == 0 && cb.UID == 0 && cb.GID == 0 && !named) {
		addr, err := p.put(make([]byte, 8))
		if err != nil {
			return nil, err
		}
		if _, err := t.Syscall(unix.SYS_SOCKETPAIR, unix.AF_UNIX, uint64(a.GetType())|unix.SOCK_CLOEXEC, 0, addr); err != nil {
			return nil, fmt.Errorf("socketpair: %w", err)
		}
		raw := make([]byte, 8)
		if err := readMem(p, addr, raw); err != nil {
			return nil, err
		}
		return []uint64{uint64(binary.LittleEndian.Uint32(raw)), uint64(binary.LittleEndian.Uint32(raw[4:]))}, nil
	}
	sock := func() (uint64, error) {
		return t.Syscall(unix.SYS_SOCKET, unix.AF_UNIX, uint64(a.GetType())|unix.SOCK_CLOEXEC, 0)
	}
	// The saved ids are the host's; p sees them through the user
	// namespace it is in.
	as := func(c image.PeerCred, fn func() error) error {
		uid, gid, err := p.idsInside(c.UID, c.GID)
		if err != nil {
			return fmt.Errorf("peer credentials: %w", err)
		}
		return p.remote().AsEffective(uint64(uid), uint64(gid), fn)
	}
	// The accepted end of a connection carries its listener's name: it is
	// the end with a name. The rendezvous listener takes that name when it
	// is free (the real listener, made later, takes it back), else one of
	// cryo's.
	server, client := 1, 0
	srv := b
	cServer, cClient := cb, ca
	if len(a.GetName()) > 0 && len(b.GetName()) == 0 {
		server, client, srv, cServer, cClient = 0, 1, a, ca, cb
	}
	listener, err := sock()
	if err != nil {
		return nil, err
	}
	defer t.Syscall(unix.SYS_CLOSE, listener)
	bindTo := func(name []byte) (uint64, int, error) {
		sa := sockdiag.Sockaddr(name)
		addr, err := p.putAt(512, sa)
		if err != nil {
			return 0, 0, err
		}
		_, err = t.Syscall(unix.SYS_BIND, listener, addr, uint64(len(sa)))
		return addr, len(sa), err
	}
	var addr uint64
	var salen int
	bound := false
	if name := srv.GetName(); len(name) > 0 && len(name) < 108 && name[0] == 0 {
		if addr, salen, err = bindTo(name); err == nil {
			bound = true
		}
	} else if len(name) > 0 && len(name) < 108 {
		// A path name is taken as the server end's holder, in the
		// directory opened safely; a live socket's file is never moved
		// nor removed: the rendezvous then takes a name of cryo's.
		path := socketPath(srv)
		var d *socketDir
		var pfd uint64
		var leave func()
		err := fp.asHolder(p, ids[server], func() error {
			var err error
			if d, err = p.openSocketDir(path); err != nil {
				return err
			}
			if isRelative(name) {
				// The connect below reaches the name from there too.
				if leave, err = p.enterDir(srv.GetNameDir()); err != nil {
					return err
				}
			}
			if fp.boundPaths[path] {
				// A listener of this restore holds the name already: its
				// file steps aside while the rendezvous takes the name (a
				// Unix socket is reached through its inode), and comes
				// back after the rendezvous's is removed.
				if err := d.rename(d.base, fmt.Sprintf("%s.cryo-restore-%d", d.base, ids[0])); err != nil {
					return err
				}
			} else if err := d.removeStale(); err != nil {
				return err
			}
			if addr, salen, err = bindTo(name); err != nil {
				return err
			}
			pfd, err = d.boundFile(listener)
			return err
		})
		if leave != nil {
			defer leave()
		}
		var made unix.Stat_t
		if err == nil {
			err = unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", p.pid, pfd), &made)
		}
		if err == nil {
			bound = true
			// The connecting end may run as another user than the
			// rendezvous's maker: it needs write access to the file.
			unix.Chmod(fmt.Sprintf("/proc/%d/fd/%d", p.pid, pfd), 0o777)
			t.Syscall(unix.SYS_CLOSE, pfd)
		} else {
			p.r.logf("%s: the rendezvous takes a name of cryo's: %v", path, err)
		}
		if d != nil {
			// Deferred: run once the connection is made, the rendezvous's
			// file first, then the listener's back, as its holder.
			moved := fmt.Sprintf("%s.cryo-restore-%d", d.base, ids[0])
			wasBound := fp.boundPaths[path]
			defer func() {
				fp.asHolder(p, ids[server], func() error {
					if bound {
						if st, err := d.lstat(); err == nil && st != nil && st.Dev == made.Dev && st.Ino == made.Ino {
							d.unlink(d.base)
						}
					}
					if wasBound {
						d.rename(moved, d.base)
					}
					return nil
				})
				d.close()
			}()
		}
	}
	if !bound {
		if addr, salen, err = bindTo([]byte(fmt.Sprintf("\x00cryo-restore-%d-%d", p.c.pid, ids[0]))); err != nil {
			return nil, fmt.Errorf("bind a rendezvous socket: %w", err)
		}
	}
	// The connecting end sees the listener's credentials; the accepted
	// end sees the connecting one's.
	if err := as(cClient, func() error { _, err := t.Syscall(unix.SYS_LISTEN, listener, 1); return err }); err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	c, err := sock()
	if err != nil {
		return nil, err
	}
	if err := as(cServer, func() error { _, err := t.Syscall(unix.SYS_CONNECT, c, addr, uint64(salen)); return err }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	acc, err := t.Syscall(unix.SYS_ACCEPT4, listener, 0, 0, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	ends := make([]uint64, 2)
	ends[client], ends[server] = c, acc
	return ends, nil
}

// peerIDsMapped tells whether user namespace u (nil: cryo's) maps the
// saved peer ids of every socket job j makes.
func (fp *filePlan) peerIDsMapped(j fileJob, u *usernsImage) bool {
	if u == nil {
		return true
	}
	for _, id := range j.ids {
		c, ok, _ := image.GetPeerCred(fp.snap.files[id].GetUsk())
		if ok && (u.uidMap.ToInside(c.UID) == userns.Overflow || u.gidMap.ToInside(c.GID) == userns.Overflow) {
			return false
		}
	}
	return true
}

// isUnix tells whether job j makes Unix sockets.
func (fp *filePlan) isUnix(j fileJob) bool {
	return j.unixPair || (len(j.ids) == 1 && fp.snap.files[j.ids[0]].GetType() == fdinfo.FdTypes_UNIXSK)
}

// uskExtern: CRIU's flag for a socket outside the tree (--ext-unix-sk).
const uskExtern = 1

// makeUnix recreates a Unix socket that is not one end of a pair in the
// tree: bound to its name (a stale socket file at a path is removed
// first), listening if it was, or connected again to the name of its
// external peer.
func (fp *filePlan) makeUnix(p *process, id uint32) error {
	t := p.leader
	u := fp.snap.files[id].GetUsk()
	where := fmt.Sprintf("restore pid %d Unix socket %d", p.c.pid, u.GetIno())
	fd, err := t.Syscall(unix.SYS_SOCKET, unix.AF_UNIX, uint64(u.GetType())|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if err := fp.moveTo(p, fd, fp.temp[id]); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	fd = fp.temp[id]
	if fp.lateBind[id] {
		// Bound, and listening, once its maker is in its mount namespace.
		if u.GetPeer() != 0 && !fp.isOneWay(id) {
			if err := fp.connectExternal(p, id, fd, u.GetPeer()); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		return fp.socketSettings(p, id)
	}
	if name := u.GetName(); len(name) > 0 {
		if len(name) > 107 {
			return fmt.Errorf("%s: name of %d bytes", where, len(name))
		}
		if err := fp.bindName(p, fd, id); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	if u.GetState() == stateListen {
		// As its holder: SO_PEERCRED tells the listener's clients who
		// listens.
		err := fp.asHolder(p, id, func() error {
			_, err := t.Syscall(unix.SYS_LISTEN, fd, uint64(u.GetBacklog()))
			return err
		})
		if err != nil {
			return fmt.Errorf("%s: listen: %w", where, err)
		}
	}
	if u.GetPeer() != 0 && !fp.isOneWay(id) {
		if err := fp.connectExternal(p, id, fd, u.GetPeer()); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
	}
	return fp.socketSettings(p, id)
}

// socketSettings restores file flags and buffer sizes (the kernel doubles
// what is set, and reports the doubled value).
func (fp *filePlan) socketSettings(p *process, id uint32) error {
	t := p.leader
	u := fp.snap.files[id].GetUsk()
	fd := fp.temp[id]
	if _, err := t.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, uint64(u.GetFlags()&^unix.O_ACCMODE)); err != nil {
		return fmt.Errorf("restore pid %d Unix socket %d: flags: %w", p.c.pid, u.GetIno(), err)
	}
	opts := u.GetOpts()
	set := func(opt, v uint64) {
		if addr, err := p.put(binary.LittleEndian.AppendUint32(nil, uint32(v))); err == nil {
			t.Syscall(unix.SYS_SETSOCKOPT, fd, unix.SOL_SOCKET, opt, addr, 4)
		}
	}
	if err := fdkind.SetSockBuffers(p.calls(), fd, opts); err != nil {
		return fmt.Errorf("restore pid %d Unix socket %d: %w", p.c.pid, u.GetIno(), err)
	}
	if err := fdkind.SetSockTimeouts(p.calls(), fd, opts); err != nil {
		return fmt.Errorf("restore pid %d Unix socket %d: %w", p.c.pid, u.GetIno(), err)
	}
	if opts.GetSoPasscred() {
		set(unix.SO_PASSCRED, 1)
	}
	if err := p.setUnixOpts(fd, opts); err != nil {
		return fmt.Errorf("restore pid %d Unix socket %d: %w", p.c.pid, u.GetIno(), err)
	}
	return nil
}

// isRelative tells whether a socket name is a path relative to the
// directory it was bound in (its entry's name_dir).
func isRelative(name []byte) bool { return len(name) > 0 && name[0] != 0 && name[0] != '/' }

// socketPath is where cryo finds a socket's file: its name, joined to the
// directory it was bound in when relative.
func socketPath(u *skunix.UnixSkEntry) string {
	if isRelative(u.GetName()) && u.GetNameDir() != "" {
		return u.GetNameDir() + "/" + string(u.GetName())
	}
	return string(u.GetName())
}

// enterDir moves p's working directory to dir, to bind or reach a
// relative socket name there, and returns how to take it back.
func (p *process) enterDir(dir string) (back func(), err error) {
	t := p.leader
	if dir == "" {
		return nil, fmt.Errorf("relative socket name without the directory it was bound in")
	}
	here, err := p.open(".", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	// Entered through a descriptor opened without following symbolic
	// links, which the dumped user could have planted on the way.
	fd, err := p.openDirNoSymlinks(dir)
	if err == nil {
		_, err = t.Syscall(unix.SYS_FCHDIR, fd)
		t.Syscall(unix.SYS_CLOSE, fd)
	}
	if err != nil {
		t.Syscall(unix.SYS_CLOSE, here)
		return nil, fmt.Errorf("enter %s, where the socket was bound: %w", dir, err)
	}
	return func() {
		t.Syscall(unix.SYS_FCHDIR, here)
		t.Syscall(unix.SYS_CLOSE, here)
	}, nil
}

func printable(name []byte) string {
	if len(name) > 0 && name[0] == 0 {
		return "@" + string(name[1:])
	}
	return string(name)
}

// connectExternal connects socket id, at fd, to its peer outside the
// tree, by the name the peer had at the dump.
func (fp *filePlan) connectExternal(p *process, id uint32, fd uint64, ino uint32) error {
	for _, f := range fp.snap.files {
		peer := f.GetUsk()
		if peer.GetIno() != ino || peer.GetUflags()&uskExtern == 0 {
			continue
		}
		name := peer.GetName()
		if len(name) == 0 || len(name) > 107 {
			return fmt.Errorf("external peer %d: name of %d bytes", ino, len(name))
		}
		// As the socket's holder: the peer, a service outside the tree,
		// learns who connects from SO_PEERCRED.
		if err := fp.asHolder(p, id, func() error { return connectName(p, fd, name) }); err != nil {
			return fmt.Errorf("external peer: %w", err)
		}
		return nil
	}
	return fmt.Errorf("peer %d is neither in the tree nor an external socket", ino)
}

// connectName connects the socket at fd of p to a name, from p.
func connectName(p *process, fd uint64, name []byte) error {
	sa := sockdiag.Sockaddr(name)
	addr, err := p.put(sa)
	if err != nil {
		return err
	}
	if _, err := p.leader.Syscall(unix.SYS_CONNECT, fd, addr, uint64(len(sa))); err != nil {
		return fmt.Errorf("connect to %q: %w", printable(name), err)
	}
	return nil
}
