#!/usr/bin/env bash
# Fetch Apache Kafka broker jars from Maven Central and run a single-node KRaft broker
# (combined broker and controller) on 127.0.0.1 for development and tests.
#
# Usage: scripts/kafka.sh COMMAND [ARGS]
#   fetch                        copy the broker jars into .tools/kafka-<version>/libs (mvn)
#   start                        fetch, format the storage once, start the broker, wait until ready
#   stop                         stop the broker started from KAFKA_DATA_DIR
#   status                       exit 0 when that broker runs and responds to an admin request
#   create-topics NAME[:N]...    create topics with N partitions (default num.partitions, 3)
#                                and replication factor 1, leaving existing topics unchanged
#
# Environment:
#   KAFKA_PORT              PLAINTEXT listener port on 127.0.0.1 (default 9092)
#   KAFKA_CONTROLLER_PORT   KRaft controller listener port on 127.0.0.1 (default 9093)
#   KAFKA_DATA_DIR          log dirs, server.properties, broker logs and pid file
#                           (default <repo>/.tools/kafka-data). Delete it to start from scratch
#   KAFKA_HEAP_OPTS         broker JVM heap options (default "-Xms256m -Xmx512m")
#   KAFKA_START_TIMEOUT     seconds that start waits for the broker to respond (default 60)
#   KAFKA_STOP_TIMEOUT      seconds that stop waits after SIGTERM before SIGKILL (default 30)
#   JAVA_HOME               Java 17 or newer to run Kafka (default: java on PATH)
#
# Progress goes to stderr, one short line per step.
set -euo pipefail

# Keep equal to <kafka.version> in scripts/kafka/pom.xml.
KAFKA_VERSION="4.4.0"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
CONFIG_DIR="$ROOT/scripts/kafka"
INSTALL_DIR="$ROOT/.tools/kafka-$KAFKA_VERSION"
LIBS_DIR="$INSTALL_DIR/libs"
FETCH_MARKER="$INSTALL_DIR/fetch-complete"

KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$ROOT/.tools/kafka-data}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-60}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"

JAVA="${JAVA_HOME:+$JAVA_HOME/bin/}java"
# Fast start-up for short-lived tool JVMs: C1 only, serial GC, small heap.
TOOL_JVM_OPTS=(-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Xmx256m
  "-Dlog4j2.configurationFile=$CONFIG_DIR/tools-log4j2.properties")
TOOL_CLIENT_CONFIG="$CONFIG_DIR/tools-client.properties"

log() { echo "kafka.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2
}

now_ms() { date +%s%3N; }

