package dump

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// externals are the resources outside the tree that --external lets it
// hold, in CRIU's syntax.
type externals struct {
	// ttys: terminals, by "RDEV:DEV" in hexadecimal (tty[RDEV:DEV]).
	ttys map[string]bool
	// unix: Unix sockets by inode (unix[INO]), the tree's end or its peer.
	unix map[uint64]bool
	// nets: net namespaces by inode (net[INO]:KEY), left out of the
	// images under KEY: the restore joins the one its caller gives for
	// KEY (podman's extRootNetNS).
	nets map[uint64]string
}

// parseExternal checks the --external values before the tree is touched:
// an unknown kind or a malformed one is refused in one line.
func parseExternal(vals []string) (*externals, error) {
	e := &externals{ttys: map[string]bool{}, unix: map[uint64]bool{}, nets: map[uint64]string{}}
	for _, v := range vals {
		kind, rest, ok := strings.Cut(v, "[")
		id, tail, ok2 := strings.Cut(rest, "]")
		if !ok || !ok2 {
			return nil, fmt.Errorf("--external %q: want KIND[ID], e.g. tty[8800:6] or unix[12345]", v)
		}
		switch kind {
		case "tty":
			r, d, ok := strings.Cut(id, ":")
			rdev, err1 := strconv.ParseUint(r, 16, 64)
			dev, err2 := strconv.ParseUint(d, 16, 64)
			if !ok || err1 != nil || err2 != nil || tail != "" {
				return nil, fmt.Errorf("--external %q: want tty[RDEV:DEV], both in hexadecimal as stat prints them", v)
			}
			e.ttys[fmt.Sprintf("%x:%x", rdev, dev)] = true
		case "unix":
			ino, err := strconv.ParseUint(id, 10, 64)
			if err != nil || tail != "" {
				return nil, fmt.Errorf("--external %q: want unix[INO], the inode of the socket or of its peer", v)
			}
			e.unix[ino] = true
		case "net":
			ino, err := strconv.ParseUint(id, 10, 64)
			key, ok := strings.CutPrefix(tail, ":")
			if err != nil || !ok || key == "" || key == image.EmptyNetKey {
				return nil, fmt.Errorf("--external %q: want net[INO]:KEY, the inode of the net namespace and the key the restore gives it by", v)
			}
			e.nets[ino] = key
		default:
			return nil, fmt.Errorf("--external %q: kind %q is not supported (tty[RDEV:DEV], unix[INO], net[INO]:KEY)", v, kind)
		}
	}
	return e, nil
}

// tty tells whether the terminal st was named by --external tty[RDEV:DEV].
func (e *externals) tty(st *unix.Stat_t) bool {
	return e != nil && e.ttys[fmt.Sprintf("%x:%x", st.Rdev, st.Dev)]
}

// ttyHint is the --external value that would let the terminal st be
// dumped, for the refusal.
func ttyHint(st *unix.Stat_t) string {
	return fmt.Sprintf("--external tty[%x:%x]", st.Rdev, st.Dev)
}

// unixOutside tells whether --external unix[INO] named the tree's socket
// ino or its peer outside the tree.
func (e *externals) unixOutside(ino, peer uint32) bool {
	return e != nil && (e.unix[uint64(ino)] || e.unix[uint64(peer)])
}

// outsidePeer accepts a socket connected to a peer outside the tree that
// --external named: it is saved as it is, peer included, and the restore
// needs --inherit-fd fd[N]:socket:[INO] to give it a socket again (a
// connection cannot be made again without the peer). Bytes the peer sent
// and the tree did not read yet could only be sent again by that peer.
func (ut *unixTable) outsidePeer(d *unixDumped, ino uint32, where string) error {
	if len(d.queued) > 0 {
		return fmt.Errorf("%s: %d messages from the outside peer are queued unread: only that peer could send them again", where, len(d.queued))
	}
	if ut.outside == nil {
		ut.outside = map[uint32]bool{}
	}
	ut.outside[ino] = true
	return nil
}
