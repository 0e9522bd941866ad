package restore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"

	regfile "github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/remote"
	"github.com/cryo-cr/cryo/internal/userns"
	"golang.org/x/sys/unix"
)

// Paths a root restore resolves for a process are resolved as that
// process (docs/security-files.md): the opener, a stub or the process
// itself, takes the owner's file-system identity (fsuid, fsgid and
// supplementary groups) for the call, which drops root's file
// capabilities, and openat2 follows no symlink. What was opened is then
// checked against files.img.

// resolveFlags are openat2's RESOLVE_* flags for every path opened for a
// process: a symlink the user planted is never followed (the names in
// the images are canonical: the dump read them from /proc).
const resolveFlags = unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// validOpenFlags are the flags openat2 takes (the kernel's
// VALID_OPEN_FLAGS).
const validOpenFlags = unix.O_ACCMODE | unix.O_CREAT | unix.O_EXCL | unix.O_NOCTTY | unix.O_TRUNC |
	unix.O_APPEND | unix.O_NONBLOCK | unix.O_SYNC | unix.O_DSYNC | unix.O_ASYNC | unix.O_DIRECT |
	unix.O_LARGEFILE | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_NOATIME | unix.O_CLOEXEC |
	unix.O_PATH | unix.O_TMPFILE

// hostOverflowID is the id an owner whose id its namespace does not map
// gets on the host: nobody, who owns nothing.
const hostOverflowID = 65534

// fsIdentity is a process's file-system identity as one user namespace
// sees it.
type fsIdentity struct {
	uid, gid uint32
	groups   []uint32
}

// ownerIdentity returns owner's saved file-system identity as the user
// namespace of opener (the process making the calls) sees it. ok is false
// when owner has no saved credentials (the stub).
func (opener *process) ownerIdentity(owner *process) (id fsIdentity, ok bool, err error) {
	if len(owner.c.cores) == 0 {
		return id, false, nil
	}
	cr := owner.c.cores[0].GetThreadCore().GetCreds()
	if cr == nil {
		return id, false, nil
	}
	// Saved ids are the owner's own namespace's view (the dump's
	// convention): to the host first, then to the opener's view.
	own := opener.r.snap.ns.users[owner.c.cores[0].GetIds().GetUserNsId()]
	conv := func(inside uint32, m func(*usernsImage) userns.Map) (uint32, bool) {
		host := inside
		if own != nil {
			h, ok := m(own).ToHost(inside)
			if !ok {
				h = hostOverflowID
			}
			host = h
		}
		return opener.hostToOpener(host, m)
	}
	var okU, okG bool
	id.uid, okU = conv(cr.GetFsuid(), uids)
	id.gid, okG = conv(cr.GetFsgid(), gids)
	if !okU || !okG {
		return id, false, fmt.Errorf("the file-system ids %d:%d of process %d are not mapped where its files are opened", cr.GetFsuid(), cr.GetFsgid(), owner.c.pid)
	}
	for _, g := range cr.GetGroups() {
		if in, ok := conv(g, gids); ok {
			id.groups = append(id.groups, in)
		}
	}
	return id, true, nil
}

// uids and gids pick a namespace's uid or gid map.
func uids(u *usernsImage) userns.Map { return u.uidMap }
func gids(u *usernsImage) userns.Map { return u.gidMap }

// hostToOpener converts a host id to the view of the user namespace
// opener is in; false if that namespace does not map it.
func (opener *process) hostToOpener(host uint32, m func(*usernsImage) userns.Map) (uint32, bool) {
	if opener.userns == nil {
		return host, true
	}
	in := m(opener.userns).ToInside(host)
	return in, in != userns.Overflow
}

// nsOwnerIdentity is the identity of the user who made the outermost
// user namespace of the tree that owner is in (unshare -r, a container
// runtime run by that user), as opener sees it: its uid, and the gid its
// maps give the same inside id. That user owns the namespace and every
// process in it, so a file it may open gives them nothing it did not
// have. ok is false for a process in cryo's user namespace.
func (opener *process) nsOwnerIdentity(owner *process) (id fsIdentity, ok bool) {
	if len(owner.c.cores) == 0 {
		return id, false
	}
	u := opener.r.snap.ns.users[owner.c.cores[0].GetIds().GetUserNsId()]
	if u == nil {
		return id, false
	}
	for seen := 0; u.ext.Parent != 0 && seen < 64; seen++ {
		parent := opener.r.snap.ns.users[u.ext.Parent]
		if parent == nil {
			break
		}
		u = parent
	}
	hostGid := uint32(hostOverflowID)
	if in := u.uidMap.ToInside(u.ext.Owner); in != userns.Overflow {
		if g, ok := u.gidMap.ToHost(in); ok {
			hostGid = g
		}
	}
	uid, okU := opener.hostToOpener(u.ext.Owner, uids)
	gid, okG := opener.hostToOpener(hostGid, gids)
	if !okU || !okG || u.ext.Owner == 0 {
		return id, false
	}
	return fsIdentity{uid: uid, gid: gid}, true
}

