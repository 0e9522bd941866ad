package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
	"google.golang.org/protobuf/proto"
)

// TestDisplayStats checks the lines --display-stats prints from a
// stats-dump image, the shared memory pages among them.
func TestDisplayStats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "img")
	d, err := image.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	st := &stats.StatsEntry{Dump: &stats.DumpStatsEntry{
		FreezingTime: proto.Uint32(12), FrozenTime: proto.Uint32(345),
		MemdumpTime: proto.Uint32(6), MemwriteTime: proto.Uint32(78),
		PagesScanned: proto.Uint64(300), PagesSkippedParent: proto.Uint64(0),
		PagesWritten: proto.Uint64(256), PagesLazy: proto.Uint64(0), ShpagesWritten: proto.Uint64(1024),
	}}
	if err := d.Write("stats-dump", "STATS", st); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := displayStats(&out, path, "stats-dump"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Displaying dump stats:\n", "Frozen time: 345 us\n", "Memory pages written: 256 (0x100)\n",
		"Shared memory pages written: 1024 (0x400)\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %q in:\n%s", want, out.String())
		}
	}
}
