import { v5 as uuidV5 } from 'uuid';

/**
 * Namespace of the reply ids (a fixed random UUID). Changing it changes every reply id, so a
 * redelivered message would get a reply with a new id: keep it stable.
 */
const REPLY_ID_NAMESPACE = '6f1d2c47-3a5e-4d9b-8c21-b7e4f0a9d352';

/**
 * Derives the reply's message_id from the tenant and the inbound message_id as a UUIDv5
 * (RFC 9562, SHA-1 name-based), so every processing of the same inbound message yields the
 * same reply id and two tenants' equal message ids yield different reply ids.
 */
export function deriveReplyMessageId(tenantId: string, inboundMessageId: string): string {
  return uuidV5(`${tenantId}\u0000${inboundMessageId}`, REPLY_ID_NAMESPACE);
}
