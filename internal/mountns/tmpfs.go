package mountns

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
	"golang.org/x/sys/unix"
)

// Archive writes the contents of the tmpfs whose root is dir as a gzipped
// tar (CRIU's tmpfs-dev-N.tar.gz.img): directories, regular files, symbolic
// links and hard links, each with its mode and its owner as the host sees
// it (uid and gid of the initial user namespace), the root first as ".".
// A mount point inside it (another filesystem) is saved as an empty
// directory or file: its mount is made again on its own. Devices, FIFOs and
// sockets are refused.
func Archive(w io.Writer, dir string) (err error) {
	zw, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(zw)
	var rootDev uint64
	var rootUID, rootGID uint32
	links := map[uint64]string{} // inode -> first name, for hard links
	err = walk(dir, func(p string, st *unix.Stat_t) error {
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if p == dir {
			rootDev, rootUID, rootGID = st.Dev, st.Uid, st.Gid
		}
		hdr := &tar.Header{Name: rel, Mode: int64(st.Mode & 07777), Uid: int(st.Uid), Gid: int(st.Gid),
			ModTime: time.Unix(st.Mtim.Unix()), Format: tar.FormatPAX}
		if st.Dev != rootDev {
			// A mount point: what the mount hides, its owner too, is not
			// visible. The tmpfs root's owner made it (the engine); the
			// mounted file's may be one the restore cannot give (the
			// host's root for a rootless container's device nodes).
			hdr.Uid, hdr.Gid = int(rootUID), int(rootGID)
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFDIR:
			hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
			if st.Dev != rootDev {
				hdr.Mode = 0o755 // what the mount hides is not visible
				if err := tw.WriteHeader(hdr); err != nil {
					return err
				}
				return fs.SkipDir
			}
		case unix.S_IFLNK:
			target, err := proc.Readlink(p)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
		case unix.S_IFREG:
			if st.Dev != rootDev {
				// A file bind-mounted over one of the tmpfs: the mount
				// point, an empty file, is what is saved.
				hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o644
				break
			}
			if first, ok := links[st.Ino]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			if st.Nlink > 1 {
				links[st.Ino] = rel
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		case unix.S_IFCHR:
			if st.Dev != rootDev {
				// A device bind-mounted over a file of the tmpfs (runc's
				// /dev/console, the terminal's slave): the mount point, an
				// empty file, is what is saved; the mount is the plan's.
				hdr.Typeflag, hdr.Mode = tar.TypeReg, 0o644
				break
			}
			maj, min := unix.Major(st.Rdev), unix.Minor(st.Rdev)
			if !StandardDevice(maj, min) {
				return fmt.Errorf("%s: character device %d:%d in a tmpfs: only the standard devices of a container's /dev (null, zero, full, random, urandom, tty) are supported", p, maj, min)
			}
			hdr.Typeflag, hdr.Devmajor, hdr.Devminor = tar.TypeChar, int64(maj), int64(min)
		default:
			return fmt.Errorf("%s: a %s in a tmpfs is not supported", p, kind(st.Mode))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size == 0 {
			return nil
		}
		f, err := proc.Open(p, os.O_RDONLY)
		if err != nil {
			return err
		}
		defer f.Close()
		if n, err := io.Copy(tw, f); err != nil || n != hdr.Size {
			return fmt.Errorf("%s: copied %d of %d bytes (changed while frozen?): %v", p, n, hdr.Size, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return zw.Close()
}

// walk calls fn on dir and everything below it, in lexical order, as
// filepath.WalkDir does (fn may return fs.SkipDir for a directory), but
// reaching every name through package proc: the tree's files may be
// another user's, which a rootless cryo opens only from inside their user
// namespace (proc's fallback opener), even to list or stat them.
func walk(dir string, fn func(p string, st *unix.Stat_t) error) error {
	st, err := proc.Lstat(dir)
	if err != nil {
		return err
	}
	if err := fn(dir, &st); err != nil {
		if err == fs.SkipDir && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	d, err := proc.Open(dir, os.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		if err := walk(dir+"/"+name, fn); err != nil {
			return err
		}
	}
	return nil
}

// kind names a file type cryo does not save in a tmpfs.
func kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	}
	return fmt.Sprintf("file of type %#o", mode&unix.S_IFMT)
}

// Extract fills the empty tmpfs whose root is dir with what Archive wrote.
// The tmpfs may belong to a user namespace whose ids do not include root's
// (files made by an unmapped fsuid are refused, EOVERFLOW), so the work is
// done on a thread of its own whose fsuid and fsgid are the tmpfs root's
// owner, with root's capabilities raised again; the thread is thrown away.
// The archive is untrusted: every path stays below dir (os.Root).
//
// An owner cryo may not give (EPERM: a rootless cryo, and ids among the
// user's subordinate ones) is returned instead, in the order of the
// archive: the entry keeps cryo's ids and gets its mode, and the caller is
// to give it the saved owner and mode from inside the tmpfs's user
// namespace, once cryo is done with the tmpfs.
func Extract(r io.Reader, dir string) ([]Owner, error) {
	type result struct {
		owners []Owner
		err    error
	}
	c := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		owners, err := extract(r, dir)
		c <- result{owners, err}
	}()
	res := <-c
	return res.owners, res.err
}

// Owner is an entry's saved owner (host ids) and mode that Extract left
// to its caller.
type Owner struct {
	Name     string // below the tmpfs root, cleaned, never ".." or absolute
	UID, GID int
	Mode     int64 // with set-id and sticky bits
	Symlink  bool  // a symbolic link: no mode
}

func extract(r io.Reader, dir string) ([]Owner, error) {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, err
	}
	tr := tar.NewReader(zr)
	hdr, err := tr.Next()
	if err != nil {
		return nil, fmt.Errorf("no root entry: %w", err)
	}
	if hdr.Typeflag != tar.TypeDir || path.Clean(hdr.Name) != "." {
		return nil, fmt.Errorf("the first entry is %q, not the root", hdr.Name)
	}
	if err := becomeFsOwner(hdr.Uid, hdr.Gid); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	type dirTimes struct {
		name string
		hdr  *tar.Header
	}
	dirs := []dirTimes{{".", hdr}}
	var owners []Owner
	// setOwnerMode, or leave the owner to the caller where cryo may not
	// give it.
	own := func(name string, hdr *tar.Header) error {
		err := setOwnerMode(root, name, hdr)
		if !errors.Is(err, unix.EPERM) {
			return err
		}
		o := Owner{Name: name, UID: hdr.Uid, GID: hdr.Gid, Mode: hdr.Mode, Symlink: hdr.Typeflag == tar.TypeSymlink}
		owners = append(owners, o)
		if o.Symlink {
			return nil
		}
		return root.Chmod(name, fileMode(hdr.Mode))
	}
	if err := own(".", hdr); err != nil {
		return nil, fmt.Errorf("the root: %w", err)
	}
	for {
		if hdr, err = tr.Next(); err == io.EOF {
			break
		} else if err != nil {
			return nil, err
		}
		name := path.Clean(hdr.Name)
		if name == "." || path.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
			return nil, fmt.Errorf("entry %q: bad name", hdr.Name)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = root.Mkdir(name, 0o700)
			dirs = append(dirs, dirTimes{name, hdr})
		case tar.TypeSymlink:
			err = root.Symlink(hdr.Linkname, name)
		case tar.TypeLink:
			err = root.Link(path.Clean(hdr.Linkname), name)
		case tar.TypeReg:
			err = writeFile(root, name, tr, hdr.Size)
		case tar.TypeChar:
			err = mknodChar(root, name, hdr)
		default:
			err = fmt.Errorf("type %q is not supported", hdr.Typeflag)
		}
		if err == nil && hdr.Typeflag != tar.TypeLink {
			err = own(name, hdr)
		}
		if err != nil {
			return nil, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			root.Chtimes(name, hdr.ModTime, hdr.ModTime)
		}
	}
	// Directories last, deepest first: making their entries changed them.
	for i := len(dirs) - 1; i >= 0; i-- {
		root.Chtimes(dirs[i].name, dirs[i].hdr.ModTime, dirs[i].hdr.ModTime)
	}
	return owners, nil
}

func writeFile(root *os.Root, name string, r io.Reader, size int64) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%d of %d bytes", n, size)
	}
	return err
}

