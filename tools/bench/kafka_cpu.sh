#!/usr/bin/env bash
# CPU cost of dipper on Kafka, end to end: CPU seconds (user + sys) the `dipper run` process spends per
# 100k events of JSON -> 30 features -> 100-tree GBM (fixtures/bench) -> JSON prediction, consumed from and
# produced to a Kafka-compatible broker (tansu, in memory), at-least-once.
#
# Prints: events N, cpu_s X, wall_s Y, cpu_s per 100k events Z
#
# tansu consumes and produces slowly (about 10k msg/s), so the wall time is tansu's; the CPU seconds of the
# dipper process are the figure. Exactly-once cannot run here: tansu 0.6 has no EndTxn, so transactions never
# commit (see crates/dipper-testkit/src/lib.rs).
#
# Back-pressure is switched off (max_in_flight_batches is huge, so no partition is ever paused): tansu 0.6
# answers a Fetch at an offset inside a stored record batch with the batches after it, skipping the rest of
# that batch, and librdkafka refetches from the consumer's position (usually mid-batch) after a pause. With
# pausing, about 11% of the events were skipped without output while their offsets were committed.
#
# Usage: tools/bench/kafka_cpu.sh [EVENTS] (default 100000). Environment: TANSU_BIN (default
# $HOME/.cache/tansu/bin/tansu), CARGO_TARGET_DIR (default target), WORKERS (processing.workers, default 1),
# NO_BUILD=1 to use the binaries as they are.
set -euo pipefail

events="${1:-100000}"
workers="${WORKERS:-1}"
idle_ms=2000
repo="$(cd "$(dirname "$0")/../.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
tansu="${TANSU_BIN:-$HOME/.cache/tansu/bin/tansu}"
dipper="$target/release/dipper"
helper="$target/release/examples/bench_kafka"

[ -x "$tansu" ] || { echo "no tansu at $tansu (bash tools/ci/install-tansu.sh)" >&2; exit 1; }
if [ "${NO_BUILD:-0}" != 1 ]; then
  (cd "$repo" && cargo build --release -q -p dipper --bin dipper \
    && cargo build --release -q -p dipper-testkit --example bench_kafka)
fi

work="$(mktemp -d)"
tansu_pid=""
cleanup() {
  if [ -n "$tansu_pid" ]; then kill "$tansu_pid" 2>/dev/null || true; wait "$tansu_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
tansu_pid=$!
export DIPPER_TEST_BROKERS="127.0.0.1:$port"

for t in events scores events-dlq; do "$helper" create "$t" 3; done
"$helper" produce events "$repo/fixtures/bench/rows.jsonl" "$events"

cat >"$work/p.yaml" <<EOF
name: kafka-cpu
transport:
  kafka:
    brokers: 127.0.0.1:$port
input:
  topics: [events]
  event_id_field: event_id
model:
  path: $repo/fixtures/bench/lgbm_100x31x30.txt
output:
  topic: scores
dead_letter:
  topic: events-dlq
delivery:
  guarantee: at-least-once
processing:
  workers: $workers
  max_in_flight_batches: 1000000
EOF

# %U/%S: user and system CPU seconds of the dipper process (and its threads), %e: wall seconds.
/usr/bin/time -f '%U %S %e' -o "$work/time" \
  "$dipper" run "$work/p.yaml" --exit-when-idle "$idle_ms" 2>"$work/dipper.log" \
  || { tail -20 "$work/dipper.log" >&2; exit 1; }
grep 'dipper run:' "$work/dipper.log" >&2 || true
read -r user sys wall <"$work/time"

scores="$("$helper" count scores)"
dead="$("$helper" count events-dlq 1000)"
if [ "$scores" != "$events" ] || [ "$dead" != 0 ]; then
  echo "output check failed: $scores predictions and $dead dead letters for $events events" >&2
  exit 1
fi
echo "output check: $scores predictions, $dead dead letters" >&2

awk -v n="$events" -v u="$user" -v s="$sys" -v w="$wall" -v idle="$idle_ms" 'BEGIN {
  cpu = u + s
  printf "events %d, cpu_s %.2f, wall_s %.2f, cpu_s per 100k events %.3f\n", n, cpu, w, cpu * 100000 / n
  printf "(user %.2f, sys %.2f; wall includes the %.1f s idle wait before exit)\n", u, s, idle / 1000 > "/dev/stderr"
}'