// asOwner runs fn, which makes calls in p, with p's file-system identity
// made owner's: what fn opens or creates, it does as owner would. Without
// root there is nothing to drop: the stubs have only the user's rights.
func (p *process) asOwner(owner *process, fn func() error) error {
	if os.Geteuid() != 0 || owner == nil {
		return fn()
	}
	id, ok, err := p.ownerIdentity(owner)
	if err != nil {
		return err
	}
	if !ok {
		return fn()
	}
	return p.asIdentity(id, owner, fn)
}

// asIdentity runs fn with p's file-system identity made id (that of
// process owner, for messages), then gives p its own back.
func (p *process) asIdentity(id fsIdentity, owner *process, fn func() error) error {
	t := p.leader
	n, err := t.Syscall(unix.SYS_GETGROUPS, 0, 0)
	if err != nil {
		return fmt.Errorf("process %d: getgroups: %w", p.pid, err)
	}
	saved := make([]byte, 4*n)
	if n > 0 {
		if _, err := t.Syscall(unix.SYS_GETGROUPS, n, p.scratch); err != nil {
			return fmt.Errorf("process %d: getgroups: %w", p.pid, err)
		}
		if err := readMem(p, p.scratch, saved); err != nil {
			return err
		}
	}
	setGroups := func(b []byte) error {
		addr := p.scratch
		if len(b) > 0 {
			var err error
			if addr, err = p.put(b); err != nil {
				return err
			}
		}
		_, err := t.Syscall(unix.SYS_SETGROUPS, uint64(len(b)/4), addr)
		if errors.Is(err, unix.EPERM) {
			// setgroups is denied in this user namespace: the groups
			// stay those the namespace was made with.
			return nil
		}
		return err
	}
	var gb []byte
	for _, g := range id.groups {
		gb = binary.LittleEndian.AppendUint32(gb, g)
	}
	if len(gb) > int(p.scratchSize) {
		return fmt.Errorf("process %d: %d groups", owner.c.pid, len(id.groups))
	}
	if err := setGroups(gb); err != nil {
		return fmt.Errorf("process %d: take the groups of process %d: %w", p.pid, owner.c.pid, err)
	}
	oldGid, _ := t.Syscall(unix.SYS_SETFSGID, uint64(id.gid))
	oldUid, _ := t.Syscall(unix.SYS_SETFSUID, uint64(id.uid))
	// setfsuid reports no error: an invalid id leaves it unchanged and
	// returns the current one, which proves the change took.
	curUid, _ := t.Syscall(unix.SYS_SETFSUID, uint64(^uint32(0)))
	curGid, _ := t.Syscall(unix.SYS_SETFSGID, uint64(^uint32(0)))
	var fnErr error
	if uint32(curUid) != id.uid || uint32(curGid) != id.gid {
		fnErr = fmt.Errorf("process %d: could not take the file-system ids %d:%d of process %d", p.pid, id.uid, id.gid, owner.c.pid)
	} else {
		fnErr = fn()
	}
	t.Syscall(unix.SYS_SETFSUID, oldUid)
	t.Syscall(unix.SYS_SETFSGID, oldGid)
	backErr := setGroups(saved)
	// Changing ids made p non-dumpable, which would make its /proc files
	// root's.
	if _, err := t.Syscall(unix.SYS_PRCTL, unix.PR_SET_DUMPABLE, 1); err != nil && backErr == nil {
		backErr = err
	}
	if fnErr != nil {
		return fnErr
	}
	if backErr != nil {
		return fmt.Errorf("process %d: take back its own ids: %w", p.pid, backErr)
	}
	return nil
}

