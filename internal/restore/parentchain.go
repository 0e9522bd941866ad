package restore

import (
	"fmt"
	"time"

	"github.com/cryo-cr/cryo/internal/image"
	"golang.org/x/sys/unix"
)

// Restore of an incremental dump: pagemap entries flagged in_parent have
// their pages in the parent images directory (the "parent" link, made by
// `cryo dump --prev-images-dir`), or in its parent, and so on. Each layer's
// pages image holds the data of its present entries only, back to back.
// Every directory of the chain goes through the same checks as the one
// restored (CheckImagesTrusted for root), the link must name a sibling
// directory (image.Dir.Parent), and the chain is at most
// image.MaxParentDepth long.

// chainItem is a range of pages to write and where its data is in one
// layer's pages image.
type chainItem struct{ addr, size, off uint64 }

// hasInParent reports whether any entry's pages are in a parent dump.
func hasInParent(pm []*pagemapEntry) bool {
	for _, pe := range pm {
		if pe.GetFlags()&image.PagemapInParent != 0 {
			return true
		}
	}
	return false
}

// layerItems splits a layer's pagemap, restricted to want (sorted,
// disjoint; nil means everything), into the present ranges (with their
// offsets in the layer's pages image) and the ranges still to find in the
// parent.
func layerItems(pm []*pagemapEntry, want []span) (present []chainItem, parent []span) {
	var off uint64
	j := 0
	for _, pe := range pm {
		start := pe.GetVaddr()
		end := start + uint64(pe.GetNrPages())*pageSize
		isParent := pe.GetFlags()&image.PagemapInParent != 0
		pieces := []span{{start, end}}
		if want != nil {
			pieces = nil
			for j < len(want) && want[j].end <= start {
				j++
			}
			for k := j; k < len(want) && want[k].start < end; k++ {
				pieces = append(pieces, span{max(start, want[k].start), min(end, want[k].end)})
			}
		}
		for _, s := range pieces {
			if isParent {
				parent = append(parent, s)
			} else {
				present = append(present, chainItem{addr: s.start, size: s.end - s.start, off: off + s.start - start})
			}
		}
		if !isParent {
			off += end - start
		}
	}
	return present, parent
}

// uncovered returns the parts of want that no entry of pm covers.
func uncovered(pm []*pagemapEntry, want []span) []span {
	var out []span
	j := 0
	for _, w := range want {
		at := w.start
		for j < len(pm) && pm[j].GetVaddr()+uint64(pm[j].GetNrPages())*pageSize <= at {
			j++
		}
		for k := j; k < len(pm) && at < w.end; k++ {
			s := pm[k].GetVaddr()
			e := s + uint64(pm[k].GetNrPages())*pageSize
			if s >= w.end {
				break
			}
			if s > at {
				out = append(out, span{at, s})
			}
			at = max(at, e)
		}
		if at < w.end {
			out = append(out, span{at, w.end})
		}
	}
	return out
}

// splitChain cuts items into buffer-sized slices of contiguous bytes of
// the pages image.
func splitChain(items []chainItem, bufSize uint64) []fillSlice {
	var out []fillSlice
	var cur fillSlice
	for _, it := range items {
		addr, off, size := it.addr, it.off, it.size
		for size > 0 {
			if cur.size == bufSize || len(cur.remote) == maxIovecs || (cur.size > 0 && cur.off+cur.size != off) {
				out = append(out, cur)
				cur = fillSlice{}
			}
			if cur.size == 0 {
				cur.off = off
			}
			n := min(size, bufSize-cur.size)
			cur.add(addr, n)
			addr, off, size = addr+n, off+n, size-n
		}
	}
	if cur.size > 0 {
		out = append(out, cur)
	}
	return out
}

// fillChain is fillPages for a pagemap with in_parent entries: each layer
// writes the pages it holds, the rest is looked for in its parent.
func (p *process) fillChain() error {
	start := time.Now()
	u := p.openUffdFill()
	defer u.close()
	dir, pagesID, pm := p.r.dir, p.c.pagesID, p.c.pagemap
	var want []span // nil: the whole first layer
	var total uint64
	for depth := 0; ; depth++ {
		present, parent := layerItems(pm, want)
		if err := p.fillLayer(dir, pagesID, present, u); err != nil {
			return err
		}
		for _, it := range present {
			total += it.size
		}
		if len(parent) == 0 {
			break
		}
		if depth == image.MaxParentDepth {
			return fmt.Errorf("restore pid %d: more than %d parent images directories", p.c.pid, image.MaxParentDepth)
		}
		next, err := dir.Parent()
		if err != nil {
			return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
		}
		if next == nil {
			return fmt.Errorf("restore pid %d: pages at %#x are in the parent images, but %s has no parent link", p.c.pid, parent[0].start, dir.Path())
		}
		if err := CheckImagesTrusted(next.Path(), p.r.opts.TrustImages); err != nil {
			return fmt.Errorf("restore pid %d: parent images: %w", p.c.pid, err)
		}
		if pagesID, pm, err = next.ReadPagemap(p.c.pid); err != nil {
			return fmt.Errorf("restore pid %d: parent images: %w", p.c.pid, err)
		}
		if miss := uncovered(pm, parent); len(miss) > 0 {
			return fmt.Errorf("restore pid %d: pages at %#x-%#x are in the parent images, but %s does not have them", p.c.pid, miss[0].start, miss[0].end, next.Path())
		}
		dir, want = next, parent
	}
	p.r.pagesRestored += total / pageSize
	p.r.memFill += time.Since(start)
	p.r.logf("restored %d bytes of memory through parent images in %v", total, time.Since(start))
	return nil
}

// fillLayer writes items from dir's pages-<pagesID>.img.
func (p *process) fillLayer(dir *image.Dir, pagesID uint32, items []chainItem, u *uffdFill) error {
	if len(items) == 0 {
		return nil
	}
	f, err := dir.OpenPages(pagesID)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("pages image: %w", err)
	}
	var need uint64
	for _, it := range items {
		need = max(need, it.off+it.size)
	}
	if uint64(st.Size()) < need {
		return fmt.Errorf("%s: %d bytes, its pagemap needs %d", f.Name(), st.Size(), need)
	}
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_SEQUENTIAL)
	bufSize := min(uint64(fillBufSize), need)
	if err := writeSlices(p.pid, f, splitChain(items, bufSize), &p.r.bufs, int(bufSize), u, p.r.opts.Progress); err != nil {
		return fmt.Errorf("restore pid %d: %w", p.c.pid, err)
	}
	return nil
}
