package restore

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"

	skunix "github.com/checkpoint-restore/go-criu/v7/crit/images/sk-unix"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/proc"
	"github.com/cryo-cr/cryo/internal/sockdiag"
	"github.com/cryo-cr/cryo/internal/userns"
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
	return fp.shutdownUnix()
}

// connectTo connects socket id to the name of peer, from the process that
// made it and with its holder's ids (so that the server end's SO_PEERCRED
// names it).
func (fp *filePlan) connectTo(id uint32, peer *skunix.UnixSkEntry) error {
	p := fp.madeIn[id]
	u := fp.snap.files[id].GetUsk()
	err := fp.asHolder(p, id, func() error { return connectName(p, fp.temp[id], peer.GetName()) })
	if err != nil {
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
		// x/sys/unix spells an abstract name as printable does. A path
		// is never resolved by cryo: the receiver's file is reached
		// through its maker's descriptor of the directory, checked to be
		// the one it is bound to (see boundPath).
		dest = &unix.SockaddrUnix{Name: printable(u.GetName())}
		if u.GetName()[0] != 0 {
			path, done, err := fp.boundPath(id)
			if err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
			defer done()
			dest = &unix.SockaddrUnix{Name: path}
		}
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
	cred, err := fp.credsNow(m.cred)
	if err != nil {
		return err
	}
	return sockdiag.SendWhole(s, m.data, fds, cred, to)
}

// credsNow is saved credentials as cryo gives them again: the pid is the
// image's, the kernel reads it in cryo's pid namespace, where the process
// now has p.pid (another PID when the restore moved the tree's PIDs, or
// made its pid namespace again). checkCreds made sure cryo may give it.
func (fp *filePlan) credsNow(saved *unix.Ucred) (*unix.Ucred, error) {
	if saved == nil {
		return nil, nil
	}
	for _, p := range fp.procs {
		if p.c.pid == int(saved.Pid) {
			now := *saved
			now.Pid = int32(p.pid)
			return &now, nil
		}
	}
	return nil, fmt.Errorf("credentials of process %d, not in the tree", saved.Pid)
}

// checkCreds refuses, before anything is made, the queued messages whose
// saved credentials cannot be given again. Each names a process (by its
// pid, which must be one of the image), and the kernel takes from cryo a
// pid other than its own only with CAP_SYS_ADMIN over cryo's pid
// namespace (scm_check_creds): never in a rootless restore.
func (s *snapshot) checkCreds() error {
	inImage := map[int]bool{}
	for _, c := range s.procs {
		inImage[c.pid] = true
	}
	ids := make([]uint32, 0, len(s.skQueues))
	for id := range s.skQueues {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var may error
	checked := false
	for _, id := range ids {
		for _, m := range s.skQueues[id] {
			if m.cred == nil {
				continue
			}
			where := fmt.Sprintf("Unix socket %d: a message queued with the credentials of process %d", s.files[id].GetUsk().GetIno(), m.cred.Pid)
			if !inImage[int(m.cred.Pid)] {
				return fmt.Errorf("%s, not a process of the image", where)
			}
			if !checked {
				may, checked = mayGiveOthersCreds(), true
			}
			if may != nil {
				return fmt.Errorf("%s cannot be sent again: %w", where, may)
			}
		}
	}
	return nil
}

// mayGiveOthersCreds tells whether cryo may send credentials naming
// another process: it needs CAP_SYS_ADMIN in the user namespace that owns
// its pid namespace.
func mayGiveOthersCreds() error {
	const why = "cryo lacks CAP_SYS_ADMIN over its pid namespace (a rootless restore): not supported"
	st, err := proc.ReadStatus(os.Getpid())
	if err != nil {
		return err
	}
	if st.CapEff&(1<<capSysAdmin) == 0 {
		return errors.New(why)
	}
	owner, err := userns.OwnerOf(os.Getpid(), "pid")
	if errors.Is(err, unix.EPERM) {
		return errors.New(why) // owned by an ancestor of cryo's user namespace
	}
	if err != nil {
		return fmt.Errorf("owner of cryo's pid namespace: %w", err)
	}
	var own unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &own); err != nil {
		return err
	}
	if owner != own.Ino {
		return errors.New(why)
	}
	return nil
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
