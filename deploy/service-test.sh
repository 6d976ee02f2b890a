#!/usr/bin/env bash
# The Debian package and its keyhold.service, proven under a real systemd (as root, on Debian 12):
#
#   deploy/service-test.sh [keyhold_VERSION_ARCH.deb]     (default: the newest keyhold_*.deb in the repository's root)
#
# 1. lintian: no error (its warnings are printed);
# 2. apt-get install ./the.deb (its postinst must not fail, and must not enable a unit without credentials);
# 3. a private systemd (deploy/private-systemd.sh; the machine's PID 1 is not systemd) under the lock the Swift
#    tests take, so that only one runs per machine; everything below runs inside its namespaces (nsenter), as an
#    admin on a systemd host would type it;
# 4. keyhold.service started before its credentials exist must fail on its assertion;
# 5. `keyhold init`, both keys sealed with systemd-creds, the plaintext KEK shredded, then keyhold.service EXACTLY as
#    shipped: `systemctl start keyhold`;
# 6. with the CLI: a tenant on each plan (BYOK with a key on stdin, managed with the platform's key, BYOK brokered whose
#    agent holds a placeholder), the sandboxes started, the BYOK key rotated (the new agent holds the new key), the audit log verified, `systemctl restart
#    keyhold` with the sandboxes still running (same processes) and found again, the service stopped cleanly;
# 7. canary: the keys appear in no unit's properties, not in the journal, not in /var/lib/keyhold or /run/keyhold;
# 8. `systemd-analyze security keyhold.service` printed;
# 9. apt-get remove keeps the state and the credentials; apt-get purge deletes them and names them.
#
# Every exit path stops the private systemd (by its pid) and purges the package; a machine where keyhold is already
# installed, or that has /var/lib/keyhold or /etc/keyhold, is refused (the purge would delete them).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
started_at=$(date +%s)

say() { echo "service-test: $*"; }
fail() {
  echo "service-test: FAILED: $*" >&2
  diagnose >&2 || true
  exit 1
}

[ "$(id -u)" = 0 ] || { echo "service-test: run as root" >&2; exit 1; }
# One private systemd per machine, and nothing else of Keyhold's on it meanwhile: the Swift tests' lock, taken before
# looking at the machine's state and held until this script exits (after its cleanup).
lock=/run/lock/keyhold-private-systemd.lock
mkdir -p /run/lock
exec {lock_fd}<>"$lock"
if ! flock -n "$lock_fd"; then
  echo "service-test: waiting for the private systemd lock (held by pid $(cat "$lock" 2>/dev/null || echo '?'))"
  flock -w 900 "$lock_fd" || { echo "service-test: another private systemd has run for 15 minutes (lock $lock, pid $(cat "$lock" 2>/dev/null)): stop it, or wait" >&2; exit 1; }
fi
echo $$ >"$lock"
deb=${1:-$(find "$repo" -maxdepth 1 -name 'keyhold_*.deb' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2-)}
if [ -z "$deb" ] || [ ! -f "$deb" ]; then echo "service-test: no keyhold_*.deb: build one with deploy/package.sh --build" >&2; exit 1; fi
deb=$(cd "$(dirname "$deb")" && pwd)/$(basename "$deb")
if dpkg-query -W -f='${Status}' keyhold 2>/dev/null | grep -q installed; then
  echo "service-test: keyhold is installed on this machine; this test purges it at the end (state and keys): remove it first" >&2
  exit 1
fi
for path in /var/lib/keyhold /etc/keyhold; do
  [ ! -e "$path" ] || { echo "service-test: $path exists; the test's purge would delete it: move it away first" >&2; exit 1; }
done
# The Swift tests' sandboxes leave this directory behind, empty: it is put back after the purge.
agents=/var/lib/private/keyhold-agents
agents_existed=no
if [ -e "$agents" ]; then
  [ -z "$(ls -A "$agents")" ] || { echo "service-test: $agents holds tenants' agent state; the test's purge would delete it: move it away first" >&2; exit 1; }
  agents_existed=yes
fi
if [ -d /run/systemd/system ] && [ "$(cat /proc/1/comm)" = systemd ]; then
  echo "service-test: PID 1 is systemd here; this test boots a private systemd and needs a machine without one" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
