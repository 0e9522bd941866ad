// Command cryo checkpoints and restores Linux processes, with CRIU's
// command-line flags and image format.
//
//	cryo dump -t PID -D DIR [-j] [-R|--leave-running] [-s|--leave-stopped] [--tcp-established] [--ext-unix-sk] [--skip-in-flight] [--link-remap] [--tcp-close] [--file-locks] [--external KIND[ID]] [--ext-mount-map POINT:KEY] [--action-script FILE] [--display-stats] [-W DIR] [-v N] [-o FILE]
//	cryo pre-dump -t PID -D DIR [--prev-images-dir ../DIR0] [--track-mem] [-v N] [-o FILE]
//	cryo restore -D DIR [-d] [--pidfile FILE] [-j] [-s|--leave-stopped] [--trust-images] [--tcp-close] [--inherit-fd fd[N]:RESOURCE] [--root DIR] [--ext-mount-map KEY:PATH] [--action-script FILE] [--display-stats] [-W DIR] [-v N] [-o FILE]
//	cryo check [--all | --feature NAME]
//	cryo -V|--version
//	cryo show DIR|FILE
//	cryo swrk FD
//
// Started under the name criu (a link), it takes CRIU's place under
// container engines: they run "criu swrk FD".
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/cryo-cr/cryo"
)

const usage = `usage:
  cryo dump -t PID -D DIR [-j|--shell-job] [-R|--leave-running] [-s|--leave-stopped] [--tcp-established] [--ext-unix-sk]
            [--skip-in-flight] [--link-remap] [--tcp-close] [--file-locks] [--external KIND[ID]] [--ext-mount-map POINT:KEY]
            [--action-script FILE] [--display-stats] [-W|--work-dir DIR] [-v N|-v0..-v4|-vvvv] [-o FILE]
  cryo pre-dump -t PID -D DIR [--prev-images-dir ../DIR0] [--track-mem] [-v N] [-o FILE]
            (then: cryo dump ... --prev-images-dir ../DIR --track-mem)
  cryo restore -D DIR [-d|--restore-detached] [--pidfile FILE] [-j] [-s|--leave-stopped] [--trust-images] [--tcp-close]
            [--inherit-fd fd[N]:RESOURCE] [--root DIR] [--ext-mount-map KEY:PATH] [--action-script FILE] [--display-stats] [-W DIR] [-v N] [-o FILE]
  cryo check [--all | --feature NAME (list: the names)]
  cryo -V|--version
  cryo show DIR|FILE
  cryo swrk FD   (CRIU's RPC on socket FD, as container engines start criu)
`

func main() {
	// The copies of cryo that a restore or a check starts (stubs, the init
	// of a new pid namespace, probes) take their role here.
	cryo.Init()
	os.Exit(run(os.Args[1:]))
}

// run executes one command and returns the exit status. Every failure is
// one line on stderr.
func run(args []string) (status int) {
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "cryo: internal error: %v\n", p)
			if os.Getenv("CRYO_DEBUG") != "" {
				os.Stderr.Write(debug.Stack())
			}
			status = 1
		}
	}()
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	for _, a := range args {
		if a == "-V" || a == "--version" {
			printVersion()
			return 0
		}
	}
	cmd, rest := args[0], args[1:]
	if err := archRefuses(cmd); err != nil {
		fmt.Fprintf(os.Stderr, "cryo: %v\n", err)
		return 1
	}
	defer startProfile()()
	var err error
	switch cmd {
	case "dump":
		err = cmdDump(rest)
	case "pre-dump":
		err = cmdPreDump(rest)
	case "restore":
		status, err = cmdRestore(rest)
	case "check":
		err = cmdCheck(rest)
	case "show":
		err = cmdShow(rest)
	case "swrk":
		err = cmdSwrk(rest)
	case "-h", "--help", "help":
		fmt.Print(usage)
		return 0
	default:
		err = usageError("unknown command %q", cmd)
	}
	if err != nil {
		msg := err.Error()
		if os.Getenv("CRYO_DEBUG") == "" {
			msg = oneLine(msg)
		}
		fmt.Fprintf(os.Stderr, "cryo: %s\n", msg)
		if _, ok := err.(usageErr); ok {
			return 2
		}
		return 1
	}
	return status
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

type usageErr string

func (e usageErr) Error() string { return string(e) }

func usageError(format string, args ...any) error {
	return usageErr(fmt.Sprintf(format, args...) + " (see cryo --help)")
}
