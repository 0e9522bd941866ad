package restore

import (
	"fmt"
	"slices"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"golang.org/x/sys/unix"
)

// A Unix socket whose path name lies on a mount its holders' mount
// namespace made itself (a tmpfs, a bind mount over a directory) is bound
// where that mount is: in the tree's mount namespace, which exists only
// once the tree was built. The socket is made unbound in phase one, so
// that the processes below its maker inherit it, and its maker binds it
// and listens once it entered its namespaces (bindLate). Binding it in
// cryo's namespace would put its file, and remove a stale one, at the
// same path on the host, where another directory may be (a bind mount
// can cover any directory, one of root's too).

// planLateBinds marks the named Unix sockets held on their holders' own
// mounts, and refuses what would have to reach them by name before they
// are bound: clients waiting in a listener's backlog, messages queued to
// a datagram socket's name.
func (fp *filePlan) planLateBinds(holders map[uint32][]*process) error {
	fp.lateBind = map[uint32]bool{}
	for id, f := range fp.snap.files {
		u := f.GetUsk()
		if f.GetType() != fdinfo.FdTypes_UNIXSK || u == nil || len(u.GetName()) == 0 || u.GetName()[0] == 0 {
			continue
		}
		path := socketPath(u)
		for _, h := range holders[id] {
			if point, ok := fp.snap.ownMount(h.c, path); ok {
				if len(holders[id]) > 0 && fp.isPaired(id) {
					return fmt.Errorf("restore pid %d: Unix socket %d: connected, with its name %s on the tree's own mount at %s: not supported yet", h.c.pid, u.GetIno(), path, point)
				}
				fp.lateBind[id] = true
				break
			}
		}
	}
	if len(fp.lateBind) == 0 {
		return nil
	}
	byIno := map[uint32]uint32{}
	for id, f := range fp.snap.files {
		if u := f.GetUsk(); u != nil {
			byIno[u.GetIno()] = id
		}
	}
	for _, id := range fp.oneWay {
		u := fp.snap.files[id].GetUsk()
		if peer, ok := byIno[u.GetPeer()]; ok && fp.lateBind[peer] {
			return fmt.Errorf("Unix socket %d: connected to socket %d, whose name %s is on the tree's own mount: not supported yet", u.GetIno(), u.GetPeer(), socketPath(fp.snap.files[peer].GetUsk()))
		}
	}
	for id := range fp.snap.skQueues {
		if fp.lateBind[id] {
			u := fp.snap.files[id].GetUsk()
			return fmt.Errorf("Unix socket %d: messages queued in a socket whose name %s is on the tree's own mount: not supported yet", u.GetIno(), socketPath(u))
		}
	}
	return nil
}

// isPaired tells whether socket id is one end of a pair made together.
func (fp *filePlan) isPaired(id uint32) bool {
	for _, jobs := range fp.jobs {
		for _, j := range jobs {
			if j.unixPair && slices.Contains(j.ids, id) {
				return true
			}
		}
	}
	return false
}

// bindLate binds, and makes listen, the sockets p made that are named on
// its namespace's own mounts, now that p is in that namespace.
func (fp *filePlan) bindLate(p *process) error {
	var ids []uint32
	for id := range fp.lateBind {
		if fp.madeIn[id] == p {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		u := fp.snap.files[id].GetUsk()
		where := fmt.Sprintf("restore pid %d Unix socket %d", p.c.pid, u.GetIno())
		for _, q := range fp.procs {
			if q.c.zombie || !slices.ContainsFunc(q.c.fds, func(fd *fdinfo.FdinfoEntry) bool { return fd.GetId() == id }) {
				continue
			}
			if q.c.cores[0].GetIds().GetMntNsId() != p.c.cores[0].GetIds().GetMntNsId() {
				return fmt.Errorf("%s: named %s on the own mount of a mount namespace other than its maker's (pid %d): not supported yet", where, socketPath(u), p.c.pid)
			}
		}
		fd := fp.temp[id]
		if err := fp.bindName(p, fd, id); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if u.GetState() == stateListen {
			err := fp.asHolder(p, id, func() error {
				_, err := p.leader.Syscall(unix.SYS_LISTEN, fd, uint64(u.GetBacklog()))
				return err
			})
			if err != nil {
				return fmt.Errorf("%s: listen: %w", where, err)
			}
		}
	}
	return nil
}
