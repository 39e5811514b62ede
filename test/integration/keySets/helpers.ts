/** Shared by the key-set integration tests: API calls and the stack's Cosmos DB through the real client. */
import { CosmosClient } from '@azure/cosmos';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { type TestStack, call } from '../../helpers/stack';

export function keySetApi(baseUrl: string) {
  const api = `${baseUrl}/api`;
  return {
    put: (path: string, body: unknown) => call('PUT', `${api}/${path}`, { body }),
    post: (path: string, body: unknown = {}) => call('POST', `${api}/${path}`, { body }),
    get: (path: string) => call('GET', `${api}/${path}`),
    del: (path: string) => call('DELETE', `${api}/${path}`),
  };
}

/** Runs `task` over `inputs` with at most `limit` in flight. */
export async function inParallel<T, R>(inputs: T[], limit: number, task: (input: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(inputs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < inputs.length) {
        const i = next++;
        out[i] = await task(inputs[i]!);
      }
    }),
  );
  return out;
}

export function cosmosOf(stack: TestStack) {
  const { KEYTURN_COSMOS_ENDPOINT: endpoint, KEYTURN_COSMOS_KEY: key, KEYTURN_COSMOS_CA_FILE: caFile } = stack.env;
  const client = new CosmosClient({ endpoint: endpoint!, key: key!, agent: new Agent({ ca: readFileSync(caFile!, 'utf8') }), connectionPolicy: { enableEndpointDiscovery: false } });
  const db = client.database(stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn');
  return {
    items: db.container('keySetItems'),
    sets: db.container('keySets'),
    jobs: db.container('batchJobs'),
    async itemsOf(setId: string): Promise<Record<string, any>[]> {
      return (await db.container('keySetItems').items.query({ query: 'SELECT * FROM c WHERE c.setId = @s', parameters: [{ name: '@s', value: setId }] }).fetchAll()).resources;
    },
  };
}
