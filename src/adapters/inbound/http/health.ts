import { describeError } from '../../../domain/errors.js';
import type { ComponentHealth } from '../../../domain/ports/event-bus.js';
import type { Logger } from '../../../domain/ports/logger.js';

/** State of the service and of each component it depends on (event bus, Redis). */
export interface HealthReport {
  live: boolean;
  /** True when every component is ok, so the service can take traffic. */
  ready: boolean;
  components: Record<string, ComponentHealth>;
}

/** Checks every component; the composition root builds it from the adapters in use. */
export type HealthCheck = () => Promise<HealthReport>;

/** Body of `GET /health/live`: the process serves HTTP, whatever the state of its components. */
export const LIVENESS_BODY = { status: 'ok' } as const;

/** Body of `GET /health/ready` and of the `health.ready` query. */
export interface ReadinessBody {
  status: 'ok' | 'unavailable';
  components: Record<string, ComponentHealth>;
  /** Reason the check itself failed or timed out; absent when the check ran. */
  detail?: string;
}

/** Time a readiness check may take before it counts as failed, in milliseconds. */
export const DEFAULT_READINESS_TIMEOUT_MS = 5000;

/**
 * Runs the health check with a time limit. Never throws: a check that fails or times out
 * reports the service as unavailable, so a probe gets a response instead of hanging.
 */
export async function checkReadiness(
  health: HealthCheck,
  logger: Logger,
  timeoutMs = DEFAULT_READINESS_TIMEOUT_MS,
): Promise<ReadinessBody> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<'timed_out'>((resolve) => {
    timer = setTimeout(() => resolve('timed_out'), timeoutMs);
  });

  try {
    const report = await Promise.race([health(), timeout]);
    if (report === 'timed_out') {
      logger.warn('health check timed out', { timeout_ms: timeoutMs });
      return { status: 'unavailable', components: {}, detail: `health check timed out after ${timeoutMs} ms` };
    }
    return { status: report.ready ? 'ok' : 'unavailable', components: report.components };
  } catch (error) {
    logger.error('health check failed', { error: describeError(error) });
    return { status: 'unavailable', components: {}, detail: 'health check failed' };
  } finally {
    clearTimeout(timer);
  }
}
