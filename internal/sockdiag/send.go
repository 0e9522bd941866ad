package sockdiag

import (
	"golang.org/x/sys/unix"
)

// SendWhole sends one message through Unix socket s to to (nil: s's peer),
// with the descriptors rights (SCM_RIGHTS) and the credentials cred
// (SCM_CREDENTIALS, nil for none). A stream may take the bytes in several
// writes: the control data goes with the first, as the receiver saw it.
func SendWhole(s int, data []byte, rights []int, cred *unix.Ucred, to unix.Sockaddr, flags int) error {
	var oob []byte
	if len(rights) > 0 {
		oob = unix.UnixRights(rights...)
	}
	if cred != nil {
		oob = append(oob, unix.UnixCredentials(cred)...)
	}
	for first := true; first || len(data) > 0; first = false {
		n, err := unix.SendmsgN(s, data, oob, to, flags)
		if err != nil {
			return err
		}
		data, oob = data[n:], nil
	}
	return nil
}
