#!/usr/bin/env bash
# Fuzzes the parsers that read bytes a tenant chooses (or a provider a tenant points at): the metering proxy's request
# reader and usage readers, the egress gateway's ClientHello, request-head and DNS parsers, keyhold-exec's payload
# decoder and the console's form decoder. Each target of keyhold-fuzz runs under libFuzzer with AddressSanitizer for
# a bounded time, from its seed corpus in Tests/FuzzCorpus/TARGET (recorded from real clients), and reports its
# executions per second and what it found. A crash stops with the input that caused it, saved beside the run's log.
#
# usage: deploy/fuzz.sh [--seconds N] [--keep] [TARGET...]   (default: 30 s for each of every target)
#   --keep   copy the inputs that reached new code into Tests/FuzzCorpus (to commit them as seeds)
#
# Builds into this checkout's .build with Keyhold's own modules instrumented (KEYHOLD_FUZZ=1 in Package.swift;
# dependencies are built as always): run it after the test suite, or the next `swift build` rebuilds those modules.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=30
keep=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="${2:?--seconds needs a number}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -*) echo "fuzz: unknown option $1 (see the usage at the top of deploy/fuzz.sh)" >&2; exit 64 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  targets=(request-body stream-usage answer-usage client-hello request-head dns-query exec-payload console-form)
fi
case "$seconds" in ''|*[!0-9]*) echo "fuzz: --seconds takes a whole number of seconds, not '$seconds'" >&2; exit 64 ;; esac

KEYHOLD_FUZZ=1 swift build --product keyhold-fuzz
binary=.build/debug/keyhold-fuzz
work=$(mktemp -d /var/tmp/keyhold-fuzz.XXXXXX)
echo "fuzz: ${seconds} s for each target; logs and anything found in $work"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
# The Swift runtime's backtracer reads the crashed stack in ways AddressSanitizer reports as a second error.
export SWIFT_BACKTRACE=enable=no
export KEYHOLD_FUZZ_PLAN="$PWD/plans/managed.yaml"

failed=()
printf '%-14s %12s %10s %8s %6s  %s\n' target executions "exec/s" corpus new result
for target in "${targets[@]}"; do
  seeds="Tests/FuzzCorpus/$target"
  [ -d "$seeds" ] || { echo "fuzz: no seed corpus at $seeds (is '$target' a target?)" >&2; exit 64; }
  found="$work/$target"
  mkdir -p "$found"
  log="$work/$target.log"
  status=0
  # A dictionary of the keys and values the parser decides on, where there is one (Tests/FuzzCorpus/TARGET.dict).
  dictionary=()
  if [ -f "Tests/FuzzCorpus/$target.dict" ]; then dictionary=(-dict="Tests/FuzzCorpus/$target.dict"); fi
  # New inputs go to $found (libFuzzer writes to the first directory); the seeds are read only.
  "$binary" "$target" -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
    "${dictionary[@]}" -artifact_prefix="$work/$target-" "$found" "$seeds" >"$log" 2>&1 || status=$?
  executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  corpus=$(find "$found" "$seeds" -type f | wc -l)
  new=$(find "$found" -type f | wc -l)
  if [ "$status" -eq 0 ]; then
    result="nothing found"
  else
    artifact=$(ls "$work/$target-"* 2>/dev/null | head -1 || true)
    result="FAILED (status $status): ${artifact:-no input saved}; see $log"
    failed+=("$target")
  fi
  printf '%-14s %12s %10s %8s %6s  %s\n' "$target" "${executions:-?}" "${rate:-?}" "$corpus" "$new" "$result"
  if [ "$keep" -eq 1 ] && [ "$new" -gt 0 ]; then cp "$found"/* "$seeds"/; fi
done

if [ ${#failed[@]} -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "--- $target: the failure as libFuzzer reported it"
    grep -E "Fatal error|Precondition failed|ERROR: |SUMMARY|Test unit written" "$work/$target.log" | head -8
  done
  exit 1
fi
rm -rf "$work"
