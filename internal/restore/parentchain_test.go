package restore

import (
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/pagemap"
	"github.com/cryo-cr/cryo/internal/image"
	"google.golang.org/protobuf/proto"
)

func pmEntry(addr uint64, n uint32, flags uint32) *pagemapEntry {
	return &pagemap.PagemapEntry{Vaddr: proto.Uint64(addr), NrPages: proto.Uint32(n), Flags: proto.Uint32(flags)}
}

// TestLayerItems: present entries take their offsets in the layer's pages
// image (in_parent entries take none), and a restriction to the ranges a
// child layer wants cuts both.
func TestLayerItems(t *testing.T) {
	p := uint64(pageSize)
	pm := []*pagemapEntry{
		pmEntry(0x100000, 2, image.PagemapPresent),
		pmEntry(0x100000+2*p, 3, image.PagemapInParent),
		pmEntry(0x200000, 4, image.PagemapPresent),
	}
	present, parent := layerItems(pm, nil)
	if len(present) != 2 || present[1].addr != 0x200000 || present[1].off != 2*p || present[1].size != 4*p {
		t.Errorf("present %+v", present)
	}
	if len(parent) != 1 || parent[0] != (span{0x100000 + 2*p, 0x100000 + 5*p}) {
		t.Errorf("parent %+v", parent)
	}
	present, parent = layerItems(pm, []span{{0x100000 + p, 0x100000 + 3*p}, {0x200000 + 2*p, 0x200000 + 3*p}})
	if len(present) != 2 || present[0].off != p || present[0].size != p || present[1].off != 4*p || present[1].size != p {
		t.Errorf("restricted present %+v", present)
	}
	if len(parent) != 1 || parent[0] != (span{0x100000 + 2*p, 0x100000 + 3*p}) {
		t.Errorf("restricted parent %+v", parent)
	}
	if miss := uncovered(pm, []span{{0x200000, 0x200000 + 6*p}}); len(miss) != 1 || miss[0] != (span{0x200000 + 4*p, 0x200000 + 6*p}) {
		t.Errorf("uncovered %+v", miss)
	}
	sl := splitChain([]chainItem{{addr: 0x1000, size: p, off: 0}, {addr: 0x5000, size: p, off: 3 * p}}, 16*p)
	if len(sl) != 2 || sl[1].off != 3*p {
		t.Errorf("a slice must not span a gap in the image: %+v", sl)
	}
}