// setOwnerMode gives an entry its owner, then its mode (chown clears the
// set-id bits).
func setOwnerMode(root *os.Root, name string, hdr *tar.Header) error {
	if err := root.Lchown(name, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeSymlink {
		return nil
	}
	return root.Chmod(name, fileMode(hdr.Mode))
}

func fileMode(m int64) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// becomeFsOwner sets the calling thread's fsuid and fsgid, then raises its
// effective capabilities to its permitted ones again (a fsuid leaving 0
// drops the file capabilities).
func becomeFsOwner(uid, gid int) error {
	if uid < 0 || gid < 0 || int64(uid) > 0xfffffffe || int64(gid) > 0xfffffffe {
		return fmt.Errorf("root owned by %d:%d", uid, gid)
	}
	unix.Setfsgid(gid)
	unix.Setfsuid(uid)
	if got, _ := unix.SetfsuidRetUid(-1); got != uid {
		return fmt.Errorf("setfsuid %d: still %d", uid, got)
	}
	if got, _ := unix.SetfsgidRetGid(-1); got != gid {
		return fmt.Errorf("setfsgid %d: still %d", gid, got)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	for i := range data {
		data[i].Effective = data[i].Permitted
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// StandardDevice reports whether character device major:minor is one of
// the devices every OCI container has in its /dev (null, zero, full,
// random, urandom, tty): the only ones a tmpfs image may make again, the
// images being untrusted input.
func StandardDevice(major, minor uint32) bool {
	switch {
	case major == 1 && (minor == 3 || minor == 5 || minor == 7 || minor == 8 || minor == 9):
		return true
	case major == 5 && minor == 0:
		return true
	}
	return false
}

// mknodChar makes the character device of entry hdr at name beneath root,
// if it is a standard one.
func mknodChar(root *os.Root, name string, hdr *tar.Header) error {
	maj, min := uint32(hdr.Devmajor), uint32(hdr.Devminor)
	if int64(maj) != hdr.Devmajor || int64(min) != hdr.Devminor || !StandardDevice(maj, min) {
		return fmt.Errorf("character device %d:%d: not a standard one", hdr.Devmajor, hdr.Devminor)
	}
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	return unix.Mknodat(int(dir.Fd()), path.Base(name), unix.S_IFCHR|0o600, int(unix.Mkdev(maj, min)))
}
