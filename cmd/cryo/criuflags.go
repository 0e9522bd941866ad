package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/cryo-cr/cryo/internal/check"
)

// version is cryo's release, printed by -V as CRIU prints its own.
const version = "0.1"

// printVersion prints "Version: X" (the line tools parse in CRIU's output)
// and the git revision cryo was built from, as CRIU's "GitID:".
func printVersion() {
	fmt.Printf("Version: %s\n", version)
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "-dirty"
			}
			fmt.Printf("GitID: %s\n", rev)
		}
	}
}

// logDir is where a relative log file and the statistics go: the work
// directory (-W), else the images directory, as in CRIU.
func (o *options) logDir() string {
	if o.workDir != "" {
		return o.workDir
	}
	return o.dir
}

// moveStats moves the statistics image (stats-dump, stats-restore) that
// dump and restore write beside the images into the work directory, when
// one is given (CRIU writes them there).
func (o *options) moveStats(name string) error {
	if o.workDir == "" || o.dir == "" {
		return nil
	}
	from, to := filepath.Join(o.dir, name), filepath.Join(o.workDir, name)
	if a, err := filepath.Abs(from); err == nil {
		if b, err := filepath.Abs(to); err == nil && a == b {
			return nil
		}
	}
	if err := os.MkdirAll(o.workDir, 0o700); err != nil {
		return fmt.Errorf("work directory: %w", err)
	}
	if err := os.Rename(from, to); err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// Another filesystem: copy, then remove.
	in, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("statistics %s: %w", from, err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("statistics: %w", err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("statistics %s: %w", to, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("statistics %s: %w", to, err)
	}
	return os.Remove(from)
}

// onlyForCheck refuses check's flags given to another command: an option
// that would do nothing is a usage error, as an unknown one.
func (o *options) onlyForCheck(cmd string) error {
	if len(o.features) > 0 || o.checkAll {
		return usageError("%s takes neither --feature nor --all (options of check)", cmd)
	}
	return nil
}

// checkFeatures runs check --feature NAME...: one line per feature, as
// CRIU prints them, and an error if one is missing or unknown.
func checkFeatures(names []string) error {
	all := check.CRIU()
	var missing []string
	for _, name := range names {
		if name == "list" {
			fmt.Println(check.Names(all))
			continue
		}
		var f *check.Feature
		for i := range all {
			if all[i].Name == name {
				f = &all[i]
			}
		}
		if f == nil {
			return fmt.Errorf("unknown feature %q (known: %s)", name, check.Names(all))
		}
		if _, err := f.Probe(); err != nil {
			fmt.Printf("%s is not supported: %v\n", name, err)
			missing = append(missing, name)
			continue
		}
		fmt.Printf("%s is supported\n", name)
	}
	if len(missing) > 0 {
		return fmt.Errorf("features not supported: %s", strings.Join(missing, ", "))
	}
	return nil
}

// statsDir is where the stats images are once the command is done: the
// work directory (-W), or the images directory.
func (o *options) statsDir() string {
	if o.workDir != "" {
		return o.workDir
	}
	return o.dir
}
