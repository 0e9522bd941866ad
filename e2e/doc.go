// Package e2e holds the end-to-end tests of cryo: real processes (the C
// workloads in testdata/) are checkpointed with `cryo dump`, restored with
// `cryo restore` and verify themselves. See README.md in this directory.
package e2e
