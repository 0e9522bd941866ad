# cryo: checkpoint/restore for Linux process trees.
GO ?= go
export CGO_ENABLED = 0

.PHONY: build demo test deps bench clean

# The cryo binary, static (it is also the blank stub restore starts from).
build:
	$(GO) build -o cryo ./cmd/cryo

# Build, then checkpoint and restore a small counting program.
demo: build
	./scripts/demo.sh

# Install what the tests need (Debian packages), then run the whole suite.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -timeout 20m ./...

deps:
	./scripts/install-test-deps.sh

# The speed table of docs/speed.md (cryo, and CRIU when criu is on PATH or
# in CRIU_BIN): dump/restore of 1 GiB and 64 MiB, freeze of dump -R, small
# tree latency; medians of 3 runs, images on /dev/shm.
bench: deps
	$(GO) test -count=1 -run '^$$' -bench Speed -benchtime 1x -timeout 60m ./e2e/

clean:
	rm -f cryo
