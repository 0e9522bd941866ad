package main

import (
	"strconv"

	"github.com/cryo-cr/cryo/internal/swrk"
)

// cmdSwrk serves CRIU's RPC on the socket whose descriptor number is the
// argument, as "criu swrk FD" does under runc and go-criu. A request's
// failure goes back to the caller in the reply (and the log file it
// named), not to stderr, which on a restore is the container's.
func cmdSwrk(args []string) error {
	if len(args) != 1 {
		return usageError("swrk needs one socket descriptor number")
	}
	fd, err := strconv.Atoi(args[0])
	if err != nil || fd < 0 {
		return usageError("swrk: %q is not a descriptor number", args[0])
	}
	return swrk.Serve(fd, swrk.DefaultEngine())
}
