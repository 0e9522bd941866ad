# cryo: checkpoint/restore for Linux process trees.
GO ?= go
export CGO_ENABLED = 0

.PHONY: build demo test deps bench fuzz clean

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

# Every fuzzer of every package, FUZZTIME each (go test runs one fuzzer at
# a time). The seed corpora are in each package's testdata/fuzz; new
# crashers land there too, to be committed with their fix.
FUZZTIME ?= 10s
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		dir=$$($(GO) list -f '{{.Dir}}' $$pkg); \
		for fz in $$(grep -ho '^func Fuzz[A-Za-z0-9_]*' $$dir/*_test.go 2>/dev/null | sed 's/^func //'); do \
			echo "== $$pkg $$fz ($(FUZZTIME))"; \
			$(GO) test $$pkg -run '^$$' -fuzz "^$$fz\$$" -fuzztime $(FUZZTIME); \
		done; \
	done

clean:
	rm -f cryo
