package e2e

import "testing"

// TestE2EGhostFile: a file deleted while open (and a dup of it) comes
// back with its contents, offset, mode and "(deleted)" name, and leaves
// nothing behind at its path.
func TestE2EGhostFile(t *testing.T) {
	forEachVariant(t, "ghost", []int{1}, func(t *testing.T, bin string, n int) {
		checkpointRestore(t, bin, "-t", nthreads(n))
	})
}
