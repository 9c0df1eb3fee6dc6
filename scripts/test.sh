#!/usr/bin/env bash
# Runs every check and test on a fresh machine: fetches Node.js 24 if needed, installs the npm
# dependencies, starts a local Kafka broker (stopped again at the end if this script started
# it), makes sure Redis responds on 127.0.0.1:6379, then type-checks, checks the layer rules and
# the exported schemas, and runs all vitest projects (unit, contract, integration, end-to-end).
#
# Usage: scripts/test.sh [vitest arguments]
# Fails when a service is missing, when any test fails, and when any test is skipped.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

source scripts/node-env.sh
source scripts/ensure-deps.sh
ia_ensure_deps
ia_ensure_redis

ia_use_local_kafka TEST_KAFKA_BROKER

echo "== type check" >&2
npx tsc -p tsconfig.json --noEmit

echo "== layer rules" >&2
npm run --silent lint:layers

echo "== exported schemas are current" >&2
npx tsx scripts/export-schemas.ts --check

echo "== tests" >&2
mkdir -p .tools
report=.tools/vitest-report.json
rm -f "$report"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?

# One plain summary line, and a failure when anything was skipped: a skipped test here means a
# missing service or a forgotten `.only`/`.skip`, and must not pass silently.
node -e '
  const report = JSON.parse(require("node:fs").readFileSync(process.argv[1], "utf8"));
  const skipped = report.numPendingTests + report.numTodoTests;
  console.log(`tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`);
  if (skipped > 0) { console.error("error: skipped tests are not allowed in this run"); process.exit(1); }
' "$report" || status=1

exit "$status"
