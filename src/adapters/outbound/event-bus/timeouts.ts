import type { Logger } from '../../../domain/ports/logger.js';

class TimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/** Settles like `work`, or rejects with a TimeoutError once `timeoutMs` passed first. */
export function withTimeout<T>(work: Promise<T>, timeoutMs: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(timeoutMs)), timeoutMs);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Waits up to `timeoutMs` for every promise to settle. Returns true when all of them did, and
 * otherwise logs that it gave up waiting for `description` and returns false.
 */
export async function settleWithin(
  promises: Array<Promise<unknown>>,
  timeoutMs: number,
  description: string,
  logger: Logger,
): Promise<boolean> {
  if (promises.length === 0) {
    return true;
  }
  try {
    await withTimeout(Promise.allSettled(promises), timeoutMs);
    return true;
  } catch {
    logger.warn(`gave up waiting for ${description}`, { count: promises.length, timeout_ms: timeoutMs });
    return false;
  }
}
