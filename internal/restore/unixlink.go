package restore

import (
	"fmt"
	"slices"
	"sort"

	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"golang.org/x/sys/unix"
)

// Once every file of the tree exists (end of phase one), Unix sockets are
// linked to each other: sockets connected one way connect to their peers'
// names, a listener's waiting connections are made again in the order of
// its backlog, and every queued message is sent again, with the files in
// flight with it, from the socket that sent it.

// checkOneWay accepts a socket connected to a peer that is not connected
// back: a stream or seqpacket client waiting in a listener's backlog, or a
// datagram socket connected to a named one.
func checkOneWay(u, peer *skunix.UnixSkEntry) error {
	switch {
	case len(peer.GetName()) == 0 || len(peer.GetName()) > 107:
		return fmt.Errorf("Unix socket %d is connected one way to socket %d, which has no name to connect to", u.GetIno(), peer.GetIno())
	case u.GetType() != peer.GetType():
		return fmt.Errorf("Unix socket %d is connected to socket %d of another type", u.GetIno(), peer.GetIno())
	case u.GetType() == unix.SOCK_DGRAM:
		return nil
	case peer.GetState() != stateListen:
		return fmt.Errorf("Unix socket %d is connected one way to socket %d, which is not listening", u.GetIno(), peer.GetIno())
	}
	clients, _, err := image.Backlog(peer)
	if err != nil {
		return fmt.Errorf("Unix socket %d: %w", peer.GetIno(), err)
	}
	if !slices.Contains(clients, u.GetIno()) {
		return fmt.Errorf("Unix socket %d waits for listener %d, which does not list it in its backlog", u.GetIno(), peer.GetIno())
	}
	return nil
}

func (fp *filePlan) isOneWay(id uint32) bool { return slices.Contains(fp.oneWay, id) }

