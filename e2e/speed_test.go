package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
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

// TestE2EStatsSharedMemory: the dump's statistics (stats-dump, CRIU's
// image) count the private pages and, apart, the pages of shared memory
// objects written (shpages_written), and `--display-stats` prints them;
// the tree_shm workload then restores and checks itself.
func TestE2EStatsSharedMemory(t *testing.T) {
	requireRoot(t)
	tr := startTree(t, workloadBin(t, "tree_shm", linkDynamic))
	t.Cleanup(func() { _ = os.Remove(fmt.Sprintf("/dev/shm/cryo-shm-test.%d", tr.w.Pid)) })
	tr.Checkpoint()
	d, err := image.Open(tr.w.ImgDir)
	if err != nil {
		t.Fatal(err)
	}
	var st stats.StatsEntry
	if err := d.ReadOne("stats-dump", "STATS", &st); err != nil {
		t.Fatal(err)
	}
	ds := st.GetDump()
	// The workload maps 4 MiB of shared anonymous memory with pattern
	// pages and a 1 MiB memfd, besides its private memory.
	if ds.GetPagesWritten() == 0 || ds.GetShpagesWritten() == 0 {
		t.Fatalf("stats-dump: %d pages written, %d shared memory pages written; want both above 0", ds.GetPagesWritten(), ds.GetShpagesWritten())
	}
	tr.Restore("-d", "--display-stats")
	out := readString(tr.w.rstOut)
	for _, line := range []string{"Displaying restore stats:", "Pages restored: "} {
		if !strings.Contains(out, line) {
			t.Errorf("restore --display-stats printed no %q:\n%s", line, out)
		}
	}
	tr.Finish()
}