need=()
for package in lintian systemd dbus util-linux; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || need+=("$package")
done
if [ "${#need[@]}" -gt 0 ]; then
  say "installing ${need[*]}"
  apt-get update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

run=$(mktemp -d /var/tmp/keyhold-service-test.XXXXXX)
systemd_pid=
installed=no
secret=/var/lib/systemd/credential.secret
secret_existed=no
[ -e "$secret" ] && secret_existed=yes
private_existed=no
[ -e /var/lib/private ] && private_existed=yes

# In the private systemd's mount and pid namespaces: its /run (systemctl's socket, the admin socket), its journal.
inside() { timeout 120 nsenter -t "$systemd_pid" -m -p -- "$@"; }
keyhold() { inside /usr/bin/keyhold "$@"; }

diagnose() {
  [ -n "$systemd_pid" ] || return 0
  echo "--- systemctl status keyhold"
  inside systemctl status --no-pager --lines=0 keyhold.service 2>&1 || true
  echo "--- journal of keyhold.service (last 60 lines)"
  inside journalctl --no-pager -u keyhold.service -n 60 2>&1 || true
}

cleanup() {
  status=$?
  trap - EXIT INT TERM
  set +e
  if [ -n "$systemd_pid" ]; then
    inside systemctl stop keyhold.service >/dev/null 2>&1
    "$repo/deploy/private-systemd.sh" stop "$run" >/dev/null || echo "service-test: could not stop the private systemd (see $run)" >&2
  fi
  if [ "$installed" = yes ]; then
    apt-get -o DPkg::Lock::Timeout=600 purge -y -qq keyhold >"$run/purge-at-exit.log" 2>&1 || { cat "$run/purge-at-exit.log" >&2; status=1; }
  fi
  [ "$secret_existed" = yes ] || rm -f "$secret"
  [ "$agents_existed" = no ] || install -d -m 0755 "$agents"
  [ "$private_existed" = yes ] || rmdir /var/lib/private 2>/dev/null
  if [ "$status" = 0 ]; then rm -rf "$run"; else echo "service-test: logs kept in $run" >&2; fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- 1. lintian ---
say "lintian $(basename "$deb")"
lintian --tag-display-limit 0 "$deb" >"$run/lintian.txt" 2>&1 || true
cat "$run/lintian.txt"
if grep -q '^E:' "$run/lintian.txt"; then fail "lintian reports errors (above)"; fi
say "lintian: no error, $(grep -c '^W:' "$run/lintian.txt" || true) warning(s)"

# --- 2. install, on a host whose PID 1 is not systemd ---
# apt reads the file as _apt when it can: from a world-readable copy, not from wherever the repository is.
install -d -m 0755 "$run/deb"
install -m 0644 "$deb" "$run/deb/"
installed=yes
apt-get -o DPkg::Lock::Timeout=600 install -y -qq "$run/deb/$(basename "$deb")" >"$run/install.log" 2>&1 || { cat "$run/install.log"; fail "apt-get install failed"; }
grep -q 'keyhold.service is installed but not enabled' "$run/install.log" || { cat "$run/install.log"; fail "postinst did not say what to do next"; }
[ ! -e /etc/systemd/system/multi-user.target.wants/keyhold.service ] || fail "postinst enabled keyhold.service on a host without its credentials"
for path in /usr/bin/keyhold /usr/bin/keyholdd /usr/libexec/keyhold/keyhold-exec /usr/libexec/keyhold/keyhold-mount; do
  [ "$(stat -c '%U %a' "$path")" = "root 755" ] || fail "$path is not root-owned 0755: $(stat -c '%U %a' "$path")"
done
for path in /lib/systemd/system/keyhold.service /etc/keyhold/plans/byok.yaml /etc/keyhold/plans/managed.yaml \
  /etc/keyhold/sandbox-profiles/default.json /usr/share/man/man1/keyhold.1.gz /usr/share/man/man1/keyholdd-serve.1.gz \
  /usr/share/doc/keyhold/copyright; do
  [ -f "$path" ] || fail "the package did not install $path"
done
for program in keyhold keyholdd; do
  ldd /usr/bin/$program | grep -E 'libswift|libFoundation|/opt/swift' >/dev/null && fail "/usr/bin/$program links the Swift runtime dynamically"
done
man -l /usr/share/man/man1/keyhold.1.gz >/dev/null 2>&1 || [ ! -x /usr/bin/man ] || fail "man cannot render keyhold(1)"
say "installed: $(dpkg-query -W -f='${Package} ${Version}' keyhold)"

# --- 3. a private systemd (the lock is held since the start) ---
# The lock's descriptor stays here, not in the instance: it is released when this script exits, after cleanup.
"$repo/deploy/private-systemd.sh" start "$run" 60 {lock_fd}>&- >/dev/null || fail "the private systemd did not boot (see $run/private-systemd.log)"
systemd_pid=$(cat "$run/systemd.pid")
say "private systemd running as pid $systemd_pid"
inside systemctl daemon-reload
inside systemctl cat keyhold.service >/dev/null || fail "the private systemd does not know keyhold.service"

# --- 4. started without credentials: refused on its assertion, with a message naming them ---
if inside systemctl start keyhold.service 2>"$run/start-without-credentials.txt"; then
  fail "keyhold.service started without its credentials"
fi
# systemd 252 says "Assertion failed on job for keyhold.service." and logs which unit, not which path: the unit's
# AssertPathExists= lines and the postinst's message name the credentials and the commands that make them.
grep -q 'Assertion failed' "$run/start-without-credentials.txt" ||
  { cat "$run/start-without-credentials.txt"; fail "the start without credentials did not fail on the unit's assertion"; }
# (grep without -q: an early exit would SIGPIPE systemctl, and pipefail make that a failure.)
inside systemctl cat keyhold.service | grep '^AssertPathExists=/etc/keyhold/kek.cred' >/dev/null || fail "the unit asserts no credential"
say "without credentials: refused ($(head -1 "$run/start-without-credentials.txt"))"
inside systemctl reset-failed keyhold.service 2>/dev/null || true

# --- 5. keys, sealed as credentials, as the unit's header says ---
keyhold init --state-dir /var/lib/keyhold >/dev/null || fail "keyhold init failed"
inside systemd-creds encrypt --name=kek /var/lib/keyhold/kek /etc/keyhold/kek.cred >/dev/null || fail "systemd-creds encrypt (kek) failed"
inside systemd-creds encrypt --name=audit-signing.key /var/lib/keyhold/audit-signing.key /etc/keyhold/audit-signing.key.cred >/dev/null ||
  fail "systemd-creds encrypt (audit signing key) failed"
chmod 0600 /etc/keyhold/kek.cred /etc/keyhold/audit-signing.key.cred
# Neither plaintext key stays on disk: the daemon must take both from $CREDENTIALS_DIRECTORY.
shred -u /var/lib/keyhold/kek /var/lib/keyhold/audit-signing.key

unit_started=$(date +%s%N)
inside systemctl start keyhold.service || fail "systemctl start keyhold failed"
say "keyhold.service active after $((($(date +%s%N) - unit_started) / 1000000)) ms (Type=notify: READY=1 received)"
[ "$(inside systemctl is-active keyhold.service)" = active ] || fail "keyhold.service is not active"
inside systemctl show keyhold.service -p ExecMainStatus -p LoadCredentialEncrypted -p FragmentPath | sed 's/^/  /'

# --- 6. the CLI against the service ---
canary=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
byok_key="sk-ant-api03-KHCANARY$canary-one"
byok_key2="sk-ant-api03-KHCANARY$canary-two"
platform_key="sk-proj-KHCANARY$canary-platform"
brokered_key="sk-ant-api03-KHCANARY$canary-brokered"
keyhold plan list >"$run/plans.txt" || fail "keyhold plan list failed"
for plan in byok byok-brokered managed; do
  grep -q "^$plan " "$run/plans.txt" || fail "plan $plan in /etc/keyhold/plans is not served: $(cat "$run/plans.txt")"
done
keyhold tenant create acme --plan byok || fail "tenant create (byok) failed"
keyhold tenant create globex --plan managed || fail "tenant create (managed) failed"
keyhold tenant create initech --plan byok-brokered || fail "tenant create (byok-brokered) failed"
# Keys on stdin, never argv. No internet: not validated with the providers.
printf %s "$byok_key" | keyhold key set acme anthropic --no-validate || fail "key set failed"
printf %s "$platform_key" | keyhold platform set-key openai --no-validate || fail "platform set-key failed"
printf %s "$brokered_key" | keyhold key set initech anthropic --no-validate || fail "key set (brokered) failed"
keyhold sandbox start acme || fail "sandbox start (byok) failed"
keyhold sandbox start globex || fail "sandbox start (managed) failed"
keyhold sandbox start initech || fail "sandbox start (byok-brokered) failed"

units_of() { keyhold sandbox list --json | python3 -c "
import json, sys
print(' '.join(sorted(s['unit'] for s in json.load(sys.stdin) if s['state'] == 'running')))"; }
pids_of() { for unit in "$@"; do inside systemctl show -p MainPID --value "$unit"; done | tr '\n' ' '; }
# What the default agent prints of the key it holds (a hash prefix, never the key).
key_hash() { printf %s "$1" | sha256sum | cut -c1-16; }
agent_holds() {
  for _ in $(seq 50); do
    inside journalctl --no-pager -u "$1" -o cat 2>/dev/null | grep "sha256:$2" >/dev/null && return 0
    sleep 0.1
  done
  return 1
}

keyhold sandbox list
units=$(units_of)
[ "$(wc -w <<<"$units")" = 3 ] || fail "expected 3 running sandboxes, found: '$units'"
acme_unit=$(keyhold sandbox status acme --json | python3 -c 'import json,sys; print(" ".join(s["unit"] for s in json.load(sys.stdin) if s["state"] == "running"))')
agent_holds "$acme_unit" "$(key_hash "$byok_key")" || fail "acme's agent ($acme_unit) does not hold its key"
# Brokered: the agent holds a placeholder, never the key (the canary check below searches everything else).
initech_unit=$(keyhold sandbox status initech --json | python3 -c 'import json,sys; print(" ".join(s["unit"] for s in json.load(sys.stdin) if s["state"] == "running"))')
agent_holds "$initech_unit" "" || fail "initech's agent ($initech_unit) reported nothing"
agent_holds "$initech_unit" "$(key_hash "$brokered_key")" && fail "initech's agent ($initech_unit) holds its key: brokered delivery must give it a placeholder"
keyhold sandbox status initech | grep -q 'key broker at http://127.0.0.1:8787' || fail "initech's sandbox has no key broker: $(keyhold sandbox status initech)"
say "brokered: $initech_unit holds a placeholder, its key broker is open"

rotation=$(printf %s "$byok_key2" | keyhold key rotate acme anthropic --no-validate) || fail "key rotate failed"
echo "$rotation"
acme_unit=$(keyhold sandbox status acme --json | python3 -c 'import json,sys; print(" ".join(s["unit"] for s in json.load(sys.stdin) if s["state"] == "running"))')
agent_holds "$acme_unit" "$(key_hash "$byok_key2")" || fail "after the rotation, acme's agent ($acme_unit) does not hold the new key"
say "rotated: $acme_unit holds the new key"

keyhold audit verify --state-dir /var/lib/keyhold || fail "keyhold audit verify failed"

# --- the service restarted: the sandboxes keep running (same processes) and the new daemon finds them ---
units=$(units_of)
# shellcheck disable=SC2086 # the unit names are words
pids=$(pids_of $units)
inside systemctl restart keyhold.service || fail "systemctl restart keyhold failed"
[ "$(inside systemctl is-active keyhold.service)" = active ] || fail "keyhold.service is not active after its restart"
keyhold sandbox list
after=$(units_of)
[ "$after" = "$units" ] || fail "after the restart the daemon lists '$after', before it listed '$units'"
# shellcheck disable=SC2086
[ "$(pids_of $units)" = "$pids" ] || fail "the sandboxes' processes changed across the restart ($pids -> $(pids_of $units))"
for unit in $units; do
  inside test -s "/run/keyhold/sandboxes/$unit/hosts" || fail "the restart deleted $unit's /etc/hosts source (/run/keyhold/sandboxes/$unit)"
done
say "restarted: the same sandboxes ($units) run on, found again by the new daemon"
keyhold audit verify --state-dir /var/lib/keyhold >/dev/null || fail "keyhold audit verify failed after the restart"

# --- 7. canary ---
# Every unit the instance knows (loaded, in any state), then the manager itself.
# shellcheck disable=SC2016 # expanded by the shell inside the instance
inside sh -c 'systemctl show -- $(systemctl list-units --all --plain --no-legend | awk "{print \$1}"); systemctl show' >"$run/units.txt" 2>&1 || true
[ "$(grep -c '^Id=' "$run/units.txt")" -gt 10 ] || fail "systemctl show read too few units for the canary check"
inside journalctl --no-pager -o export >"$run/journal.export" 2>/dev/null || true
[ -s "$run/journal.export" ] || fail "the journal could not be read for the canary check"
for found in $(grep -l -a -r "KHCANARY$canary" "$run/units.txt" "$run/journal.export" /var/lib/keyhold /etc/keyhold 2>/dev/null || true); do
  fail "a key's bytes are in $found"
done
inside grep -r -a -l "KHCANARY$canary" /run/keyhold && fail "a key's bytes are in /run/keyhold"
say "canary: no key in any unit's properties ($(grep -c '^Id=' "$run/units.txt") units), the journal ($(stat -c %s "$run/journal.export") bytes), /var/lib/keyhold, /etc/keyhold, /run/keyhold"

# --- 8. systemd-analyze security ---
inside systemd-analyze security --no-pager keyhold.service >"$run/security.txt" 2>&1 || true
cat "$run/security.txt"
score=$(grep -o 'Overall exposure level for keyhold.service: .*' "$run/security.txt" || true)
[ -n "$score" ] || fail "systemd-analyze security printed no score"

# --- the service stopped; tenants deleted first (their sandboxes stop, their keys are destroyed) ---
keyhold tenant delete acme --yes >/dev/null || fail "tenant delete acme failed"
keyhold tenant delete globex --yes >/dev/null || fail "tenant delete globex failed"
inside systemctl stop keyhold.service || fail "systemctl stop keyhold failed"
state=$(inside systemctl show keyhold.service -p ActiveState --value)
result=$(inside systemctl show keyhold.service -p Result --value)
restarts=$(inside systemctl show keyhold.service -p NRestarts --value)
if [ "$state" != inactive ] || [ "$result" != success ]; then fail "after stop: ActiveState=$state Result=$result (expected inactive, success)"; fi
[ "$restarts" = 0 ] || fail "systemd restarted keyhold.service $restarts time(s) (a crash or a watchdog timeout)"
inside journalctl --no-pager -u keyhold.service -o cat >"$run/keyhold.log"
# libdispatch's refused thread-priority call is known and harmless (see the unit's SystemCallErrorNumber= comment).
if grep -v 'Failed to set thread priority for worker thread' "$run/keyhold.log" |
  grep -iE 'operation not permitted|permission denied|read-only file system|EPERM|errno=[0-9]|no way out'; then
  fail "the daemon's log shows a refusal (above): the unit's hardening forbids something it does"
fi
say "stopped cleanly (Result=success, NRestarts=0)"

"$repo/deploy/private-systemd.sh" stop "$run" >/dev/null || fail "could not stop the private systemd"
systemd_pid=

# --- 9. remove keeps tenants' state and keys; purge deletes them and says so ---
apt-get -o DPkg::Lock::Timeout=600 remove -y -qq keyhold >"$run/remove.log" 2>&1 || { cat "$run/remove.log"; fail "apt-get remove failed"; }
grep 'keyhold:' "$run/remove.log" | sed 's/^/  /'
for path in /var/lib/keyhold/keyhold.db /etc/keyhold/kek.cred /etc/keyhold/audit-signing.key.cred; do
  [ -e "$path" ] || fail "apt-get remove deleted $path"
done
[ ! -e /usr/bin/keyhold ] || fail "apt-get remove left /usr/bin/keyhold"
apt-get -o DPkg::Lock::Timeout=600 purge -y -qq keyhold >"$run/purge.log" 2>&1 || { cat "$run/purge.log"; fail "apt-get purge failed"; }
installed=no
grep 'keyhold:' "$run/purge.log" | sed 's/^/  /'
for path in /var/lib/keyhold /etc/keyhold; do
  grep -q "deleting $path" "$run/purge.log" || fail "apt-get purge did not say it deletes $path"
  [ ! -e "$path" ] || fail "apt-get purge left $path"
done
say "remove kept the state and keys; purge deleted them, naming each"
say "passed in $(($(date +%s) - started_at)) s; $score"
