import { describe, expect, it } from 'vitest';

import { decodeMessageReceived, type InboundLimits } from '../../src/domain/decode-message-received.js';
import { receivedEvent } from '../support/fakes.js';

const LIMITS: InboundLimits = { maxEventBytes: 4096, maxTextLength: 100, maxMetaBytes: 64 };
const fixedId = () => 'generated-correlation-id';

function decode(value: unknown) {
  return decodeMessageReceived(typeof value === 'string' ? value : JSON.stringify(value), LIMITS, fixedId);
}

describe('decodeMessageReceived', () => {
  it('accepts a valid event', () => {
    const result = decode(receivedEvent({ correlationId: 'corr-1' }));

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.correlation_id).toBe('corr-1');
    expect(result.correlationIdGenerated).toBe(false);
  });

  it('generates a missing correlation_id', () => {
    const result = decode(receivedEvent({ correlationId: null }));

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.correlation_id).toBe('generated-correlation-id');
    expect(result.correlationIdGenerated).toBe(true);
  });

  it('normalises an offset timestamp to UTC', () => {
    const result = decode(receivedEvent({ timestamp: '2026-01-15T09:30:00-03:00' }));

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.timestamp).toBe('2026-01-15T12:30:00.000Z');
  });

  it.each(['1', '1.7', '1.10', '1.0.0'])('accepts version %s', (version) => {
    const result = decode({ ...receivedEvent(), version });

    expect(result.ok).toBe(true);
  });

  it('strips a leading byte order mark', () => {
    const result = decode(`\uFEFF${JSON.stringify(receivedEvent())}`);

    expect(result.ok).toBe(true);
  });

  it('rejects deeply nested meta without throwing', () => {
    const deepMeta = `${'{"nested":'.repeat(5000)}{}${'}'.repeat(5000)}`;
    const raw = JSON.stringify(receivedEvent({ meta: { placeholder: 1 } })).replace('{"placeholder":1}', deepMeta);

    const result = decodeMessageReceived(raw, { ...LIMITS, maxEventBytes: 1_000_000, maxMetaBytes: 1_000_000 }, fixedId);

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe('limit_exceeded');
    expect(result.detail).toContain('nested');
  });

  it.each([
    ['not JSON', '{"event_name": ', 'invalid_json'],
    ['a JSON array', '[1, 2]', 'schema_invalid'],
    ['major version 2', { ...receivedEvent(), version: '2.0' }, 'unsupported_version'],
    ['version "2"', { ...receivedEvent(), version: '2' }, 'unsupported_version'],
    ['version "2.0.0"', { ...receivedEvent(), version: '2.0.0' }, 'unsupported_version'],
    ['version "01.0"', { ...receivedEvent(), version: '01.0' }, 'schema_invalid'],
    ['version "1.x"', { ...receivedEvent(), version: '1.x' }, 'schema_invalid'],
    ['another event name', { ...receivedEvent(), event_name: 'conversation.closed' }, 'unsupported_event'],
    ['an empty tenant_id', { ...receivedEvent(), tenant_id: '' }, 'schema_invalid'],
    ['a timestamp without offset', { ...receivedEvent(), timestamp: '2026-01-15T12:00:00' }, 'schema_invalid'],
    ['blank text', receivedEvent({ text: '   ' }), 'schema_invalid'],
    ['text above the limit', receivedEvent({ text: 'x'.repeat(101) }), 'limit_exceeded'],
    ['meta above the limit', receivedEvent({ meta: { blob: 'y'.repeat(80) } }), 'limit_exceeded'],
    ['an event above the byte limit', receivedEvent({ meta: { blob: 'z'.repeat(5000) } }), 'limit_exceeded'],
  ])('rejects %s', (_case, value, reason) => {
    const result = decode(value);

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe(reason);
  });

  it('rejects invalid UTF-8 as invalid_json', () => {
    const result = decodeMessageReceived(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d]), LIMITS, fixedId);

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.reason).toBe('invalid_json');
  });

  it('lists every invalid field path', () => {
    const event = receivedEvent();
    const data = event['data'] as Record<string, unknown>;
    delete data['message_id'];
    data['channel'] = 'WhatsApp Business';

    const result = decode(event);

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues.map((issue) => issue.path).sort()).toEqual(['data.channel', 'data.message_id']);
  });

  it('keeps the ids it could read from a rejected event', () => {
    const result = decode({ ...receivedEvent({ tenantId: 'tenant-x', correlationId: 'corr-9' }), version: '9.0' });

    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.tenantId).toBe('tenant-x');
    expect(result.correlationId).toBe('corr-9');
  });
});
