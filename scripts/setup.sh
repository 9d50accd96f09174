#!/usr/bin/env bash
# Installs what wirebook needs on Debian 12 (as root) and builds it into build/.
# Idempotent: packages already present are not reinstalled; the build is incremental.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config clang libclang-rt-14-dev
      libdpdk-dev dpdk dpdk-dev libnuma-dev libhwloc-dev hwloc liburing-dev libzstd-dev zstd
      libcmocka-dev libpcap-dev libcyaml-dev libyaml-dev libjansson-dev libxxhash-dev
      tshark python3 gzip iproute2 ethtool util-linux iputils-ping procps)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing packages: ${missing[*]}; run as root to install them" >&2
		exit 1
	fi
	echo "setup: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	# tshark asks whether non-root users may capture; answer once, non-interactively.
	echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

BUILD=${WB_BUILD_DIR:-build}
cmake -S . -B "$BUILD" -DCMAKE_BUILD_TYPE=${WB_BUILD_TYPE:-RelWithDebInfo} >/dev/null
cmake --build "$BUILD" -j"$(nproc)"
