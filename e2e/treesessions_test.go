package e2e

import "testing"

// TestE2ETreeSessions: trees whose sessions and groups were made, left and
// made again by different processes (testdata/tree_sessions.c): a child
// left in the session its parent left with setsid, and groups whose id is
// a live process that has since joined another group, and a session (and
// group) whose leader exited, its member reparented to the root. The
// restore needs a helper process at the leader's id, gone again after it;
// the harness checks
// that /proc shows the same tree after the restore; each process checks
// its ids.
func TestE2ETreeSessions(t *testing.T) {
	for _, mode := range []string{"old-session", "group-left", "gone-leader"} {
		t.Run(mode, func(t *testing.T) {
			requireRoot(t)
			treeCR(t, workloadBin(t, "tree_sessions", linkDynamic), mode)
		})
	}
}