// openat2 opens name (relative to dirfd) in p with resolve's rules,
// close-on-exec and never as a controlling terminal.
func (p *process) openat2(dirfd uint64, name string, flags, mode, resolve uint64) (uint64, error) {
	b := append([]byte(name), 0)
	for len(b)%8 != 0 {
		b = append(b, 0)
	}
	how := len(b)
	// openat2 refuses flags open ignores: those only the kernel sets, and
	// with O_PATH any but a few.
	flags &= validOpenFlags
	if flags&unix.O_PATH != 0 {
		flags &= unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW
	} else {
		flags |= unix.O_NOCTTY
	}
	b = binary.LittleEndian.AppendUint64(b, flags|unix.O_CLOEXEC)
	b = binary.LittleEndian.AppendUint64(b, mode)
	b = binary.LittleEndian.AppendUint64(b, resolve)
	addr, err := p.put(b)
	if err != nil {
		return 0, err
	}
	fd, err := p.leader.Syscall(unix.SYS_OPENAT2, dirfd, addr, addr+uint64(how), unix.SizeofOpenHow)
	if errors.Is(err, unix.ELOOP) {
		return 0, fmt.Errorf("a symbolic link is in the path (not followed for a restored process): %w", err)
	}
	return fd, err
}

// fileKind names a file type for messages.
func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFCHR:
		return "a character device"
	case unix.S_IFBLK:
		return "a block device"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFLNK:
		return "a symbolic link"
	}
	return fmt.Sprintf("a file of type %#o", mode&unix.S_IFMT)
}

// wantFile is what an opened file must be, from the images.
type wantFile struct {
	f *regfile.RegFileEntry
	// dev and ino, when ino is not 0: the very file (a ghost cryo made).
	dev, ino uint64
	// size: a regular file must have its saved size. Not so for a
	// descriptor: something outside the tree may have appended to a
	// file it writes (a shared log) since the dump.
	size bool
}

// check compares st, the file opened now, with the images: its type, its
// permission bits, a mapped file's size and, for a ghost, its inode.
func (w wantFile) check(st *unix.Stat_t) error {
	want := w.f.GetMode()
	if st.Mode&unix.S_IFMT != want&unix.S_IFMT {
		return fmt.Errorf("it is %s now, the images say %s", fileKind(st.Mode), fileKind(want))
	}
	if st.Mode&0o7777 != want&0o7777 {
		return fmt.Errorf("its mode is %#o now, %#o at the dump", st.Mode&0o7777, want&0o7777)
	}
	if w.size && want&unix.S_IFMT == unix.S_IFREG && w.f.Size != nil && uint64(st.Size) != w.f.GetSize() {
		return fmt.Errorf("its size is %d now, %d at the dump", st.Size, w.f.GetSize())
	}
	if w.ino != 0 && (st.Dev != w.dev || st.Ino != w.ino) {
		return fmt.Errorf("it is not the file cryo put back (inode %d:%d, not %d:%d)", st.Dev, st.Ino, w.dev, w.ino)
	}
	return nil
}

// statFd stats descriptor fd of p, as the file it stands for.
func (p *process) statFd(fd uint64) (*unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(fmt.Sprintf("/proc/%d/fd/%d", p.pid, fd), &st); err != nil {
		return nil, fmt.Errorf("stat what was opened: %w", err)
	}
	return &st, nil
}

