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

ia_use_local_kafka BENCH_KAFKA_BROKER

export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"
npx tsx scripts/bench.ts "$@"
