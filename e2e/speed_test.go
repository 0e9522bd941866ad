package e2e

import (
	"strings"
	"testing"
)

// TestE2EMemoryHugePages: an area advised MADV_HUGEPAGE and backed by
// transparent huge pages is restored with its data and gets huge pages
// back (smaps AnonHugePages, checked by the workload itself), and a plain
// area beside it keeps its data: restore gives the advice before writing
// the pages, so the fill faults the area in as 2 MiB pages.
func TestE2EMemoryHugePages(t *testing.T) {
	requireRoot(t)
	for _, link := range []string{linkDynamic, linkStatic} {
		t.Run(link, func(t *testing.T) {
			w := startWorkload(t, workloadBin(t, "hugemem", link))
			w.Checkpoint()
			w.Restore()
			w.Finish()
			if !strings.Contains(w.Output(), "kB after") {
				t.Fatalf("the workload did not report its huge pages after restore:\n%s", w.Output())
			}
		})
	}
}

// TestE2EMemoryNoUffd restores the memory and hugemem workloads with
// UFFDIO_COPY turned off (CRYO_UFFD=off), the path restore falls back to
// when the kernel refuses a userfaultfd: every area is then written with
// process_vm_writev, and the workloads check their memory and maps.
func TestE2EMemoryNoUffd(t *testing.T) {
	requireRoot(t)
	t.Setenv("CRYO_UFFD", "off")
	t.Run("memory", func(t *testing.T) {
		checkpointRestore(t, workloadBin(t, "memory", linkDynamic), "-t", "4")
	})
	t.Run("hugemem", func(t *testing.T) {
		checkpointRestore(t, workloadBin(t, "hugemem", linkDynamic))
	})
}