check_port_number() {
  local name="$1" value="$2"
  if ! [[ "$value" =~ ^[0-9]+$ ]] || ((10#$value < 1 || 10#$value > 65535)); then
    die "$name must be a TCP port number from 1 to 65535, got '$value'"
  fi
}

check_positive_integer() {
  local name="$1" value="$2"
  [[ "$value" =~ ^[1-9][0-9]*$ ]] || die "$name must be a positive integer, got '$value'"
}

# Resolve the data directory to an absolute path without creating it: the path goes into
# server.properties and into the broker's command line, which is how this script recognises
# its own broker process.
resolve_data_dir() {
  KAFKA_DATA_DIR="$(realpath -m "$KAFKA_DATA_DIR")"
  SERVER_PROPERTIES="$KAFKA_DATA_DIR/server.properties"
  LOG_DIRS="$KAFKA_DATA_DIR/kraft-logs"
  BROKER_LOG_DIR="$KAFKA_DATA_DIR/logs"
  SERVER_LOG="$BROKER_LOG_DIR/server.log"
  BROKER_STDOUT="$BROKER_LOG_DIR/broker.out"
  PID_FILE="$KAFKA_DATA_DIR/broker.pid"
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (tried '$JAVA'). Install Java 17 or newer, or set JAVA_HOME"
  local major
  major="$("$JAVA" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')"
  [[ "$major" =~ ^[0-9]+$ ]] || die "could not read the Java version from '$JAVA -XshowSettings:properties -version'"
  ((major >= 17)) || die "Kafka $KAFKA_VERSION needs Java 17 or newer, but '$JAVA' is Java $major. Set JAVA_HOME to a newer Java"
}

# Return 0 when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# The fetch marker contains the Kafka version and a hash of the pom, so editing the pom refetches.
fetch_stamp() {
  echo "kafka.version=$KAFKA_VERSION pom.sha256=$(sha256sum "$POM" | cut -d' ' -f1)"
}

fetch_is_complete() {
  [[ -f "$FETCH_MARKER" && -f "$LIBS_DIR/kafka_2.13-$KAFKA_VERSION.jar" ]] &&
    [[ "$(cat "$FETCH_MARKER")" == "$(fetch_stamp)" ]]
}

cmd_fetch() {
  if fetch_is_complete; then
    log "Kafka $KAFKA_VERSION jars already in $LIBS_DIR"
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || die "mvn not found. Install Maven 3.6.3 or newer to fetch the Kafka jars"

  # Replacing jars under a running broker would break it.
  resolve_data_dir
  if broker_pid >/dev/null; then
    die "the broker from $KAFKA_DATA_DIR is running with the jars in $LIBS_DIR. Run 'scripts/kafka.sh stop' before fetching again"
  fi

  local partial="$INSTALL_DIR/libs.partial" started
  started="$(now_ms)"
  log "fetching Kafka $KAFKA_VERSION jars with mvn into $LIBS_DIR"
  rm -f "$FETCH_MARKER"
  rm -rf "$partial"
  mkdir -p "$INSTALL_DIR"
  # Debian's Maven 3.8.7 prints ANSI reset codes even with -q -B, so sed strips them.
  if ! mvn -q -B -f "$POM" "-Dkafka.version=$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$partial" 2>&1 |
    sed -e 's/\x1b\[[0-9;]*m//g' >&2; then
    die "mvn failed to copy the Kafka $KAFKA_VERSION jars, see the Maven output above"
  fi
  [[ -f "$partial/kafka_2.13-$KAFKA_VERSION.jar" ]] ||
    die "mvn finished, but kafka_2.13-$KAFKA_VERSION.jar is missing from $partial. Check the dependencies in $POM"

  rm -rf "$LIBS_DIR"
  mv "$partial" "$LIBS_DIR"
  fetch_stamp >"$FETCH_MARKER"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS_DIR" | cut -f1)) in $(($(now_ms) - started)) ms"
}

# Print the pid of the broker started from KAFKA_DATA_DIR and return 0, or return 1 when it is
# not running. A pid file whose process is gone or is another program is deleted.
broker_pid() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid cmdline
  pid="$(cat "$PID_FILE")"
  if [[ "$pid" =~ ^[0-9]+$ ]] && [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
    if [[ "$cmdline" == *" kafka.Kafka $SERVER_PROPERTIES"* ]]; then
      echo "$pid"
      return 0
    fi
  fi
  rm -f "$PID_FILE"
  return 1
}

# Read one property from a Java properties file written by this script or by Kafka.
read_property() {
  local file="$1" key="$2"
  sed -n "s/^${key//./\\.}=//p" "$file" 2>/dev/null | tail -n 1
}

cluster_id() {
  read_property "$LOG_DIRS/meta.properties" cluster.id
}

run_tool() {
  "$JAVA" "${TOOL_JVM_OPTS[@]}" -cp "$LIBS_DIR/*" "$@"
}

# Return 0 when the broker on KAFKA_PORT returns the cluster id stored in KAFKA_DATA_DIR to an
# admin request, which means that it is the broker formatted there.
broker_responds() {
  local expected actual
  expected="$(cluster_id)"
  [[ -n "$expected" ]] || return 1
  actual="$(run_tool org.apache.kafka.tools.ClusterTool cluster-id \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --command-config "$TOOL_CLIENT_CONFIG" 2>/dev/null |
    sed -n 's/^Cluster ID: //p')" || return 1
  [[ "$actual" == "$expected" ]]
}

write_server_properties() {
  cat >"$SERVER_PROPERTIES" <<EOF
# scripts/kafka.sh rewrites this file on every start, so edits here are lost.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$LOG_DIRS

# One node, so every internal topic has a single replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

num.partitions=3
# The project creates its topics itself (scripts/kafka.sh create-topics or the admin client).
auto.create.topics.enable=false
# Consumer groups get their first assignment without the default 3 s wait for more members.
group.initial.rebalance.delay.ms=0
EOF
}

# Format the log dirs once, as a standalone KRaft controller with a random cluster id. A data dir
# keeps its controller port from the first format, because the KRaft voter set records it.
format_storage() {
  if [[ -f "$LOG_DIRS/meta.properties" ]]; then
    local formatted_port
    formatted_port="$(read_property "$KAFKA_DATA_DIR/formatted.properties" controller.port)"
    if [[ -n "$formatted_port" && "$formatted_port" != "$KAFKA_CONTROLLER_PORT" ]]; then
      die "$KAFKA_DATA_DIR was formatted with KAFKA_CONTROLLER_PORT=$formatted_port, not $KAFKA_CONTROLLER_PORT. Use that port or another KAFKA_DATA_DIR, or delete $KAFKA_DATA_DIR"
    fi
    log "using storage in $LOG_DIRS (cluster id $(cluster_id))"
    return 0
  fi

  local id format_log="$BROKER_LOG_DIR/format.log"
  id="$(run_tool kafka.tools.StorageTool random-uuid)" || die "kafka.tools.StorageTool random-uuid failed"
  log "formatting $LOG_DIRS as a standalone KRaft controller (cluster id $id)"
  rm -rf "$LOG_DIRS"
  if ! run_tool kafka.tools.StorageTool format --cluster-id "$id" --config "$SERVER_PROPERTIES" \
    --standalone >"$format_log" 2>&1; then
    cat "$format_log" >&2
    die "formatting $LOG_DIRS failed, see the kafka.tools.StorageTool output above"
  fi
  echo "controller.port=$KAFKA_CONTROLLER_PORT" >"$KAFKA_DATA_DIR/formatted.properties"
}

# Print the end of the broker logs, from byte SERVER_LOG_OFFSET of server.log on, so that lines
# of an earlier run are left out.
print_broker_logs() {
  local server_log_offset="$1" new_lines
  new_lines="$(tail -c "+$((server_log_offset + 1))" "$SERVER_LOG" 2>/dev/null | tail -n 30)"
  if [[ -n "$new_lines" ]]; then
    log "last lines that this start wrote to $SERVER_LOG:"
    echo "$new_lines" >&2
  else
    log "this start wrote nothing to $SERVER_LOG"
  fi
  if [[ -s "$BROKER_STDOUT" ]]; then
    log "last lines of $BROKER_STDOUT (JVM output):"
    tail -n 20 "$BROKER_STDOUT" >&2
  fi
}

# Send SIGTERM, wait up to KAFKA_STOP_TIMEOUT seconds, then send SIGKILL.
terminate_broker() {
  local pid="$1" deadline
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$(($(now_ms) + KAFKA_STOP_TIMEOUT * 1000))
  while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "broker (pid $pid) still running ${KAFKA_STOP_TIMEOUT} s after SIGTERM, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    deadline=$(($(now_ms) + 10000))
    while kill -0 "$pid" 2>/dev/null && (($(now_ms) < deadline)); do
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      die "broker (pid $pid) still running 10 s after SIGKILL, so $PID_FILE is kept"
    fi
  fi
  rm -f "$PID_FILE"
}

server_log_shows_start() {
  local log_offset="$1"
  # grep without -q reads all its input, so tail gets no SIGPIPE under pipefail.
  tail -c "+$((log_offset + 1))" "$SERVER_LOG" 2>/dev/null | grep -F 'Kafka Server started' >/dev/null
}

# Wait up to KAFKA_START_TIMEOUT seconds until the broker is ready. Ready means that server.log
# contains the start-up line after byte LOG_OFFSET (not checked when LOG_OFFSET is empty), the port
# accepts connections, and an admin request returns this data dir's cluster id. Return 1 on
# timeout, and exit when the broker process exits.
wait_for_broker() {
  local pid="$1" log_offset="$2" deadline
  deadline=$(($(now_ms) + KAFKA_START_TIMEOUT * 1000))
  while (($(now_ms) < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      print_broker_logs "${log_offset:-0}"
      die "the broker exited during start-up, see its logs above"
    fi
    if { [[ -z "$log_offset" ]] || server_log_shows_start "$log_offset"; } &&
      port_open "$KAFKA_PORT" && broker_responds; then
      return 0
    fi
    sleep 0.5
  done
  return 1
}

cmd_start() {
  check_port_number KAFKA_PORT "$KAFKA_PORT"
  check_port_number KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
  check_positive_integer KAFKA_START_TIMEOUT "$KAFKA_START_TIMEOUT"
  check_positive_integer KAFKA_STOP_TIMEOUT "$KAFKA_STOP_TIMEOUT"
  [[ "$KAFKA_PORT" != "$KAFKA_CONTROLLER_PORT" ]] || die "KAFKA_PORT and KAFKA_CONTROLLER_PORT must differ, both are $KAFKA_PORT"
  check_java
  resolve_data_dir

  local pid running_port
  if pid="$(broker_pid)"; then
    running_port="$(read_property "$SERVER_PROPERTIES" listeners | sed -n 's/^PLAINTEXT:\/\/127\.0\.0\.1:\([0-9]*\),.*/\1/p')"
    if [[ "$running_port" == "$KAFKA_PORT" ]]; then
      # Another start may still be waiting for this broker, so wait until it responds too. Its
      # start-up line may have rolled out of server.log, so that check is skipped.
      if wait_for_broker "$pid" ""; then
        log "broker already running on 127.0.0.1:$KAFKA_PORT (pid $pid, data dir $KAFKA_DATA_DIR)"
        return 0
      fi
      print_broker_logs 0
      die "the broker from $KAFKA_DATA_DIR (pid $pid) runs, but did not respond on 127.0.0.1:$KAFKA_PORT within ${KAFKA_START_TIMEOUT} s. Its logs are above. Run 'scripts/kafka.sh stop' and start again"
    fi
    die "the broker from $KAFKA_DATA_DIR is already running on port $running_port (pid $pid). Run 'scripts/kafka.sh stop' first, or use another KAFKA_DATA_DIR"
  fi
  port_open "$KAFKA_PORT" && die "port $KAFKA_PORT on 127.0.0.1 is in use by another process. Stop that process or set KAFKA_PORT"
  port_open "$KAFKA_CONTROLLER_PORT" && die "port $KAFKA_CONTROLLER_PORT on 127.0.0.1 is in use by another process. Stop that process or set KAFKA_CONTROLLER_PORT"

  cmd_fetch
  mkdir -p "$BROKER_LOG_DIR"
  write_server_properties
  format_storage

  # Only log lines written after this offset belong to the new broker process.
  local log_offset=0 started
  [[ -f "$SERVER_LOG" ]] && log_offset="$(stat -c %s "$SERVER_LOG")"
  started="$(now_ms)"
  log "starting Kafka $KAFKA_VERSION broker on 127.0.0.1:$KAFKA_PORT (controller port $KAFKA_CONTROLLER_PORT, log $SERVER_LOG)"
  # shellcheck disable=SC2086 # KAFKA_HEAP_OPTS holds several JVM options.
  nohup "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError \
    -Djava.awt.headless=true "-Dkafka.logs.dir=$BROKER_LOG_DIR" \
    "-Dlog4j2.configurationFile=$CONFIG_DIR/log4j2.properties" \
    -cp "$LIBS_DIR/*" kafka.Kafka "$SERVER_PROPERTIES" >"$BROKER_STDOUT" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"

  if wait_for_broker "$pid" "$log_offset"; then
    log "broker ready on 127.0.0.1:$KAFKA_PORT after $(($(now_ms) - started)) ms (pid $pid, cluster id $(cluster_id))"
    return 0
  fi

  print_broker_logs "$log_offset"
  log "stopping the broker (pid $pid) that did not become ready"
  terminate_broker "$pid"
  die "timed out after ${KAFKA_START_TIMEOUT} s waiting for the broker on 127.0.0.1:$KAFKA_PORT, see its logs above"
}

cmd_stop() {
  check_positive_integer KAFKA_STOP_TIMEOUT "$KAFKA_STOP_TIMEOUT"
  resolve_data_dir
  local pid started
  if ! pid="$(broker_pid)"; then
    log "no broker from $KAFKA_DATA_DIR is running"
    return 0
  fi
  started="$(now_ms)"
  log "stopping the broker (pid $pid)"
  terminate_broker "$pid"
  log "broker stopped in $(($(now_ms) - started)) ms"
}

cmd_status() {
  check_port_number KAFKA_PORT "$KAFKA_PORT"
  resolve_data_dir
  local pid
  if ! pid="$(broker_pid)"; then
    log "not running: no broker from $KAFKA_DATA_DIR"
    return 1
  fi
  fetch_is_complete || die "the broker (pid $pid) runs, but the jars in $LIBS_DIR are incomplete, so no admin request can be sent"
  if ! broker_responds; then
    log "not responding: the broker (pid $pid) runs, but 127.0.0.1:$KAFKA_PORT did not return cluster id $(cluster_id)"
    return 1
  fi
  log "running on 127.0.0.1:$KAFKA_PORT (pid $pid, cluster id $(cluster_id), data dir $KAFKA_DATA_DIR)"
}

cmd_create_topics() {
  (($# > 0)) || die "create-topics needs at least one topic, as NAME or NAME:PARTITIONS"
  check_port_number KAFKA_PORT "$KAFKA_PORT"

  # Check every argument before creating anything.
  local spec name partitions
  for spec in "$@"; do
    name="${spec%%:*}"
    if ! [[ "$name" =~ ^[A-Za-z0-9._-]{1,249}$ ]] || [[ "$name" == "." || "$name" == ".." ]]; then
      die "invalid topic name '$name'. Use 1 to 249 characters from A-Z, a-z, 0-9, '.', '_' and '-', other than '.' and '..'"
    fi
    if [[ "$spec" == *:* ]]; then
      check_positive_integer "the partition count of topic $name" "${spec#*:}"
    fi
  done

  check_java
  fetch_is_complete || die "the Kafka jars are missing from $LIBS_DIR. Run 'scripts/kafka.sh fetch' or 'scripts/kafka.sh start'"
  port_open "$KAFKA_PORT" || die "no broker accepts connections on 127.0.0.1:$KAFKA_PORT. Run 'scripts/kafka.sh start'"

  local -a partition_args
  for spec in "$@"; do
    name="${spec%%:*}"
    partition_args=()
    partitions="broker default"
    if [[ "$spec" == *:* ]]; then
      partitions="${spec#*:}"
      partition_args=(--partitions "$partitions")
    fi
    log "creating topic $name (partitions: $partitions, replication factor: 1) unless it exists"
    # NOTE: --if-not-exists leaves an existing topic as it is, even when its partition count differs.
    run_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "127.0.0.1:$KAFKA_PORT" \
      --command-config "$TOOL_CLIENT_CONFIG" --create --if-not-exists --topic "$name" \
      "${partition_args[@]}" --replication-factor 1 >&2 ||
      die "creating topic $name failed, see the TopicCommand output above"
  done
}

main() {
  local command="${1:-}"
  (($# > 0)) && shift
  case "$command" in
    fetch) cmd_fetch ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    create-topics) cmd_create_topics "$@" ;;
    -h | --help | help) usage ;;
    "")
      usage
      exit 2
      ;;
    *)
      log "error: unknown command '$command'"
      usage
      exit 2
      ;;
  esac
}

main "$@"
