#!/usr/bin/env bash
# Installs what Keyhold needs on Debian 12 (run as root) and builds it. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  pkg-config libsqlite3-dev libssl-dev libseccomp-dev libsystemd-dev  # linked by Keyhold
  systemd dbus util-linux coreutils                                   # sandboxes; a private systemd when PID 1 is not systemd
  curl python3                                                        # used by test agents inside sandboxes (curl, ptrace probe)
  openssl ca-certificates                                             # the proxy's TLS roots; a test's self-signed provider
)
# deploy/test.sh adds what only the tests use (space-separated).
read -r -a extra <<<"${KEYHOLD_EXTRA_PACKAGES:-}"
packages+=("${extra[@]}")
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "setup: these Debian packages are missing: ${missing[*]}; run this script as root (sudo $0), or install them first" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

command -v swift >/dev/null || {
  echo "setup: swift is not on PATH: install Swift 6.1 or newer from https://www.swift.org/install/linux/ and add its usr/bin to PATH" >&2
  exit 1
}
# shellcheck disable=SC2086 # the flags are words
swift build ${KEYHOLD_BUILD_FLAGS:-} || {
  echo "setup: the build failed (above); if a C header is missing, check that the packages listed in $0 are installed" >&2
  exit 1
}
echo "setup: built $(pwd)/.build/debug/keyhold, keyhold-exec and keyhold-mount; next: .build/debug/keyhold demo (as root)"
