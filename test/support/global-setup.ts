import { createConnection } from 'node:net';

import { TEST_KAFKA_BROKERS, TEST_REDIS_URL } from './environment.js';

/**
 * Fails the whole run at once when Redis or the Kafka broker is not reachable, instead of
 * letting integration tests time out one by one or skip. Start them with `scripts/kafka.sh
 * start` and the Redis command in the README.
 */
export default async function checkServices(): Promise<void> {
  const redis = new URL(TEST_REDIS_URL);
  const missing: string[] = [];

  if (!(await canConnect(redis.hostname, Number(redis.port || 6379)))) {
    missing.push(`Redis at ${redis.host} (TEST_REDIS_URL)`);
  }
  const [kafkaHost, kafkaPort] = TEST_KAFKA_BROKERS[0]!.split(':');
  if (!(await canConnect(kafkaHost!, Number(kafkaPort)))) {
    missing.push(`Kafka at ${TEST_KAFKA_BROKERS[0]} (TEST_KAFKA_BROKER)`);
  }
  if (missing.length > 0) {
    throw new Error(
      `tests need these services and cannot reach them: ${missing.join(', ')}. ` +
        'Run the tests with scripts/test.sh, which starts Kafka, or start them by hand.',
    );
  }
}

function canConnect(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(false));
  });
}
