import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';

export interface ServiceTopics {
  received: string;
  generated: string;
  deadLetter: string;
}

export interface ServiceRunOptions {
  /** Short id of this run; names the consumer group, the Redis key prefix and the log file. */
  runId: string;
  /** `demo` or `bench`: the first part of the log file name. */
  label: string;
  broker: string;
  topics: ServiceTopics;
  /** Undefined runs the service with in-memory stores. */
  redisUrl: string | undefined;
  /** Settings on top of the caller's environment, e.g. LLM_BASE_URL. */
  extraEnv?: Record<string, string>;
}

export interface RunningService {
  child: ChildProcess;
  logPath: string;
  port: number;
}

/**
 * Starts src/main/server.ts as its own process on its own topics, consumer group and Redis key
 * prefix, with its output in `.tools/<label>-<run id>.log`, and waits until /health/ready
 * returns 200 (60 s at most).
 */
export async function startServiceProcess(options: ServiceRunOptions): Promise<RunningService> {
  const port = await freePort();
  await mkdir('.tools', { recursive: true });
  const logPath = `.tools/${options.label}-${options.runId}.log`;
  const log = createWriteStream(logPath);
  const redisEnv =
    options.redisUrl === undefined
      ? { REDIS_URL: '' }
      : { REDIS_URL: options.redisUrl, REDIS_KEY_PREFIX: `${options.label}:${options.runId}:` };

  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
    env: {
      ...process.env,
      ENABLE_KAFKA: 'true',
      KAFKA_BROKER: options.broker,
      KAFKA_CLIENT_ID: `ia-conversational-${options.label}-${options.runId}`,
      KAFKA_CONSUMER_GROUP: `ia-conversational-${options.label}-${options.runId}`,
      KAFKA_MESSAGE_RECEIVED_TOPIC: options.topics.received,
      KAFKA_MESSAGE_GENERATED_TOPIC: options.topics.generated,
      KAFKA_DEAD_LETTER_TOPIC: options.topics.deadLetter,
      KAFKA_CREATE_TOPICS: 'true',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: String(port),
      ...redisEnv,
      ...options.extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.pipe(log);
  child.stderr!.pipe(log);

  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`the service exited with code ${child.exitCode} during start-up; see ${logPath}`);
    }
    if (await isReady(port)) {
      return { child, logPath, port };
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  child.kill('SIGKILL');
  throw new Error(`the service was not ready within 60 s; see ${logPath}`);
}

/** Sends SIGTERM and waits for the exit; SIGKILL after 20 s. */
export async function stopServiceProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}

async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health/ready`);
    return response.ok;
  } catch {
    return false;
  }
}

/** Returns a TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0));
    });
  });
}
