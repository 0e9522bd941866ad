package restore

import (
	"fmt"

	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// planSeals finds the sealed memfds that processes of the tree map: their
// seals are added once the last of those processes has mapped them
// (sealMapped), not when they are filled. A memfd sealed with
// F_SEAL_FUTURE_WRITE keeps the writable mappings made before the seal
// but refuses new ones (EPERM): Firefox freezes its shared memory so,
// while the process that wrote it still maps it writable.
func (fp *filePlan) planSeals(procs []*process) {
	for _, p := range procs {
		if p.c.zombie {
			continue
		}
		seen := map[uint64]bool{}
		for _, v := range p.c.mm.GetVmas() {
			id := v.GetShmid()
			if v.GetStatus()&image.VmaAnonShared == 0 || seen[id] || fp.snap.memfds[id].GetSeals() == 0 {
				continue
			}
			seen[id] = true
			if fp.sealsLeft == nil {
				fp.sealsLeft = map[uint64]int{}
			}
			fp.sealsLeft[id]++
		}
	}
}

// sealMapped adds the seals of the sealed memfds p maps, where p is the
// last process to map them, through its descriptor of the object (a
// temporary one, inherited from the object's maker and not closed yet).
func (p *process) sealMapped() error {
	fp := p.r.files
	seen := map[uint64]bool{}
	for _, v := range p.c.mm.GetVmas() {
		id := v.GetShmid()
		if v.GetStatus()&image.VmaAnonShared == 0 || seen[id] || fp.sealsLeft[id] == 0 {
			continue
		}
		seen[id] = true
		if fp.sealsLeft[id]--; fp.sealsLeft[id] > 0 {
			continue
		}
		seals := fp.snap.memfds[id].GetSeals()
		if err := p.addSeals(fp.shmTemp[id], seals); err != nil {
			return fmt.Errorf("restore pid %d: memfd %s: seals %#x: %w", p.c.pid, fp.snap.memfds[id].GetName(), seals, err)
		}
	}
	return nil
}

// writeSeals are the seals that make a memfd's read-only mappings lose
// VM_MAYWRITE (linux/fcntl.h F_SEAL_WRITE, F_SEAL_FUTURE_WRITE).
const writeSeals = unix.F_SEAL_WRITE | unix.F_SEAL_FUTURE_WRITE

// readOnlySealed returns a read-only descriptor of the memfd at fd for
// read-only shared area v of a write-sealed memfd, 0 for any other area.
// Mapped from the read-write descriptor, the area could be made writable
// (VM_MAYWRITE) and the kernel would refuse F_SEAL_WRITE while it exists
// (EBUSY); the process mapped it after the seal, without that right.
func (p *process) readOnlySealed(v interface {
	GetProt() uint32
	GetShmid() uint64
}, fd uint64) (uint64, error) {
	if v.GetProt()&unix.PROT_WRITE != 0 || p.r.snap.memfds[v.GetShmid()].GetSeals()&writeSeals == 0 {
		return 0, nil
	}
	ro, err := p.open(fmt.Sprintf("/proc/self/fd/%d", fd), unix.O_RDONLY)
	if err != nil {
		return 0, fmt.Errorf("restore pid %d: read-only copy of sealed memfd %s: %w", p.c.pid, p.r.snap.memfds[v.GetShmid()].GetName(), err)
	}
	return ro, nil
}

// addSeals adds seals to the memfd at fd in p.
func (p *process) addSeals(fd uint64, seals uint32) error {
	_, err := p.leader.Syscall(unix.SYS_FCNTL, fd, unix.F_ADD_SEALS, uint64(seals))
	return err
}

// sealExec is F_SEAL_EXEC (linux/fcntl.h).
const sealExec = 0x20

// memfdCreateFlags are the memfd_create flags for a memfd with seals. One
// sealed against exec but not against writes was made without exec
// permission (MFD_NOEXEC_SEAL: mode 0666, F_SEAL_EXEC at once): on a memfd
// with exec permission the kernel takes F_SEAL_EXEC to imply the write
// seals, which the processes' writable mappings would refuse (EBUSY).
func memfdCreateFlags(seals uint32) uint64 {
	const mfdAllowSealing, mfdNoexecSeal = 2, 8
	if seals&sealExec != 0 && seals&unix.F_SEAL_WRITE == 0 {
		return mfdNoexecSeal
	}
	if seals != 0 {
		return mfdAllowSealing
	}
	return 0
}
