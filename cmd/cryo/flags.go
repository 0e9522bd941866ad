package main

import (
	"strconv"
	"strings"
)

// options holds the CRIU-compatible flags cryo understands.
type options struct {
	pid            int
	dir            string
	shellJob       bool
	leaveRunning   bool
	leaveStopped   bool
	tcpEstablished bool
	extUnixSk      bool
	// displayStats prints the stats image after the command (CRIU's
	// --display-stats).
	displayStats bool
	detach       bool
	pidFile      string
	verbosity    int
	logFile      string
	trustImages  bool // --trust-images: root restores images a user could write
	positional   []string
	// workDir (-W, --work-dir) is where logs and statistics go, as in
	// CRIU; "" means the images directory.
	workDir string
	// linkRemap (--link-remap) is accepted with CRIU's meaning; see
	// docs/conformance.md for why cryo needs nothing more for it.
	linkRemap bool
	// skipInFlight (--skip-in-flight) leaves out TCP connections waiting
	// to be accepted instead of refusing the dump.
	skipInFlight bool
	// tcpClose (--tcp-close) saves established TCP connections closed.
	tcpClose bool
	// features (check --feature NAME, repeatable) and checkAll (check
	// --all) select what check probes.
	features []string
	checkAll bool
	// version (-V, --version) prints cryo's version.
	version bool
	// prevImagesDir (--prev-images-dir) is the previous pre-dump's
	// directory, relative to -D; trackMem (--track-mem) tracks writes for
	// the next dump.
	prevImagesDir string
	trackMem      bool
	// fileLocks (--file-locks) saves the file locks the tree holds.
	fileLocks bool
	// inheritFds (restore --inherit-fd fd[N]:KEY, repeatable): cryo's
	// descriptors that stand in for files of the tree shared with the
	// world outside it.
	inheritFds map[string]int
	// external (dump --external KIND[ID], repeatable): resources outside
	// the tree that the tree may hold (tty[RDEV:DEV], unix[INO]).
	external []string
	// scripts (--action-script FILE, repeatable) run at each notification
	// point, as CRIU's action scripts.
	scripts []string
	// root (--root DIR, restore) is where a container's mount namespace is
	// made again; extMounts (--ext-mount-map A:B, --external mnt[A]:B) are
	// its external mounts: mount point -> key on dump, key -> host path on
	// restore.
	root      string
	extMounts map[string]string
}

// parseFlags parses CRIU's spellings: -t PID, --tree=PID, -D DIR,
// --images-dir DIR, -v, -v4, -vvv, -o FILE, --log-file FILE, and so on.
func parseFlags(args []string) (*options, error) {
	o := &options{verbosity: 2}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(a, "=")
		if !strings.HasPrefix(a, "--") {
			name, hasVal = a, false
		}
		value := func() (string, error) {
			if hasVal {
				return val, nil
			}
			if i+1 >= len(args) {
				return "", usageError("%s needs a value", name)
			}
			i++
			return args[i], nil
		}
		var err error
		switch {
		case name == "-t" || name == "--tree":
			var v string
			if v, err = value(); err == nil {
				o.pid, err = strconv.Atoi(v)
				if err != nil || o.pid <= 0 {
					err = usageError("invalid pid %q", v)
				}
			}
		case name == "-D" || name == "--images-dir":
			o.dir, err = value()
		case name == "-o" || name == "--log-file":
			o.logFile, err = value()
		case name == "--pidfile":
			o.pidFile, err = value()
		case name == "-j" || name == "--shell-job":
			o.shellJob = true
		case name == "-R" || name == "--leave-running":
			o.leaveRunning = true
		case name == "-s" || name == "--leave-stopped":
			o.leaveStopped = true
		case name == "--tcp-established":
			o.tcpEstablished = true
		case name == "--trust-images":
			o.trustImages = true
		case name == "--ext-unix-sk":
			o.extUnixSk = true
		case name == "-W" || name == "--work-dir":
			o.workDir, err = value()
		case name == "--link-remap":
			o.linkRemap = true
		case name == "--skip-in-flight":
			o.skipInFlight = true
		case name == "--tcp-close":
			o.tcpClose = true
		case name == "--prev-images-dir":
			o.prevImagesDir, err = value()
		case name == "--track-mem":
			o.trackMem = true
		case name == "--file-locks":
			o.fileLocks = true
		case name == "--inherit-fd":
			var v string
			if v, err = value(); err == nil {
				err = o.parseInheritFd(v)
			}
		case name == "--external":
			var v string
			if v, err = value(); err == nil {
				if rest, ok := strings.CutPrefix(v, "mnt["); ok {
					a, b, _ := strings.Cut(rest, "]:")
					err = o.parseExtMount(name, a, b)
				} else {
					o.external = append(o.external, v)
				}
			}
		case name == "--ext-mount-map":
			var v string
			if v, err = value(); err == nil {
				a, b, _ := strings.Cut(v, ":")
				err = o.parseExtMount(name, a, b)
			}
		case name == "--action-script":
			var v string
			if v, err = value(); err == nil {
				o.scripts = append(o.scripts, v)
			}
		case name == "--root":
			o.root, err = value()
		case name == "--feature":
			var v string
			if v, err = value(); err == nil {
				o.features = append(o.features, v)
			}
		case name == "--all":
			o.checkAll = true
		case name == "-V" || name == "--version":
			o.version = true
		case name == "--display-stats":
			o.displayStats = true
		case name == "-d" || name == "--restore-detached":
			o.detach = true
		case name == "-v" || name == "--verbosity":
			if hasVal {
				o.verbosity, err = strconv.Atoi(val)
			} else if i+1 < len(args) && isNumber(args[i+1]) {
				i++
				o.verbosity, _ = strconv.Atoi(args[i])
			} else {
				o.verbosity++
			}
		case strings.HasPrefix(name, "-v") && isNumber(name[2:]):
			o.verbosity, _ = strconv.Atoi(name[2:])
		case strings.HasPrefix(name, "-v") && strings.Trim(name[1:], "v") == "":
			o.verbosity += len(name) - 1
		case strings.HasPrefix(a, "-") && a != "-":
			err = usageError("unknown option %s", a)
		default:
			o.positional = append(o.positional, a)
		}
		if err != nil {
			if _, ok := err.(usageErr); !ok {
				err = usageError("%s: %v", name, err)
			}
			return nil, err
		}
	}
	return o, nil
}

func isNumber(s string) bool {
	_, err := strconv.Atoi(s)
	return s != "" && err == nil
}