// openChecked opens name in p as owner would (see asOwner), following no
// symlink, and checks that it is the file of the images before returning
// its descriptor. The open never blocks (a FIFO or a device put where the
// images say a regular file is refused, not waited on); the descriptor
// gets the saved flags once checked.
func (p *process) openChecked(owner *process, name string, flags uint64, want wantFile) (uint64, error) {
	var fd uint64
	open := func() error {
		var err error
		fd, err = p.openat2(remote.AtFdcwd, name, flags|unix.O_NONBLOCK, 0, resolveFlags)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.ENXIO) && !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.ENOTDIR) {
			return err
		}
		// Opened for writing, a FIFO with no reader or a directory fail
		// with an unclear error: name the type found instead.
		if n, perr := p.openat2(remote.AtFdcwd, name, unix.O_PATH, 0, resolveFlags); perr == nil {
			defer p.leader.Syscall(unix.SYS_CLOSE, n)
			if st, serr := p.statFd(n); serr == nil {
				if cerr := want.check(st); cerr != nil {
					return cerr
				}
			}
		}
		return err
	}
	err := p.asOwner(owner, open)
	asRoot := false
	if (errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM)) && os.Geteuid() == 0 && len(owner.c.cores) > 0 {
		// A process that changed ids after opening the file may not
		// open it again itself. In a user namespace of the tree, the
		// user who owns its namespaces may. In cryo's, root opened it
		// before (a daemon that dropped its rights): root opens it
		// again, still following no symlink, and only a file with one
		// link (no hard link the user could have planted) is taken.
		if id, ok := p.nsOwnerIdentity(owner); ok {
			err = p.asIdentity(id, owner, open)
		} else if p.r.snap.ns.users[owner.c.cores[0].GetIds().GetUserNsId()] == nil {
			p.r.logf("restore pid %d: %s: the process may not open it again itself: opened as root", owner.c.pid, name)
			err, asRoot = open(), true
		}
	}
	if err != nil {
		return 0, err
	}
	st, err := p.statFd(fd)
	if err == nil {
		err = want.check(st)
	}
	if err == nil && asRoot && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink != 1 {
		err = fmt.Errorf("the process may not open it itself, and as root it has %d links: one could have been planted", st.Nlink)
	}
	if err == nil && flags&(unix.O_NONBLOCK|unix.O_PATH) == 0 {
		if _, err = p.leader.Syscall(unix.SYS_FCNTL, fd, unix.F_SETFL, flags&^unix.O_ACCMODE); err != nil {
			err = fmt.Errorf("flags: %w", err)
		}
	}
	if err != nil {
		p.leader.Syscall(unix.SYS_CLOSE, fd)
		return 0, err
	}
	return fd, nil
}

// restoreCwdRoot gives p its working directory and root. Both are opened
// as p's owner, following no symlink, and checked against the images
// before p moves there by descriptor: chroot(".") after fchdir, then
// fchdir to the working directory.
func (p *process) restoreCwdRoot() error {
	t := p.leader
	if dead, _ := image.DeadProcRoot(p.c.fs); dead { // well-formed: loadProcess
		if err := p.holdExeOutsideRoot(); err != nil {
			return err
		}
		return p.enterDeadProcRoot()
	}
	dirAt := func(id uint32, what string) (uint64, error) {
		f := p.r.snap.reg(id)
		name, want := f.GetName(), wantFile{f: f}
		if p.r.snap.ghosts[id] != nil {
			gp, err := p.r.files.ghostPath(p, p, id)
			if err != nil {
				return 0, fmt.Errorf("restore pid %d: %s %s: %w", p.c.pid, what, f.GetName(), err)
			}
			name, want = gp.path, gp.want(p.r.files, id)
		}
		fd, err := p.openChecked(p, name, unix.O_PATH|unix.O_DIRECTORY, want)
		if err != nil {
			return 0, fmt.Errorf("restore pid %d: %s %s: %w", p.c.pid, what, f.GetName(), err)
		}
		return fd, nil
	}
	cwd, err := dirAt(p.c.fs.GetCwdId(), "working directory")
	if err != nil {
		return err
	}
	defer t.Syscall(unix.SYS_CLOSE, cwd)
	if root := p.r.snap.reg(p.c.fs.GetRootId()); root.GetName() != "/" {
		// What lies outside the root must be opened before p is in it.
		if err := p.holdExeOutsideRoot(); err != nil {
			return err
		}
		rfd, err := dirAt(p.c.fs.GetRootId(), "root")
		if err != nil {
			return err
		}
		_, err = t.Syscall(unix.SYS_FCHDIR, rfd)
		t.Syscall(unix.SYS_CLOSE, rfd)
		if err == nil {
			var addr uint64
			if addr, err = p.putString("."); err == nil {
				_, err = t.Syscall(unix.SYS_CHROOT, addr)
			}
		}
		if err != nil {
			return fmt.Errorf("restore pid %d: chroot %s: %w", p.c.pid, root.GetName(), err)
		}
	}
	if _, err := t.Syscall(unix.SYS_FCHDIR, cwd); err != nil {
		return fmt.Errorf("restore pid %d: working directory: %w", p.c.pid, err)
	}
	return nil
}

// inRoot is a path the dump recorded (cryo's view) as p sees it once it
// is back in its root (after restoreCwdRoot): a chrooted process's
// executable is opened from inside its chroot. A path outside it stays
// as it is: such an executable is opened before the process enters its
// root (holdExeOutsideRoot).
func (p *process) inRoot(name string) string {
	root := p.r.snap.reg(p.c.fs.GetRootId()).GetName()
	if root == "/" {
		return name
	}
	if rest, ok := strings.CutPrefix(name, root); ok && strings.HasPrefix(rest, "/") {
		return rest
	}
	return name
}
