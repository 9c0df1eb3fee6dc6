/**
 * Child process for the "process dies during a handler" test: consumes with a KafkaEventBus
 * whose handler writes each delivered record to stdout as one JSON line and never resolves.
 * The test kills this process with SIGKILL. Settings come as JSON in KAFKA_EVENT_BUS_SETTINGS.
 */
import { KafkaEventBus, type KafkaEventBusSettings } from '../../src/adapters/outbound/event-bus/kafka-event-bus.js';
import { CapturingLogger } from '../support/fakes.js';

const settingsJson = process.env['KAFKA_EVENT_BUS_SETTINGS'];
if (settingsJson === undefined) {
  throw new Error('KAFKA_EVENT_BUS_SETTINGS is not set');
}
const settings = JSON.parse(settingsJson) as KafkaEventBusSettings;

const bus = new KafkaEventBus(settings, new CapturingLogger());
await bus.connect();
await bus.consume(async (record) => {
  process.stdout.write(
    `${JSON.stringify({ partition: record.partition, offset: record.offset, value: new TextDecoder().decode(record.value ?? new Uint8Array()) })}\n`,
  );
  await new Promise(() => {});
});
