package progress

import (
	"sync"
	"testing"
	"time"
)

func TestMeterCounts(t *testing.T) {
	m := New()
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 1000; j++ {
				m.Expect(4096)
				m.Add(4096)
			}
		}()
	}
	wg.Wait()
	s := m.Load()
	if s.Done != 4000*4096 || s.Total != 4000*4096 {
		t.Fatalf("done %d total %d, want %d each", s.Done, s.Total, 4000*4096)
	}
}

func TestNilMeter(t *testing.T) {
	var m *Meter
	m.Add(1)
	m.Expect(1)
	if s := m.Load(); s != (Snapshot{}) {
		t.Fatalf("a nil meter holds %+v", s)
	}
}

func TestWatchEndsWithFinalCounts(t *testing.T) {
	m := New()
	stop := make(chan struct{})
	var last Snapshot
	done := make(chan struct{})
	go func() {
		m.Watch(time.Millisecond, stop, func(s Snapshot) { last = s })
		close(done)
	}()
	m.Add(42)
	close(stop)
	<-done
	if last.Done != 42 {
		t.Fatalf("the final call saw %d bytes, want 42", last.Done)
	}
}
