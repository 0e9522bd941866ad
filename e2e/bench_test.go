package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit/images/stats"
	"github.com/cryo-cr/cryo/internal/image"
)

// BenchmarkDumpRestore dumps and restores a process holding N MiB of
// touched anonymous memory, images on tmpfs (/dev/shm), and reports dump
// and restore throughput, the time the process was frozen and the image
// size. `make bench` runs it; the figures go into the README.
func BenchmarkDumpRestore(b *testing.B) {
	if os.Getuid() != 0 {
		b.Fatal("the benchmark dumps and restores processes: run it as root")
	}
	for _, mib := range []int{64, 1024} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) { benchDumpRestore(b, mib) })
	}
}

func benchDumpRestore(b *testing.B, mib int) {
	bin := workloadBins["bench_mem"][linkDynamic]
	if bin == "" {
		b.Fatal("bench_mem workload was not built")
	}
	var dumpTime, restoreTime, frozen time.Duration
	var imageBytes int64
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		work, err := os.MkdirTemp("/dev/shm", "cryo-bench-")
		if err != nil {
			b.Fatal(err)
		}
		out := filepath.Join(work, "out")
		of, err := os.Create(out)
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command(bin, fmt.Sprint(mib))
		cmd.Stdout, cmd.Stderr = of, of
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		of.Close()
		pid := cmd.Process.Pid
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(readString(out), "READY") {
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatalf("workload not ready: %s", readString(out))
			}
			time.Sleep(20 * time.Millisecond)
		}
		dir := filepath.Join(work, "images")

		b.StartTimer()
		t0 := time.Now()
		res := exec.Command(cryoBin, "dump", "-t", fmt.Sprint(pid), "-D", dir, "-o", "dump.log", "-v4")
		msg, err := res.CombinedOutput()
		d := time.Since(t0)
		b.StopTimer()
		if err != nil {
			cmd.Process.Kill()
			b.Fatalf("dump: %v: %s", err, msg)
		}
		cmd.Wait()
		if err := waitPidFree(pid, 30*time.Second); err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
		t0 = time.Now()
		msg, err = exec.Command(cryoBin, "restore", "-D", dir, "-d", "-o", "restore.log", "-v4").CombinedOutput()
		r := time.Since(t0)
		b.StopTimer()
		if err != nil {
			b.Fatalf("restore: %v: %s", err, msg)
		}
		syscall.Kill(pid, syscall.SIGTERM)
		waitForeign(pid, 30*time.Second)
		if !strings.Contains(readString(out), "PASS") {
			b.Fatalf("restored workload did not pass: %s", readString(out))
		}

		dumpTime += d
		restoreTime += r
		frozen += frozenTime(b, dir)
		imageBytes = dirSize(dir)
		os.RemoveAll(work)
	}
	n := float64(b.N)
	bytes := float64(mib << 20)
	b.ReportMetric(bytes/(dumpTime.Seconds()/n)/1e9, "dump-GB/s")
	b.ReportMetric(bytes/(restoreTime.Seconds()/n)/1e9, "restore-GB/s")
	b.ReportMetric(float64(frozen.Milliseconds())/n, "frozen-ms")
	b.ReportMetric(float64(imageBytes)/(1<<20), "image-MiB")
}

// frozenTime reads how long the dump kept the process frozen from cryo's
// stats-dump image (CRIU's format, microseconds).
func frozenTime(b *testing.B, dir string) time.Duration {
	d, err := image.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	var st stats.StatsEntry
	if err := d.ReadOne("stats-dump", "STATS", &st); err != nil {
		b.Fatal(err)
	}
	return time.Duration(st.GetDump().GetFrozenTime()) * time.Microsecond
}

func dirSize(dir string) int64 {
	var n int64
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if info, err := e.Info(); err == nil {
			n += info.Size()
		}
	}
	return n
}
