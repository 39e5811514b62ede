/**
 * The checkpoint store's reading of Key Vault's refusals, with a stand-in SecretClient (the
 * local vault's RBAC cannot take Key Vault Reader away from Keyturn in one test stack; the
 * integration test runs the 409 for real): a set refused with 409 is CHECKPOINT_DELETED
 * naming the secret and the command, a 403 on deleted secrets is ACCESS_DENIED.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import { keyVaultCheckpointStore } from '../../../shared/adapters/incidents/keyVaultCheckpoints';

const restError = (statusCode: number) => Object.assign(new Error(`status ${statusCode}`), { name: 'RestError', statusCode });
const checkpoint = { incidentId: 'i1', seq: 4, hash: 'a'.repeat(64), state: 'contained', at: '2030-01-01T00:00:00.000Z', prevCheckpoint: null };

function client(overrides: Partial<Record<keyof SecretClient, unknown>>): () => SecretClient {
  const c = { vaultUrl: 'https://keyturn-prod.vault.azure.net', ...overrides } as unknown as SecretClient;
  return () => c;
}

test('a 409 on setSecret is CHECKPOINT_DELETED with the deleted secret’s recovery', async () => {
  const store = keyVaultCheckpointStore(client({
    setSecret: async () => { throw restError(409); },
    getDeletedSecret: async (name: string) => ({ name, recoveryId: `https://keyturn-prod.vault.azure.net/deletedsecrets/${name}`, scheduledPurgeDate: new Date('2030-04-01T00:00:00Z'), properties: {} }),
  }));
  const refused = await store.append(checkpoint).catch((e: unknown) => e);
  expect(refused).toMatchObject({
    code: 'CHECKPOINT_DELETED',
    details: { subject: 'i1', secretName: 'incident-i1-head', recovery: { recoveryId: 'https://keyturn-prod.vault.azure.net/deletedsecrets/incident-i1-head', scheduledPurgeDate: '2030-04-01T00:00:00.000Z' } },
  });
  expect((refused as Error).message).toContain('az keyvault secret recover --vault-name keyturn-prod --name incident-i1-head');
});

test('the 409 is still CHECKPOINT_DELETED when the deleted secret cannot be read (no Key Vault Reader)', async () => {
  const store = keyVaultCheckpointStore(client({ setSecret: async () => { throw restError(409); }, getDeletedSecret: async () => { throw restError(403); } }));
  await expect(store.append(checkpoint)).rejects.toMatchObject({ code: 'CHECKPOINT_DELETED', details: { secretName: 'incident-i1-head', recovery: { vaultUrl: 'https://keyturn-prod.vault.azure.net' } } });
});

test('other failures of setSecret are not read as a deletion', async () => {
  const store = keyVaultCheckpointStore(client({ setSecret: async () => { throw restError(503); } }));
  await expect(store.append(checkpoint)).rejects.toMatchObject({ statusCode: 503 });
});

test('a 403 reading or listing deleted secrets is ACCESS_DENIED (verify reports it as not checked)', async () => {
  const store = keyVaultCheckpointStore(client({
    getDeletedSecret: async () => { throw restError(403); },
    listDeletedSecrets: () => ({ [Symbol.asyncIterator]: () => ({ next: async () => { throw restError(403); } }) }),
  }));
  await expect(store.deleted('i1')).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
  await expect(store.deletedSubjects()).rejects.toMatchObject({ code: 'ACCESS_DENIED' });
});
