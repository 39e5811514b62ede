/**
 * Checkpoints as versions of a Key Vault secret per incident (`incident-{id}-head`) in
 * Keyturn's vault: versions are append-only, and purge protection keeps even deleted
 * ones, so write access to Cosmos DB alone cannot rewrite what a checkpoint covers.
 * The value is the checkpoint's canonical JSON (ids and hashes, never secrets); the tag
 * `keyturn-incident-head` names the subject, so they can be found without Cosmos DB —
 * a soft-deleted one too (`listDeletedSecrets` keeps the tags; reading deleted secrets
 * needs `deletedSecrets/read`, which Keyturn holds through Key Vault Reader).
 */
import type { DeletedSecret, SecretClient } from '@azure/keyvault-secrets';
import { z } from 'zod';
import { lazySchema } from '../../domain/lazySchema';
import { type Checkpoint, canonicalJson } from '../../domain/incidentChain';
import { type DeletedCheckpoints, checkpointDeleted } from '../../domain/incidentLedger';
import { dependencyError, statusOf } from '../../errors';
import type { CheckpointStore } from '../../services/incidents/ports';

export const CHECKPOINT_TAG = 'keyturn-incident-head';
export const checkpointSecretName = (subject: string): string => `incident-${subject}-head`;

const checkpointSchema = lazySchema(() => z.object({
  incidentId: z.string(),
  seq: z.number().int().nonnegative(),
  hash: z.string(),
  state: z.string().optional(),
  at: z.string(),
  prevCheckpoint: z.string().nullable(),
}));

const parse = (value: string | undefined): Checkpoint => checkpointSchema.parse(JSON.parse(value ?? 'null'));

const orUndefined = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
  try {
    return await read();
  } catch (e) {
    if (statusOf(e) === 404) return undefined;
    throw e;
  }
};

const deletedOf = (vaultUrl: string, d: DeletedSecret): DeletedCheckpoints => ({
  vaultUrl,
  secretName: d.name,
  ...(d.recoveryId ? { recoveryId: d.recoveryId } : {}),
  ...(d.deletedOn ? { deletedOn: d.deletedOn.toISOString() } : {}),
  ...(d.scheduledPurgeDate ? { scheduledPurgeDate: d.scheduledPurgeDate.toISOString() } : {}),
});

/** Reading deleted secrets needs `deletedSecrets/read` (Key Vault Reader): a 403 is ACCESS_DENIED, which verify reports as not checked. */
const deletedRead = async <T>(read: () => Promise<T>): Promise<T> => {
  try {
    return await read();
  } catch (e) {
    if (statusOf(e) === 403) throw dependencyError('Key Vault refused reading deleted secrets (deletedSecrets/read: Key Vault Reader on the vault)', e);
    throw e;
  }
};

export function keyVaultCheckpointStore(client: () => SecretClient): CheckpointStore {
  return {
    async latest(subject) {
      const secret = await orUndefined(() => client().getSecret(checkpointSecretName(subject)));
      return secret ? parse(secret.value) : undefined;
    },
    async all(subject) {
      const name = checkpointSecretName(subject);
      const versions: string[] = [];
      const listed = await orUndefined(async () => {
        for await (const p of client().listPropertiesOfSecretVersions(name)) if (p.version) versions.push(p.version);
        return true;
      });
      if (!listed) return [];
      const values = await Promise.all(versions.map((version) => client().getSecret(name, { version })));
      return values.map((s) => parse(s.value));
    },
    async append(checkpoint) {
      const name = checkpointSecretName(checkpoint.incidentId);
      try {
        await client().setSecret(name, canonicalJson(checkpoint), { contentType: 'application/json', tags: { [CHECKPOINT_TAG]: checkpoint.incidentId } });
      } catch (e) {
        // A secret's 409 on set: it is soft-deleted ("deleted but recoverable"); its deletion facts when they can be read.
        if (statusOf(e) !== 409) throw e;
        const d = await orUndefined(() => client().getDeletedSecret(name)).catch(() => undefined);
        throw checkpointDeleted(checkpoint.incidentId, d ? deletedOf(client().vaultUrl, d) : { vaultUrl: client().vaultUrl, secretName: name });
      }
    },
    async subjects() {
      const out: string[] = [];
      for await (const p of client().listPropertiesOfSecrets()) {
        const subject = p.tags?.[CHECKPOINT_TAG];
        if (subject && p.name === checkpointSecretName(subject)) out.push(subject);
      }
      return out;
    },
    async deleted(subject) {
      const d = await deletedRead(() => orUndefined(() => client().getDeletedSecret(checkpointSecretName(subject))));
      return d ? deletedOf(client().vaultUrl, d) : undefined;
    },
    async deletedSubjects() {
      return deletedRead(async () => {
        const out: string[] = [];
        for await (const d of client().listDeletedSecrets()) {
          const subject = d.properties.tags?.[CHECKPOINT_TAG];
          if (subject && d.name === checkpointSecretName(subject)) out.push(subject);
        }
        return out;
      });
    },
  };
}