// linkUnix is the last step of phase one.
func (fp *filePlan) linkUnix() error {
	byIno := map[uint32]uint32{}
	for id, f := range fp.snap.files {
		if u := f.GetUsk(); u != nil {
			byIno[u.GetIno()] = id
		}
	}
	// Queues first: a datagram socket connected one way takes datagrams
	// from its peer only, but may hold some sent before it connected.
	if err := fp.fillQueues(byIno); err != nil {
		return err
	}
	// Then datagram sockets connect, and each listener's clients in
	// backlog order (the order of ids keeps it stable from run to run),
	// each followed by what it had sent.
	var listeners []uint32
	for _, id := range fp.oneWay {
		u := fp.snap.files[id].GetUsk()
		if u.GetType() != unix.SOCK_DGRAM {
			if l := byIno[u.GetPeer()]; !slices.Contains(listeners, l) {
				listeners = append(listeners, l)
			}
			continue
		}
		if err := fp.connectTo(id, fp.snap.files[byIno[u.GetPeer()]].GetUsk()); err != nil {
			return err
		}
	}
	sort.Slice(listeners, func(i, j int) bool { return listeners[i] < listeners[j] })
	// embryo: the server end of a waiting connection, by its client's id.
	embryo := map[uint32]uint32{}
	for id, f := range fp.snap.files {
		if u := f.GetUsk(); u != nil {
			if _, of, _ := image.Backlog(u); of != 0 {
				embryo[byIno[u.GetPeer()]] = id
			}
		}
	}
	for _, l := range listeners {
		lu := fp.snap.files[l].GetUsk()
		clients, _, _ := image.Backlog(lu)
		for _, c := range clients {
			id, ok := byIno[c]
			if !ok || !fp.isOneWay(id) {
				return fmt.Errorf("Unix socket %d: client %d of its backlog is not in the tree", lu.GetIno(), c)
			}
			if err := fp.connectTo(id, lu); err != nil {
				return err
			}
			// What the client sent waits in the server end.
			if e, ok := embryo[id]; ok {
				if err := fp.sendQueue(e, fp.snap.skQueues[e], id, false); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// connectTo connects socket id to the name of peer, from the process that
// made it (so that the server end's SO_PEERCRED names it).
func (fp *filePlan) connectTo(id uint32, peer *skunix.UnixSkEntry) error {
	p := fp.madeIn[id]
	u := fp.snap.files[id].GetUsk()
	if err := connectName(p, fp.temp[id], peer.GetName()); err != nil {
		return fmt.Errorf("restore pid %d Unix socket %d: %w", p.c.pid, u.GetIno(), err)
	}
	return nil
}

// fillQueues queues again what every socket had to read: written into its
// peer when the two are connected both ways, else sent to its name from
// the socket each message came from.
func (fp *filePlan) fillQueues(byIno map[uint32]uint32) error {
	ids := make([]uint32, 0, len(fp.snap.skQueues))
	for id := range fp.snap.skQueues {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		u := fp.snap.files[id].GetUsk()
		if _, of, _ := image.Backlog(u); of != 0 {
			continue // sent by its client once connected
		}
		if _, ok := fp.madeIn[id]; !ok {
			return fmt.Errorf("Unix socket %d: messages queued in a socket the tree does not hold", u.GetIno())
		}
		peer, ok := byIno[u.GetPeer()]
		if ok && u.GetPeer() != 0 && fp.snap.files[peer].GetUsk().GetPeer() == u.GetIno() {
			if err := fp.sendQueue(id, fp.snap.skQueues[id], peer, false); err != nil {
				return err
			}
			continue
		}
		name := u.GetName()
		if len(name) == 0 || len(name) > 107 {
			return fmt.Errorf("Unix socket %d: messages queued in a socket without a name, not connected both ways", u.GetIno())
		}
		if u.GetType() != unix.SOCK_DGRAM {
			return fmt.Errorf("Unix socket %d: bytes queued in a %d socket that is not connected", u.GetIno(), u.GetType())
		}
		for _, m := range fp.snap.skQueues[id] {
			if err := fp.sendQueue(id, []queuedMsg{m}, m.sender, true); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendQueue sends msgs for socket id from a copy of socket from (0: an
// unnamed socket of cryo's), addressed to the name of socket id if toName,
// each with its files in flight.
func (fp *filePlan) sendQueue(id uint32, msgs []queuedMsg, from uint32, toName bool) error {
	u := fp.snap.files[id].GetUsk()
	where := fmt.Sprintf("restore Unix socket %d", u.GetIno())
	var s int
	var err error
	if from == 0 {
		s, err = unix.Socket(unix.AF_UNIX, int(u.GetType())|unix.SOCK_CLOEXEC, 0)
	} else {
		s, err = fp.copyOf(from)
	}
	if err != nil {
		return fmt.Errorf("%s: sender: %w", where, err)
	}
	defer unix.Close(s)
	var dest unix.Sockaddr
	if toName {
		// x/sys/unix spells an abstract name as printable does.
		dest = &unix.SockaddrUnix{Name: printable(u.GetName())}
	}
	for _, m := range msgs {
		if err := fp.sendOne(s, m, dest); err != nil {
			return fmt.Errorf("%s: queue %d bytes: %w", where, len(m.data), err)
		}
	}
	return nil
}

// sendOne sends one message through s, whole, with copies of its files in
// flight.
func (fp *filePlan) sendOne(s int, m queuedMsg, to unix.Sockaddr) error {
	var fds []int
	defer func() { closeFds(fds) }()
	for _, id := range m.fds {
		c, err := fp.copyOf(id)
		if err != nil {
			return fmt.Errorf("file %d in flight: %w", id, err)
		}
		fds = append(fds, c)
	}
	// The sender's credentials, as root may give any (its process
	// exists again: the same PID).
	return sockdiag.SendWhole(s, m.data, fds, m.cred, to)
}

// copyOf takes a copy of file id from the process that made it.
func (fp *filePlan) copyOf(id uint32) (int, error) {
	p, ok := fp.madeIn[id]
	if !ok {
		return -1, fmt.Errorf("file %d was not made", id)
	}
	return proc.CopyFd(p.pid, int(fp.temp[id]))
}

func closeFds(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
