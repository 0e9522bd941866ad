package main

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenLog: a log is created or truncated; a symbolic link, a FIFO or
// a second hard link at its name is refused, and what it names is left
// as it was.
func TestOpenLog(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "precious")
	if err := os.WriteFile(target, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "fresh.log")
	f, err := openLog(fresh)
	if err != nil {
		t.Fatalf("new log: %v", err)
	}
	f.WriteString("old run")
	f.Close()
	if f, err = openLog(fresh); err != nil {
		t.Fatalf("existing log: %v", err)
	}
	f.Close()
	if data, _ := os.ReadFile(fresh); len(data) != 0 {
		t.Errorf("an existing log is not truncated: %q", data)
	}
	link := filepath.Join(dir, "link.log")
	os.Symlink(target, link)
	hard := filepath.Join(dir, "hard.log")
	os.Link(target, hard)
	fifo := filepath.Join(dir, "fifo.log")
	unix.Mkfifo(fifo, 0o600)
	for _, path := range []string{link, hard, fifo} {
		if f, err := openLog(path); err == nil {
			f.Close()
			t.Errorf("%s: opened, want a refusal", path)
		}
	}
	if data, _ := os.ReadFile(target); string(data) != "precious" {
		t.Errorf("the file a planted link names was written: %q", data)
	}
}
