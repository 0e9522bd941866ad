#!/usr/bin/env bash
# Installs the Debian packages the test suite uses, one group per purpose
# (add a line for a new test rather than editing another's). Idempotent;
# needs root.
set -euo pipefail
packages=()
packages+=(gcc libc6-dev)                         # the C workloads the tests compile
packages+=(criu)                                  # CRIU's crit, which must read cryo's images
packages+=(uidmap)                                # newuidmap: the user-namespace tests
packages+=(tigervnc-standalone-server x11-apps x11-utils) # Xvnc, xclock, xdpyinfo, xwininfo: desktop tests
packages+=(nftables)                              # the network lock
packages+=(bsdutils)                              # script(1): the pty test
packages+=(runc busybox-static)                   # container tests (a busybox bundle)
packages+=(podman)                                # the podman test (an image imported from that bundle)
packages+=(containernetworking-plugins iptables)  # podman's default network (a CNI bridge): TestE2EPodmanNetwork
packages+=(libsqlite3-dev sqlite3)                # the sqlite writer of the file-lock test
packages+=(qemu-user)                             # the other architectures' builds run under qemu
packages+=(bubblewrap firefox-esr twm xterm xdotool) # sandbox and browser desktop tests
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-test-deps: need root to install: ${missing[*]}" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
