package main

import (
	"os"
	"runtime/pprof"
)

// startProfile writes a CPU profile of the command to the file named by
// CRYO_CPUPROFILE, for finding the fixed costs of a dump or restore
// (go tool pprof cryo FILE). It returns the function that stops it.
func startProfile() func() {
	path := os.Getenv("CRYO_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
