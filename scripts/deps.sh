#!/usr/bin/env bash
# Install everything cryo needs to build and test, on Debian 12, as root.
# Idempotent and fast when nothing is missing: apt is not touched then.
set -euo pipefail

PKGS=(
	meson ninja-build pkg-config gcc libc6-dev clang libclang-rt-14-dev
	liblz4-dev libzstd-dev libxxhash-dev libcmocka-dev
	libprotobuf-c-dev protobuf-c-compiler libnftables-dev nftables
	redis-server python3 sqlite3 tmux vim procps util-linux e2fsprogs curl
)

missing=()
for p in "${PKGS[@]}"; do
	# "install ok installed" only; a removed package leaves config-files.
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	echo "deps: all ${#PKGS[@]} packages present"
	exit 0
fi

echo "deps: installing ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null; then
		SUDO=(sudo)
	else
		echo "deps: not root and no sudo; install as root: ${missing[*]}" >&2
		exit 1
	fi
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -q </dev/null
"${SUDO[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
echo "deps: done"
