package restore

import (
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// shutdownUnix shuts down again the Unix sockets that were shut down
// (CRIU's shutdown field: the directions the socket itself can no longer
// receive or send, whether it or its peer called shutdown). It runs last,
// once every queue was filled again, since a shut-down socket takes no
// more bytes. shutdown is made on cryo's copy of each socket, which is the
// same socket; for a connected stream or seqpacket socket the kernel
// carries it over to the peer as it did at first.
func (fp *filePlan) shutdownUnix() error {
	ids := make([]uint32, 0, len(fp.snap.files))
	for id, f := range fp.snap.files {
		if u := f.GetUsk(); u != nil && u.GetShutdown() != 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := fp.snap.files[id].GetUsk()
		var how int
		switch u.GetShutdown() {
		case 1:
			how = unix.SHUT_RD
		case 2:
			how = unix.SHUT_WR
		case 3:
			how = unix.SHUT_RDWR
		default:
			return fmt.Errorf("Unix socket %d: shutdown state %d is not one of CRIU's", u.GetIno(), u.GetShutdown())
		}
		if _, made := fp.madeIn[id]; !made {
			// A socket the restore does not make (outside the tree, or a
			// connection's server end that no descriptor holds).
			continue
		}
		s, err := fp.copyOf(id)
		if err != nil {
			return fmt.Errorf("Unix socket %d: %w", u.GetIno(), err)
		}
		err = unix.Shutdown(s, how)
		unix.Close(s)
		if err != nil {
			return fmt.Errorf("Unix socket %d: shutdown: %w", u.GetIno(), err)
		}
	}
	return nil
}
