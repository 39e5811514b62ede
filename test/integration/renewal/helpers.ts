/**
 * Helpers for the renewal integration tests: seeding managed secrets, reading state, and
 * scanning everything that leaves Key Vault (logs, Cosmos documents, HTTP bodies) for values.
 */
import { CosmosClient } from '@azure/cosmos';
import type { SecretClient } from '@azure/keyvault-secrets';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Agent } from 'node:https';
import { eventually } from '../../helpers/process';
import { type HttpResult, type TestStack, call as plainCall } from '../../helpers/stack';
import type { GraphStub } from '../../unit/renewal/graphStub';
import { existingPassword } from '../../unit/renewal/graphStub';

export const APP = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';
export const DAY_S = 86_400;

export async function seedSymmetric(stack: TestStack, name: string, days: number, tags: Record<string, string> = {}) {
  const now = await stack.keyVault.now();
  const secret = await stack.keyVault.secretClient().setSecret(name, randomBytes(32).toString('base64'), {
    tags: { 'keyturn-provider': 'symmetric', ...tags },
    expiresOn: new Date(now.getTime() + days * DAY_S * 1000),
  });
  return secret.properties;
}

export async function seedEntra(stack: TestStack, graph: GraphStub, name: string, days: number) {
  const old = existingPassword('before Keyturn');
  graph.addApp(APP, [old]);
  const now = await stack.keyVault.now();
  const secret = await stack.keyVault.secretClient().setSecret(name, old.secretText, {
    tags: { 'keyturn-provider': 'entra-app-password', 'keyturn-app-object-id': APP, 'keyturn-credential-id': old.keyId },
    expiresOn: new Date(now.getTime() + days * DAY_S * 1000),
  });
  return { props: secret.properties, old };
}

export async function versions(client: SecretClient, name: string) {
  const out = [];
  for await (const p of client.listPropertiesOfSecretVersions(name)) out.push(p);
  return out.sort((a, b) => (a.createdOn?.getTime() ?? 0) - (b.createdOn?.getTime() ?? 0));
}

/** Every value ever stored in the vault (all versions, enabled or not, pending siblings included). */
export async function allValues(stack: TestStack): Promise<string[]> {
  const client = stack.keyVault.secretClient();
  const values: string[] = [];
  for await (const s of client.listPropertiesOfSecrets()) {
    for (const v of await versions(client, s.name)) {
      if (!v.enabled) await client.updateSecretProperties(s.name, v.version!, { enabled: true });
      values.push((await client.getSecret(s.name, { version: v.version! })).value!);
      if (!v.enabled) await client.updateSecretProperties(s.name, v.version!, { enabled: false });
    }
  }
  return values;
}

/** Every HTTP body the tests of this file received from the app (scanned for values at the end). */
export const receivedBodies: string[] = [];

/** `call` that keeps the response body for `assertNoValueLeaked`. */
export async function call(...args: Parameters<typeof plainCall>): Promise<HttpResult> {
  const res = await plainCall(...args);
  receivedBodies.push(res.text);
  return res;
}

export interface CredentialRow {
  vault: string;
  name: string;
  currentVersion: string;
  stage: string;
  rotation: { id: string; state: string; attempt: number } | null;
}

export async function credentials(hostUrl: string): Promise<CredentialRow[]> {
  const res = await call('GET', `${hostUrl}/api/credentials`);
  if (res.status !== 200) throw new Error(`GET /api/credentials: ${res.status} ${res.text}`);
  return res.json<{ credentials: CredentialRow[] }>().credentials;
}

export async function waitForState(hostUrl: string, name: string, state: string, timeoutMs = 90_000): Promise<CredentialRow> {
  return eventually(
    async () => (await credentials(hostUrl)).find((c) => c.name === name && c.rotation?.state === state),
    `${name} in state ${state}`,
    timeoutMs,
    500,
  );
}

export function keyVaultEvent(stack: TestStack, name: string, version: string, kind = 'SecretNearExpiry', id = randomBytes(8).toString('hex')) {
  return {
    id,
    topic: stack.keyVault.topic,
    subject: name,
    eventType: `Microsoft.KeyVault.${kind}`,
    eventTime: new Date().toISOString(),
    data: {
      Id: `${stack.keyVault.url}/secrets/${name}/${version}`,
      VaultName: stack.keyVault.vaultName,
      ObjectType: 'Secret',
      ObjectName: name,
      Version: version,
      NBF: null,
      EXP: String(Math.floor(Date.now() / 1000)),
    },
    dataVersion: '1',
    metadataVersion: '1',
  };
}

/** Delivers events to a host's Event Grid webhook, as Event Grid does. */
export function deliver(hostUrl: string, events: unknown[]) {
  return call('POST', `${hostUrl}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, {
    body: events,
    headers: { 'aeg-event-type': 'Notification' },
  });
}

/** The stack's Cosmos DB through the real client, with the app's settings (endpoint, key, CA file). */
export function cosmos(stack: TestStack) {
  const { KEYTURN_COSMOS_ENDPOINT: endpoint, KEYTURN_COSMOS_KEY: key, KEYTURN_COSMOS_CA_FILE: caFile } = stack.env;
  if (!endpoint || !key || !caFile) throw new Error('the stack env lacks KEYTURN_COSMOS_ENDPOINT, _KEY or _CA_FILE');
  const client = new CosmosClient({
    endpoint,
    key,
    agent: new Agent({ ca: readFileSync(caFile, 'utf8') }),
    connectionPolicy: { enableEndpointDiscovery: false },
  });
  const db = client.database(stack.env.KEYTURN_COSMOS_DATABASE ?? 'keyturn');
  const all = async <T>(container: string) =>
    (await db.container(container).items.query<T>('SELECT * FROM c').fetchAll()).resources;
  return { rotations: () => all<Record<string, any>>('rotations'), deadLetters: () => all<Record<string, any>>('deadLetters') };
}

/**
 * No generated or seeded value appears anywhere outside Key Vault and Graph: not in any
 * line printed by the stack or the hosts, not in any Cosmos DB document of the
 * `rotations` and `deadLetters` containers, not in any HTTP body the tests received.
 */
export async function assertNoValueLeaked(stack: TestStack, graph?: GraphStub) {
  const values = [...(await allValues(stack)), ...(graph?.issuedSecrets() ?? [])];
  const db = cosmos(stack);
  const [rotations, deadLetters] = await Promise.all([db.rotations(), db.deadLetters()]);
  const places: [string, string][] = [
    ['logs', stack.allLogs().join('\n')],
    ['rotations', JSON.stringify(rotations)],
    ['deadLetters', JSON.stringify(deadLetters)],
    ['HTTP bodies', receivedBodies.join('\n')],
  ];
  expect(values.length).toBeGreaterThan(0);
  expect(rotations.length).toBeGreaterThan(0); // the scan saw real documents
  for (const v of values) for (const [where, text] of places) expect([where, text.includes(v)]).toEqual([where, false]);
}
