package dump

import (
	"fmt"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/netdev"
	"github.com/cryo-cr/cryo/internal/image"
	"google.golang.org/protobuf/proto"
)

// leaveNetOut records that p's net namespace ino, not cryo's, is left out
// of the images (Options.EmptyNetNS): the restore makes a new, empty one
// for the whole tree, so the tree may have only this one.
func (t *nsTable) leaveNetOut(p *process, ino uint64) error {
	if len(t.extNets) > 0 && t.extNets[ino] == "" && !t.emptyNetOpt {
		return fmt.Errorf("process %d: its net namespace %d is not the external one named (net[INO]:KEY) and empty_ns is not given", p.pid, ino)
	}
	if t.emptyNetIno != 0 && t.emptyNetIno != ino {
		return fmt.Errorf("process %d: a second net namespace (%d, after %d) in the tree: only one can be left out (empty_ns)", p.pid, ino, t.emptyNetIno)
	}
	t.emptyNetIno = ino
	p.netLeftOut = true
	return nil
}

// checkNetShared refuses a tree whose processes are not all in one net
// namespace when it is left out: restored, they would all be in the new
// one. A tree whose root is in cryo's namespace keeps it (netInCryos).
func (t *nsTable) checkNetShared(p *process) error {
	ino := p.ns["net"]
	if t.emptyNetIno != 0 && ino != t.emptyNetIno {
		return fmt.Errorf("process %d is in net namespace %d, the tree's root in %d: with empty_ns every process must share the one left out", p.pid, ino, t.emptyNetIno)
	}
	if t.netInCryos && ino != t.own["net"] {
		return fmt.Errorf("process %d is in net namespace %d, the tree's root in cryo's: with empty_ns every process must share the root's", p.pid, ino)
	}
	if t.added == 1 && ino == t.own["net"] {
		// CRIU leaves out only a net namespace of the tree's own
		// (root_ns_mask & empty_ns): a tree in its own namespace is
		// dumped, and restored there, as without the option. runc sends
		// empty_ns for every container, also a rootless one that shares
		// the host's namespace.
		t.netInCryos = true
	}
	return nil
}

// writeEmptyNet writes the netns image of the namespace left out: no
// state, only the key that says so.
func (t *nsTable) writeEmptyNet(dir *image.Dir) error {
	if t.emptyNetIno == 0 {
		return nil
	}
	key := image.EmptyNetKey
	if k := t.extNets[t.emptyNetIno]; k != "" {
		key = k // external: the restore joins the one given for key
	}
	return dir.Write(image.NetnsName(t.id("net", t.emptyNetIno)), "NETNS", &netdev.NetnsEntry{ExtKey: proto.String(key)})
}
