//go:build !amd64

package ptrace

import "errors"

// ErrNoSnapshot is Snapshot's error on this architecture: the child's exit
// path is an x86-64 signal frame (snapshot_amd64.go).
var ErrNoSnapshot = errors.New("snapshots are not implemented on this architecture")

// SnapshotAreaSize is 0 on this architecture.
func SnapshotAreaSize(xsize int) uint64 { return 0 }

// XstateSize is 0 on this architecture.
func (t *Tracee) XstateSize() int { return 0 }

// Snapshot always fails with ErrNoSnapshot on this architecture.
func (t *Tracee) Snapshot(area uint64) (*Tracee, error) { return nil, ErrNoSnapshot }
