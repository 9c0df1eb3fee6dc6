import { OfflineLlmClient } from '../../src/adapters/outbound/llm/offline-llm-client.js';
import { OpenAiLlmClient } from '../../src/adapters/outbound/llm/openai-llm-client.js';
import { startFakeOpenAiServer } from '../support/fake-openai-server.js';
import { CapturingLogger } from '../support/fakes.js';

import { describeLlmClientContract } from './llm-client.contract.js';

describeLlmClientContract('OfflineLlmClient', async () => ({
  client: new OfflineLlmClient(),
  close: async () => undefined,
}));

describeLlmClientContract('OpenAiLlmClient on the fake server', async () => {
  const server = await startFakeOpenAiServer();
  const client = new OpenAiLlmClient(
    {
      baseUrl: server.url,
      apiKey: 'sk-contract',
      model: 'gpt-contract',
      azureApiVersion: undefined,
      timeoutMs: 5000,
      maxRetries: 1,
      maxTokens: 128,
    },
    new CapturingLogger(),
  );
  return { client, close: () => server.close() };
});

describeLlmClientContract('OpenAiLlmClient on the fake server, Azure deployment API', async () => {
  const server = await startFakeOpenAiServer();
  const client = new OpenAiLlmClient(
    {
      baseUrl: server.origin,
      apiKey: 'azure-contract-key',
      model: 'contract-deployment',
      azureApiVersion: '2024-10-21',
      timeoutMs: 5000,
      maxRetries: 1,
      maxTokens: 128,
    },
    new CapturingLogger(),
  );
  return { client, close: () => server.close() };
});
