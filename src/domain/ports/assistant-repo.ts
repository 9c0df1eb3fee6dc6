import type { Assistant } from '../assistant.js';

export type AssistantLookup =
  | { status: 'found'; assistant: Assistant }
  | { status: 'unknown_tenant' }
  | { status: 'unknown_assistant' };

/**
 * Tenants' assistant configurations. Promises: a lookup only ever returns an assistant of the
 * tenant asked for. Leaves out: editing assistants; the configuration is read at start-up.
 */
export interface AssistantRepo {
  find(tenantId: string, assistantId: string): Promise<AssistantLookup>;

  /** Lists a tenant's assistants; an unknown tenant has none. */
  list(tenantId: string): Promise<Assistant[]>;
}
