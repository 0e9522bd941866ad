package sockdiag

import (
	"errors"

	"golang.org/x/sys/unix"
)

// SendWhole sends one message through Unix socket s to to (nil: s's peer),
// with the descriptors rights (SCM_RIGHTS) and the credentials cred
// (SCM_CREDENTIALS, nil for none). A stream may take the bytes in several
// writes: the control data goes with the first, as the receiver saw it.
// It never waits: the tree is stopped, nobody would make room in a full
// receiver, and the send would block forever.
func SendWhole(s int, data []byte, rights []int, cred *unix.Ucred, to unix.Sockaddr) error {
	var oob []byte
	if len(rights) > 0 {
		oob = unix.UnixRights(rights...)
	}
	if cred != nil {
		oob = append(oob, unix.UnixCredentials(cred)...)
	}
	for first := true; first || len(data) > 0; first = false {
		n, err := unix.SendmsgN(s, data, oob, to, unix.MSG_DONTWAIT)
		if errors.Is(err, unix.EAGAIN) {
			return errors.New("receive queue full")
		}
		if err != nil {
			return err
		}
		data, oob = data[n:], nil
	}
	return nil
}
