package main

import "testing"

// TestParseExtMountsAndRoot: --ext-mount-map A:B and --external mnt[A]:B
// both name an external mount; --root and --action-script are kept; an
// external mount given twice or without a value is a usage error.
func TestParseExtMountsAndRoot(t *testing.T) {
	o, err := parseFlags([]string{"-D", "d", "--ext-mount-map", "k1:/host/a", "--external", "mnt[k2]:/host/b", "--external", "tty[88:3]", "--root", "/r", "--action-script", "/s"})
	if err != nil {
		t.Fatal(err)
	}
	if o.extMounts["k1"] != "/host/a" || o.extMounts["k2"] != "/host/b" || len(o.extMounts) != 2 {
		t.Errorf("extMounts %v", o.extMounts)
	}
	if len(o.external) != 1 || o.external[0] != "tty[88:3]" {
		t.Errorf("external %v: want the tty only", o.external)
	}
	if o.root != "/r" || len(o.scripts) != 1 || o.scripts[0] != "/s" {
		t.Errorf("root %q scripts %v", o.root, o.scripts)
	}
	for _, bad := range [][]string{{"--ext-mount-map", "k1"}, {"--external", "mnt[k]"}, {"--ext-mount-map", "a:b", "--ext-mount-map", "a:c"}} {
		if _, err := parseFlags(bad); err == nil {
			t.Errorf("%v: accepted", bad)
		}
	}
}
