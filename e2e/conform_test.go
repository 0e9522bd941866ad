package e2e

// Conformance with CRIU (issue 11): process states, descriptor kinds and
// socket states that CRIU checkpoints on a plain host. Each workload checks
// itself after the restore (testdata/conform.c, testdata/conform_tree.c).

import "testing"

// TestE2EZombieSigkill: a zombie killed by SIGKILL (whose disposition
// cannot be set) comes back a zombie with the same wait status.
func TestE2EZombieSigkill(t *testing.T) {
	forEachLink(t, "conform_tree", func(t *testing.T, bin string) {
		tr := treeCR(t, bin, "zkill")
		if st := tr.Want[tr.Role("ZK")]; !st.zombie() || st.ExitCode != 9 {
			t.Errorf("workload bug: ZK at READY is %s, want a zombie killed by SIGKILL", st)
		}
	})
}

// TestE2ETreeStopped: a child stopped by SIGSTOP and one stopped by
// SIGTSTP (in a group of its own) come back stopped; their parent, which
// had not collected the stops yet, gets each one from
// waitpid(WUNTRACED) with its signal, then continues them with SIGCONT.
func TestE2ETreeStopped(t *testing.T) {
	forEachLink(t, "conform_tree", func(t *testing.T, bin string) {
		tr := treeCR(t, bin, "stopped")
		for _, role := range []string{"S1", "S2"} {
			if st := tr.Want[tr.Role(role)]; st.State != 'T' {
				t.Errorf("workload bug: %s at READY is %s, want stopped", role, st)
			}
		}
	})
}
