#!/usr/bin/env bash
# Installs the Debian packages the test suite uses: gcc and the static C
# library for the workloads the tests compile, and criu for CRIU's own
# crit, which must read cryo's images, and uidmap (newuidmap) for the
# user-namespace tests, and Xvnc, xclock, xdpyinfo and xwininfo for the
# desktop test, and script (bsdutils) for the pty test, and runc and
# busybox-static for the container tests (a busybox bundle), and podman
# for the podman test (an image imported from that bundle). Idempotent; needs
# root.
set -euo pipefail
packages=(gcc libc6-dev criu uidmap tigervnc-standalone-server x11-apps x11-utils nftables bsdutils runc busybox-static podman qemu-user)
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
