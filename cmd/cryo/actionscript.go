package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// actionScripts returns the notification hook of --action-script, as CRIU
// runs its scripts: each script, in the order given, at each notification
// point of the dump or restore, with CRTOOLS_SCRIPT_ACTION naming the
// point (network-lock, post-dump, pre-restore, setup-namespaces,
// post-restore, ...), CRTOOLS_IMAGE_DIR the images directory and
// CRTOOLS_INIT_PID the tree's root once it exists. A script that fails
// fails the command at that point (a dump then leaves the tree running).
// No scripts: nil, no hook.
func (o *options) actionScripts(logf func(string, ...any)) func(event string, pid int) error {
	if len(o.scripts) == 0 {
		return nil
	}
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		dir = o.dir
	}
	return func(event string, pid int) error {
		for _, s := range o.scripts {
			cmd := exec.Command(s)
			cmd.Env = append(os.Environ(), "CRTOOLS_SCRIPT_ACTION="+event, "CRTOOLS_IMAGE_DIR="+dir)
			if pid > 0 {
				cmd.Env = append(cmd.Env, "CRTOOLS_INIT_PID="+strconv.Itoa(pid))
			}
			out, err := cmd.CombinedOutput()
			logf("action script %s %s: %s", s, event, strings.TrimSpace(string(out)))
			if err != nil {
				return fmt.Errorf("action script %s at %s: %w", s, event, err)
			}
		}
		return nil
	}
}

// parseExtMount adds one external mount, given as --ext-mount-map A:B or
// --external mnt[A]:B: on dump A is the mount point in the tree's mount
// namespace and B the key that stands for it in the images; on restore A
// is that key and B the host path bind-mounted in its place (CRIU's
// meanings).
func (o *options) parseExtMount(flag, a, b string) error {
	if a == "" || b == "" {
		return usageError("%s: want %s", flag, map[bool]string{true: "mnt[KEY]:VALUE", false: "KEY:VALUE"}[flag == "--external"])
	}
	if o.extMounts == nil {
		o.extMounts = map[string]string{}
	}
	if _, dup := o.extMounts[a]; dup {
		return usageError("%s: %s given twice", flag, a)
	}
	o.extMounts[a] = b
	return nil
}
