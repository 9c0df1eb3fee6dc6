#!/usr/bin/env bash
# The demo on a fresh clone: fetches Node.js 24 if needed, installs the npm dependencies,
# starts a local Kafka broker (stopped again at the end if this script started it), uses Redis
# on 127.0.0.1:6379 when it responds, then runs scripts/demo.ts: the service, a stream of events
# in, the replies and dead letters out, and a summary.
#
# Usage: scripts/demo.sh [--input FILE] [--timeout SECONDS]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source scripts/node-env.sh
source scripts/ensure-deps.sh
ia_ensure_deps

if ia_ensure_redis; then
  export DEMO_REDIS_URL="${DEMO_REDIS_URL:-redis://127.0.0.1:6379}"
else
  echo "warning: running the demo without Redis: the service keeps dedup and memory in-process" >&2
fi

ia_use_local_kafka DEMO_KAFKA_BROKER

# kafkajs 2.2.4 sets a negative timer on Node.js 24, which only prints a warning
# (tulios/kafkajs#1751); keep it out of the demo's output.
export NODE_OPTIONS="${NODE_OPTIONS:-} --disable-warning=TimeoutNegativeWarning"
npx tsx scripts/demo.ts "$@"
