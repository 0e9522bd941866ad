package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkRootIdsBySetTid checks, for a tree restored by root whose root is
// the init of its own pid namespace, that the restore chose both of the
// root's ids with clone3's set_tid (its log says so): not through
// ns_last_pid, where any process forking on the machine at that moment
// could take the outer PID first.
func checkRootIdsBySetTid(t *testing.T, imgDir string, pid int) {
	t.Helper()
	ns := strings.Fields(procStatus(fmt.Sprintf("/proc/%d/status", pid))["NSpid"])
	if len(ns) < 2 {
		return
	}
	log, err := os.ReadFile(filepath.Join(imgDir, "restore.log"))
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("restore pid %d: clone3 with set_tid {1, %d}: both ids chosen", pid, pid)
	if !strings.Contains(string(log), want) {
		t.Errorf("the restore log has no %q: the root's outer PID was not chosen by set_tid", want)
	}
}
