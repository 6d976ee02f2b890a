#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, format lint, a build with warnings as errors,
# then every test against real parts (SQLite files, the daemon on a Unix socket, a real systemd).
set -euo pipefail
cd "$(dirname "$0")/.."

KEYHOLD_BUILD_FLAGS="-Xswiftc -warnings-as-errors" deploy/setup.sh
swift format lint --strict --recursive Sources Tests Benchmarks Package.swift
# Sandbox tests fail (instead of skipping) when no systemd can be reached.
export KEYHOLD_REQUIRE_SYSTEMD=1
swift test -Xswiftc -warnings-as-errors --no-parallel
