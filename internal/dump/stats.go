package dump

import (
	"fmt"
	"time"

	"github.com/cryo-cr/cryo/internal/proc"
)

// summary is the one-line breakdown of a dump for the log: CRIU's figures
// plus when the images were complete and how long the kill took.
func (s *dumpStats) summary() string {
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	return fmt.Sprintf("freezing %s, frozen %s, images complete after %s, kill %s, memory scan %s, memory write %s, pages scanned %d, pages written %d, shared memory pages written %d",
		ms(s.freezing), ms(s.frozen), ms(s.imagesDone), ms(s.kill), ms(s.memdump), ms(s.memwrite), s.pagesScanned, s.pagesSaved, s.shpagesSaved)
}

// savedPages counts the pages of the shared anonymous objects (MAP_SHARED
// anonymous, memfd mappings) the dump saves: CRIU's shpages_written.
func (st *shmemTable) savedPages() uint64 {
	var n uint64
	for _, obj := range st.objs {
		for _, seg := range obj.segments {
			n += uint64(len(seg.data)) / proc.PageSize()
		}
	}
	return n
}
