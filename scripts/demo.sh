#!/usr/bin/env bash
# Demo: start a counting program, checkpoint it with cryo, show it is gone,
# restore it, and show it counting on from where it was. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/cryo-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/counter.c" <<'C'
#include <stdio.h>
#include <unistd.h>
int main(void) {
	for (unsigned long n = 0;; n++) {
		printf("counter %d: %lu\n", getpid(), n);
		fflush(stdout);
		usleep(200000);
	}
}
C
gcc -O1 -o "$work/counter" "$work/counter.c"
# Start it with only stdin/stdout/stderr: descriptors the calling shell may
# leak (pipes, sockets) are kinds this demo does not need. It is disowned so
# that bash does not report the kill that the dump does.
(
	for fd in /proc/$BASHPID/fd/*; do
		n=${fd##*/}
		if [ "$n" -gt 2 ]; then eval "exec $n>&-" 2>/dev/null || true; fi
	done
	exec setsid "$work/counter" > "$work/out.log" 2>&1 < /dev/null
) &
pid=$!
disown "$pid"

# lines N: wait until the log has at least N lines (at most 10 s).
lines() {
	for _ in $(seq 100); do
		[ "$(wc -l < "$work/out.log")" -ge "$1" ] && return 0
		sleep 0.1
	done
	echo "demo: the counter wrote nothing" >&2
	return 1
}

lines 3
echo "== running (pid $pid):"; tail -n 2 "$work/out.log"
./cryo dump -t "$pid" -D "$work/images" -v4 -o dump.log
for _ in $(seq 100); do [ -e "/proc/$pid" ] || break; sleep 0.1; done
echo "== dumped into $work/images (the counter is gone):"
ls "$work/images" | paste -sd' '
echo "== restoring"
before=$(wc -l < "$work/out.log")
./cryo restore -D "$work/images" -d -v4 -o restore.log
lines $((before + 3))
echo "== restored (same pid $pid), counting on:"; tail -n 4 "$work/out.log"
kill "$pid"
