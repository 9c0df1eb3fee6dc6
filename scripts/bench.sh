#!/usr/bin/env bash
# Runs scripts/bench.ts on a fresh machine: Node.js, npm packages, a local Kafka broker (stopped
# again at the end if this script started it) and Redis on 127.0.0.1:6379.
#
# Usage: scripts/bench.sh [--copies N] [--model-delay-ms MS] [--stream FILE]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source scripts/node-env.sh
source scripts/ensure-deps.sh
ia_ensure_deps
ia_ensure_redis

# The broker this script starts listens on KAFKA_PORT (default 9092).
export BENCH_KAFKA_BROKER="${BENCH_KAFKA_BROKER:-127.0.0.1:${KAFKA_PORT:-9092}}"
started_kafka=0
if ! bash scripts/kafka.sh status >/dev/null 2>&1; then
  bash scripts/kafka.sh start
  started_kafka=1
fi
cleanup() {
  if [ "$started_kafka" = 1 ]; then
    bash scripts/kafka.sh stop || true
  fi
}
trap cleanup EXIT

export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"
npx tsx scripts/bench.ts "$@"
