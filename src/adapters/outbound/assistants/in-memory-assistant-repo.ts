import { toAssistant, type Assistant, type AssistantsFile } from '../../../domain/assistant.js';
import type { AssistantLookup, AssistantRepo } from '../../../domain/ports/assistant-repo.js';

/** AssistantRepo over an assistants document already in memory (parsed file or test data). */
export class InMemoryAssistantRepo implements AssistantRepo {
  private readonly byTenant = new Map<string, Map<string, Assistant>>();

  constructor(file: AssistantsFile) {
    for (const tenant of file.tenants) {
      const assistants = this.byTenant.get(tenant.tenant_id) ?? new Map<string, Assistant>();
      for (const config of tenant.assistants) {
        assistants.set(config.id, toAssistant(tenant.tenant_id, config));
      }
      this.byTenant.set(tenant.tenant_id, assistants);
    }
  }

  async find(tenantId: string, assistantId: string): Promise<AssistantLookup> {
    const assistants = this.byTenant.get(tenantId);
    if (assistants === undefined) {
      return { status: 'unknown_tenant' };
    }
    const assistant = assistants.get(assistantId);
    return assistant === undefined ? { status: 'unknown_assistant' } : { status: 'found', assistant };
  }

  async list(tenantId: string): Promise<Assistant[]> {
    return [...(this.byTenant.get(tenantId)?.values() ?? [])];
  }

  tenantIds(): string[] {
    return [...this.byTenant.keys()];
  }
}
