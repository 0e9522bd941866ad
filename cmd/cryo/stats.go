package main

import (
	"fmt"
	"io"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
)

// displayStats prints the statistics image name (stats-dump or
// stats-restore) of the image directory dir, as CRIU's --display-stats
// does: one "name: value" line per figure, times in microseconds.
func displayStats(w io.Writer, dir, name string) error {
	d, err := image.Open(dir)
	if err != nil {
		return err
	}
	var st stats.StatsEntry
	if err := d.ReadOne(name, "STATS", &st); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if ds := st.GetDump(); ds != nil {
		fmt.Fprintf(w, "Displaying dump stats:\n")
		fmt.Fprintf(w, "Freezing time: %d us\n", ds.GetFreezingTime())
		fmt.Fprintf(w, "Frozen time: %d us\n", ds.GetFrozenTime())
		fmt.Fprintf(w, "Memory dump time: %d us\n", ds.GetMemdumpTime())
		fmt.Fprintf(w, "Memory write time: %d us\n", ds.GetMemwriteTime())
		fmt.Fprintf(w, "Memory pages scanned: %d (%#x)\n", ds.GetPagesScanned(), ds.GetPagesScanned())
		fmt.Fprintf(w, "Memory pages skipped from parent: %d (%#x)\n", ds.GetPagesSkippedParent(), ds.GetPagesSkippedParent())
		fmt.Fprintf(w, "Memory pages written: %d (%#x)\n", ds.GetPagesWritten(), ds.GetPagesWritten())
		fmt.Fprintf(w, "Lazy memory pages: %d (%#x)\n", ds.GetPagesLazy(), ds.GetPagesLazy())
		fmt.Fprintf(w, "Shared memory pages written: %d (%#x)\n", ds.GetShpagesWritten(), ds.GetShpagesWritten())
	}
	if rs := st.GetRestore(); rs != nil {
		fmt.Fprintf(w, "Displaying restore stats:\n")
		fmt.Fprintf(w, "Pages compared: %d (%#x)\n", rs.GetPagesCompared(), rs.GetPagesCompared())
		fmt.Fprintf(w, "Pages skipped COW: %d (%#x)\n", rs.GetPagesSkippedCow(), rs.GetPagesSkippedCow())
		fmt.Fprintf(w, "Pages restored: %d (%#x)\n", rs.GetPagesRestored(), rs.GetPagesRestored())
		fmt.Fprintf(w, "Restore time: %d us\n", rs.GetRestoreTime())
		fmt.Fprintf(w, "Forking time: %d us\n", rs.GetForkingTime())
	}
	return nil
}
