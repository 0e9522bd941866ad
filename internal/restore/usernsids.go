package restore

import (
	"fmt"
	"github.com/cryo-cr/cryo/internal/image"
)

// checkUsernsIDs refuses a user namespace id that names nothing. The dump
// gives every namespace an id, cryo's own user namespace included, and
// writes an image for each other one: so the processes whose user
// namespace has no image are all in that one namespace (one id), and the
// id of a parent namespace, or of a pid namespace's owner (0: cryo's),
// always has its image. An id outside these rules would otherwise be taken
// silently as cryo's own namespace, with its ids and capabilities.
//
// inventoryID is the root's user namespace id the inventory recorded (0:
// none): the root's core must say the same.
func (s *snapshot) checkUsernsIDs(inventoryID uint32) error {
	if root := s.procs[0]; !root.zombie && inventoryID != 0 {
		if id := root.cores[0].GetIds().GetUserNsId(); id != inventoryID {
			return fmt.Errorf("process %d: user namespace %d names nothing (the inventory says the root is in %d)", root.pid, id, inventoryID)
		}
	}
	var own uint32
	ownPid := 0
	for _, c := range s.procs {
		if c.zombie {
			continue
		}
		id := c.cores[0].GetIds().GetUserNsId()
		if id == 0 || s.ns.users[id] != nil {
			continue
		}
		if own == 0 {
			own, ownPid = id, c.pid
			continue
		}
		if id != own {
			return fmt.Errorf("process %d: user namespace %d names nothing (no %s, and process %d is in cryo's own, %d)", c.pid, id, image.UsernsName(id), ownPid, own)
		}
	}
	for id, u := range s.ns.users {
		if p := u.ext.Parent; p != 0 && s.ns.users[p] == nil {
			return fmt.Errorf("%s: parent user namespace %d names nothing (no %s)", image.UsernsName(id), p, image.UsernsName(p))
		}
	}
	for id, owner := range s.ns.pids {
		if owner != 0 && s.ns.users[owner] == nil {
			return fmt.Errorf("%s: owner user namespace %d names nothing (no %s)", image.PidnsName(id), owner, image.UsernsName(owner))
		}
	}
	return nil
}
