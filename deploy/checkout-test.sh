#!/usr/bin/env bash
# The README's first command, unchanged, from clones that sandboxes cannot see into: one under /root (ProtectHome=
# hides it) and one under /tmp (a private systemd and every sandbox have a /tmp of their own), in a directory whose
# name has a space. The clones share this checkout's build cache: setup.sh builds with --scratch-path set to it, and
# it is bind-mounted on each clone's .build (so that the agent launcher really is found under /root or /tmp), so the
# dependencies are built once for all and only Keyhold's own modules are compiled again for each clone's paths.
#
#   deploy/checkout-test.sh   (as root, after deploy/setup.sh with the same KEYHOLD_BUILD_FLAGS; clones the committed HEAD)
set -euo pipefail
cd "$(dirname "$0")/.."
source_tree=$(pwd)
[ -d .build/checkouts ] || { echo "checkout-test: build this checkout first (deploy/setup.sh)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "checkout-test: run as root (the demo boots systemd and starts sandboxes)" >&2; exit 1; }

clones=()
cleanup() {
    for clone in "${clones[@]}"; do
        umount "$clone/keyhold/.build" 2>/dev/null || true
        rm -rf "$clone"
    done
}
trap cleanup EXIT

for parent in /root /tmp; do
    clone=$(mktemp -d "$parent/keyhold checkout.XXXXXX")
    clones+=("$clone")
    git clone -q "$source_tree" "$clone/keyhold"
    mkdir "$clone/keyhold/.build"
    mount --bind "$source_tree/.build" "$clone/keyhold/.build"
    echo "checkout-test: the README's first command in '$clone/keyhold'"
    SECONDS=0
    (cd "$clone/keyhold" && export KEYHOLD_BUILD_FLAGS="${KEYHOLD_BUILD_FLAGS:-} --scratch-path $source_tree/.build" && deploy/setup.sh && .build/debug/keyhold demo) >"$clone/demo.log" 2>&1 || {
        tail -n 40 "$clone/demo.log" >&2
        echo "checkout-test: FAILED from '$clone/keyhold' (whole log above, last 40 lines)" >&2
        exit 1
    }
    echo "checkout-test: passed from '$clone/keyhold' in ${SECONDS} s, set-up included (demo: $(grep -E '^done in' "$clone/demo.log"))"
    for expected in "the daemon runs its root-owned copy /usr/local/libexec/keyhold/" "agent call 4: POST" "HTTP 429" "an agent of acme was running in every one" "verifies: " "agent tried https://example.com"; do
        grep -qF "$expected" "$clone/demo.log" || { echo "checkout-test: the demo's output lacks '$expected'" >&2; cat "$clone/demo.log" >&2; exit 1; }
    done
done
# Nothing of the demos is left: no staged launcher copies, no agents' state, no units (their systemd is gone with them).
for copy in /usr/local/libexec/keyhold/*; do
    [ -e "$copy" ] || continue
    echo "checkout-test: the demo left a launcher copy behind: $copy" >&2
    exit 1
done
for tenant in acme globex; do
    if [ -e "/var/lib/private/keyhold-agents/$tenant" ] || [ -e "/var/lib/keyhold-agents/$tenant" ]; then
        echo "checkout-test: the demo left $tenant's agent state behind" >&2
        exit 1
    fi
done
echo "checkout-test: the first command works from /root and from /tmp (with a space in the path)"
