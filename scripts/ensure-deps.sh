# Source this file (after node-env.sh) for the set-up steps shared by the test, demo and
# benchmark commands: npm dependencies, Redis, and the local Kafka broker.

# Installs the npm dependencies when they are missing or older than package-lock.json, with
# `npm ci` so the exact pinned versions are used.
ia_ensure_deps() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  if [ ! -f "$root/node_modules/.package-lock.json" ] ||
    [ "$root/package-lock.json" -nt "$root/node_modules/.package-lock.json" ]; then
    echo "installing npm dependencies (npm ci)" >&2
    (cd "$root" && npm ci --no-audit --no-fund) || return 1
  fi
}

# Redis on 127.0.0.1:6379: returns 0 when it responds, else starts a local redis-server with no
# persistence when one is installed. Returns 1 when neither works.
ia_ensure_redis() {
  if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
    return 0
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "error: Redis does not respond on 127.0.0.1:6379 and redis-server is not installed." >&2
    return 1
  fi
  echo "Redis does not respond on 127.0.0.1:6379; starting redis-server" >&2
  mkdir -p /tmp/ia-redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /tmp/ia-redis --logfile /tmp/ia-redis/redis.log >/dev/null || return 1
  for _ in $(seq 1 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: redis-server started but does not respond on 127.0.0.1:6379; see /tmp/ia-redis/redis.log" >&2
  return 1
}

# Starts the local Kafka broker (scripts/kafka.sh, port KAFKA_PORT, default 9092) unless it runs
# already, and stops it when the calling script exits if this function started it. Exports the
# broker address in the variable named by $1, unless that variable is set already.
ia_use_local_kafka() {
  local variable="$1"
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  export "$variable=${!variable:-127.0.0.1:${KAFKA_PORT:-9092}}"

  IA_STARTED_KAFKA=0
  if ! bash "$root/scripts/kafka.sh" status >/dev/null 2>&1; then
    bash "$root/scripts/kafka.sh" start || return 1
    IA_STARTED_KAFKA=1
  fi
  IA_KAFKA_SCRIPT="$root/scripts/kafka.sh"
  trap 'if [ "$IA_STARTED_KAFKA" = 1 ]; then bash "$IA_KAFKA_SCRIPT" stop || true; fi' EXIT
}
