package main

import (
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/cryo-cr/cryo/internal/dump"
	"github.com/cryo-cr/cryo/internal/fault"
	"github.com/cryo-cr/cryo/internal/image"
	"github.com/cryo-cr/cryo/internal/restore"
)

// logger opens the -o log (relative to the images directory, as in CRIU)
// and returns a printf for messages at verbosity 4 and the closer.
// logsToStderr tells whether the log goes to stderr (-v4 without -o),
// where a progress line would cut through it.
func (o *options) logsToStderr() bool { return o.logFile == "" && o.verbosity >= 4 }

func (o *options) logger() (func(string, ...any), func(error), error) {
	var w io.Writer = io.Discard
	var f *os.File
	if o.logFile != "" {
		path := o.logFile
		if base := o.logDir(); !filepath.IsAbs(path) && base != "" {
			if err := os.MkdirAll(base, 0o700); err != nil {
				return nil, nil, fmt.Errorf("work directory: %w", err)
			}
			path = filepath.Join(base, path)
		}
		var err error
		if f, err = openLog(path); err != nil {
			return nil, nil, fmt.Errorf("log file: %w", err)
		}
		w = f
	} else if o.verbosity >= 4 {
		w = os.Stderr
	}
	l := log.New(w, "", log.Lmicroseconds)
	logf := func(format string, args ...any) {
		if o.verbosity >= 4 {
			l.Printf(format, args...)
		}
	}
	done := func(err error) {
		if err != nil {
			l.Printf("Error: %v", err)
		}
		if f != nil {
			f.Close()
		}
	}
	return logf, done, nil
}

func cmdDump(args []string) (err error) { return dumpCommand("dump", args) }

// cmdPreDump is CRIU's pre-dump: the memory only, the tree left running
// with its writes tracked (see internal/dump/predump.go).
func cmdPreDump(args []string) (err error) { return dumpCommand("pre-dump", args) }

// dumpCommand runs dump or pre-dump.
func dumpCommand(name string, args []string) (err error) {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := o.onlyForCheck(name); err != nil {
		return err
	}
	if o.pid == 0 {
		return usageError("%s needs -t PID", name)
	}
	if o.dir == "" {
		return usageError("%s needs -D DIR", name)
	}
	preDump := name == "pre-dump"
	if preDump {
		// CRIU's pre-dump always tracks (its --track-mem is implied
		// where soft-dirty works) and always leaves the tree running.
		o.trackMem = true
	}
	logf, done, err := o.logger()
	if err != nil {
		return err
	}
	defer func() { done(err) }()
	ctx, stop := interruptContext()
	defer stop()
	inj, err := fault.FromEnv(ctx)
	if err != nil {
		return err
	}
	meter, stopProgress := progressLine(name, o.logsToStderr() || o.verbosity == 0)
	err = dump.DumpContext(ctx, dump.Options{Progress: meter, Pid: o.pid, Dir: o.dir, LeaveRunning: o.leaveRunning, LeaveStopped: o.leaveStopped,
		TCPEstablished: o.tcpEstablished, ExtUnixSk: o.extUnixSk, ShellJob: o.shellJob, SkipInFlight: o.skipInFlight,
		LinkRemap: o.linkRemap, TCPClose: o.tcpClose, FileLocks: o.fileLocks, External: o.external, ExtMounts: o.extMounts, Notify: o.actionScripts(logf), Logf: logf, Fault: inj,
		PreDump: preDump, ParentDir: o.prevImagesDir, TrackMem: o.trackMem})
	stopProgress()
	if err != nil {
		return fmt.Errorf("%s %d: %w", name, o.pid, err)
	}
	if err := o.moveStats(dump.StatsName); err != nil {
		return err
	}
	if o.displayStats {
		return displayStats(os.Stdout, o.statsDir(), dump.StatsName)
	}
	return nil
}

func cmdRestore(args []string) (status int, err error) {
	o, err := parseFlags(args)
	if err != nil {
		return 0, err
	}
	if err := o.onlyForCheck("restore"); err != nil {
		return 0, err
	}
	if o.dir == "" {
		return 0, usageError("restore needs -D DIR")
	}
	// Checked before the log is written into the directory.
	if err := restore.CheckImagesTrusted(o.dir, o.trustImages); err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	logf, done, err := o.logger()
	if err != nil {
		return 0, err
	}
	defer func() { done(err) }()
	ctx, stop := interruptContext()
	inj, err := fault.FromEnv(ctx)
	if err != nil {
		stop()
		return 0, err
	}
	meter, stopProgress := progressLine("restore", o.logsToStderr() || o.verbosity == 0)
	p, err := restore.Restore(restore.Options{Progress: meter, Dir: o.dir, Detach: o.detach, PidFile: o.pidFile, ShellJob: o.shellJob,
		LeaveStopped: o.leaveStopped, TCPClose: o.tcpClose, Logf: logf, TrustImages: o.trustImages, Ctx: ctx, Fault: inj, InheritFds: o.inheritFds,
		Root: o.root, ExtMounts: o.extMounts, Notify: o.actionScripts(logf)})
	stopProgress()
	o.closeInherited()
	// Once the tree runs, a signal to cryo is no interruption of the
	// restore any more.
	stop()
	if err != nil {
		return 0, fmt.Errorf("restore: %w", err)
	}
	if err := o.moveStats(restore.StatsName); err != nil {
		// The tree runs: say so, but let it run.
		fmt.Fprintf(os.Stderr, "cryo: %v\n", err)
	}
	if o.displayStats {
		if err := displayStats(os.Stdout, o.statsDir(), restore.StatsName); err != nil {
			logf("warning: --display-stats: %v", err)
		}
	}
	if p.Moved != "" {
		// Not an error: the tree runs. One line, as every message of cryo's.
		fmt.Fprintf(os.Stderr, "cryo: %s\n", p.Moved)
		logf("%s", p.Moved)
	}
	if o.detach {
		return 0, nil
	}
	return p.Wait()
}

func cmdShow(args []string) error {
	o, err := parseFlags(args)
	if err != nil {
		return err
	}
	if err := o.onlyForCheck("show"); err != nil {
		return err
	}
	path := o.dir
	if len(o.positional) == 1 && path == "" {
		path = o.positional[0]
	}
	if path == "" || len(o.positional) > 1 {
		return usageError("show needs one DIR or FILE")
	}
	return image.Show(os.Stdout, path)
}
