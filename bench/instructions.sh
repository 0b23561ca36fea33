#!/bin/sh
# Instructions the milterkit milter (no-op or work job) executes per message, counted by callgrind: a
# figure that other load on the machine does not change, for before/after comparisons where msg/s
# is too noisy. Counting starts after a warm-up, so start-up and JIT compilation are left out: the
# warm-up runs the load three times, because the end of each run (connections closing) sends V8
# back to unoptimized code for the hot functions once, and the next run optimizes them again; with
# one warm-up run, about a quarter of the counted instructions were TurboFan compiling them.
#
#   bench/instructions.sh [CHECKOUT] [MESSAGES] [loadgen options...]
#   bench/instructions.sh . 1000 --conns 8 --body 2048
#   bench/instructions.sh /tmp/other-checkout 1000 --conns 8 --body 2048 --per-message
#
# CHECKOUT (default .) must be built (npm run build); bench/.build/loadgen comes from npm run bench.
# Needs valgrind. Environment: WARMUP (default 3000) sets the messages of each of the three warm-up
# runs; JOB (noop or work, default noop) picks the milter's job; KEEP=DIR keeps the counted callgrind
# output (DIR/callgrind.out) and V8's map of its compiled code (DIR/perf.map, for naming the JIT
# addresses in callgrind_annotate's output) to profile with.
set -eu
checkout=${1:-.}
messages=${2:-1000}
[ $# -ge 2 ] && shift 2 || shift $#
here=$(cd "$(dirname "$0")" && pwd)
loadgen="$here/.build/loadgen"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
socket="$work/milter.sock"
job=${JOB:-noop}
case $job in noop | work) ;; *) echo "JOB must be noop or work, not $job" >&2; exit 2 ;; esac
perf_map=
[ -n "${KEEP:-}" ] && perf_map=--perf-basic-prof
valgrind --tool=callgrind --instr-atstart=no --smc-check=all-non-file --callgrind-out-file="$work/callgrind.out" \
  node $perf_map "$checkout/dist/bench/milters/milterkit.js" "$job" "unix:$socket" 2>"$work/valgrind.log" &
milter=$!
tries=0
until [ -S "$socket" ]; do
  tries=$((tries + 1))
  [ $tries -gt 1200 ] && { echo "the milter did not start: $(tail -3 "$work/valgrind.log")" >&2; kill $milter; exit 1; }
  sleep 0.1
done
for round in 1 2 3; do
  "$loadgen" --socket "unix:$socket" --check "$job" --messages "${WARMUP:-3000}" "$@" >/dev/null
done
callgrind_control -i on $milter >/dev/null 2>&1
"$loadgen" --socket "unix:$socket" --check "$job" --messages "$messages" "$@" >"$work/load.json"
callgrind_control -d $milter >/dev/null 2>&1
kill $milter
wait $milter 2>/dev/null || true
# The dump taken while counting is the second file; the first holds the uncounted remainder.
total=$(awk '/^totals:/ {print $2}' "$work/callgrind.out.1")
echo "$total instructions for $messages messages: $((total / messages)) per message ($job $*)"
if [ -n "${KEEP:-}" ]; then
  mkdir -p "$KEEP"
  cp "$work/callgrind.out.1" "$KEEP/callgrind.out"
  mv "/tmp/perf-$milter.map" "$KEEP/perf.map" 2>/dev/null || echo "no perf map /tmp/perf-$milter.map" >&2
fi
