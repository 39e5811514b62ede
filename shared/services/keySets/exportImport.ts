/**
 * Export and import: the backup that saves a set whose KEK is lost. An export needs a
 * second identity's approval naming the recipient key's SHA-256 (dual control); then
 * every data key is encrypted to the recipient (RSA-OAEP, SHA-256) into a file in Blob
 * storage. An import takes each data key re-encrypted by the recipient to the set's
 * current KEK (published at GET …/kek), so data keys never travel in the clear.
 */
import { constants, createHash, createPublicKey, publicEncrypt, randomUUID } from 'node:crypto';
import { approvalRefusal } from '../../domain/dualControl';
import { EXPORT_CONTAINER, type KeySetExport, exportView, parseCiphertext } from '../../domain/keySet';
import { open } from '../../domain/keySetCipher';
import { parseRecipientKey } from '../../domain/recipientKey';
import { ConcurrencyConflict, KeyturnError, ValidationError, isKeyturnError, notFound } from '../../errors';
import type { Clock, Logger, VaultKeys } from '../../ports';
import { WRAP_ALG } from './dataKeys';
import type { KeySetService } from './keySetService';
import type { ExportFiles, KeySetStore } from './ports';

export interface ExportDeps {
  store: KeySetStore;
  keys: VaultKeys;
  clock: Clock;
  files: ExportFiles;
  service(log: Logger): KeySetService;
  minWaitMs: number;
}

export async function requestExport(deps: ExportDeps, log: Logger, setId: string, input: { recipientPublicKey: string; reason: string; requestedBy: string }) {
  await deps.service(log).readSet(setId);
  const recipient = parseRecipientKey(input.recipientPublicKey, 'recipientPublicKey');
  const exportId = randomUUID();
  const now = (await deps.clock.now()).toISOString();
  const doc: KeySetExport = {
    id: `export:${exportId}`, setId, exportId, state: 'awaiting-approval', reason: input.reason, requestedBy: input.requestedBy, requestedAt: now,
    recipientPublicKey: input.recipientPublicKey.trim(), recipientSha256: recipient.sha256,
  };
  await deps.store.createExport(doc);
  log.info('Key set export requested; awaiting a second approver', { setId, exportId, requestedBy: input.requestedBy, recipientSha256: recipient.sha256 });
  return exportView(doc);
}

export async function approveExport(deps: ExportDeps, log: Logger, setId: string, exportId: string, input: { publicKeySha256: string; approvedBy: string }) {
  const service = deps.service(log);
  const stored = await deps.store.readExport(setId, exportId);
  if (!stored) throw notFound(`Export '${exportId}' of key set '${setId}'`, { setId, exportId });
  if (stored.doc.state !== 'awaiting-approval') throw new KeyturnError('EXPORT_STATE', `Export '${exportId}' is ${stored.doc.state}`, { exportId, state: stored.doc.state });
  const now = await deps.clock.now();
  const refusal = approvalRefusal(
    { requestedBy: stored.doc.requestedBy, requestedAt: stored.doc.requestedAt, digest: stored.doc.recipientSha256 },
    { approvedBy: input.approvedBy, digest: input.publicKeySha256 },
    now,
    { minWaitMs: deps.minWaitMs },
  );
  if (refusal) {
    // The approval's digest arrives as publicKeySha256: name that field.
    if (refusal.code === 'APPROVAL_DIGEST_MISMATCH') throw new KeyturnError(refusal.code, refusal.message, { field: 'publicKeySha256' });
    throw refusal;
  }
  // The approval first (ETag): two approvals write one file.
  const approved = await deps.store.replaceExport({ ...stored.doc, approvedBy: input.approvedBy, approvedAt: now.toISOString() }, stored.etag).catch((e: unknown) => {
    if (e instanceof ConcurrencyConflict) throw new KeyturnError('EXPORT_STATE', `Export '${exportId}' is being approved by another request`, { exportId });
    throw e;
  });
  const recipient = createPublicKey({ key: stored.doc.recipientPublicKey, format: 'pem' });
  const cached = await service.current(setId, true);
  const set = cached.set.doc;
  const keys = [...cached.keys.values()].sort((a, b) => Number(a.keyId.slice(1)) - Number(b.keyId.slice(1)));
  const entries = [];
  for (const key of keys) {
    const plain = await service.dataKey(cached, key.keyId);
    const encrypted = publicEncrypt({ key: recipient, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, plain);
    entries.push({ keyId: key.keyId, state: set.primaryKeyId === key.keyId ? 'primary' : key.state, generation: key.generation, encryptedKey: encrypted.toString('base64') });
  }
  const file = {
    format: 'keyturn-keyset-export-v1',
    setId,
    setUid: set.uid,
    generation: set.generation,
    exportId,
    createdAt: now.toISOString(),
    recipientSha256: stored.doc.recipientSha256,
    algorithm: 'RSA-OAEP with SHA-256 (MGF1 SHA-256) to the recipient key; each data key is 32 bytes (AES-256-GCM)',
    keys: entries,
    manifest: entries.map((e) => ({ keyId: e.keyId, sha256: createHash('sha256').update(Buffer.from(e.encryptedKey, 'base64')).digest('hex') })),
  };
  const content = Buffer.from(JSON.stringify(file, null, 2), 'utf8');
  const checksum = createHash('sha256').update(content).digest('hex');
  const blobName = `${setId}/${now.toISOString().replace(/[:.]/g, '-')}-${exportId.slice(0, 8)}`;
  await deps.files.write(EXPORT_CONTAINER, blobName, content);
  const completed = await deps.store.replaceExport({ ...approved.doc, state: 'completed', blobName, checksum, keysVersion: set.keysVersion }, approved.etag);
  await markExported(deps, setId, set.keysVersion);
  log.info('Key set exported', { setId, exportId, blobName, checksum, keys: entries.length, approvedBy: input.approvedBy });
  return { ...exportView(completed.doc), blobName: `${EXPORT_CONTAINER}/${blobName}` };
}

async function markExported(deps: ExportDeps, setId: string, keysVersion: number): Promise<void> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const stored = await deps.store.readSet(setId);
    if (!stored || (stored.doc.exportedKeysVersion ?? -1) >= keysVersion) return;
    try {
      await deps.store.replaceSet({ ...stored.doc, exportedKeysVersion: keysVersion }, stored.etag);
      return;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
}

export async function importKeys(deps: ExportDeps, log: Logger, setId: string, input: { keys: { keyId: string; wrapped: string }[] }) {
  const service = deps.service(log);
  const { doc: set } = await service.readSet(setId);
  const kek = { vaultUrl: set.kek.vaultUrl, name: set.kek.name, version: set.kek.version };
  const staged = [];
  for (const [i, entry] of input.keys.entries()) {
    const field = `keys.${i}.wrapped`;
    const stored = await deps.store.readKey(setId, entry.keyId);
    if (!stored) throw new KeyturnError('IMPORT_INVALID', `Key set '${setId}' has no key '${entry.keyId}'`, { field: `keys.${i}.keyId` });
    const wrapped = Buffer.from(entry.wrapped.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
    let plain: Uint8Array;
    try {
      plain = await deps.keys.unwrap(kek, WRAP_ALG, wrapped);
    } catch (e) {
      if (isKeyturnError(e) && (e.details.statusCode === 400 || e.code === 'CONFLICT')) throw new KeyturnError('IMPORT_INVALID', `${field}: the set's current KEK cannot unwrap it (RSA-OAEP-256 to GET …/kek)`, { field });
      throw e;
    }
    if (plain.length !== 32) throw new KeyturnError('IMPORT_INVALID', `${field}: not a 32-byte data key`, { field });
    // The key must open the set's own items: a wrong key is refused, not stored as good.
    const sample = await deps.store.oneItemOnKey(setId, entry.keyId);
    if (sample?.doc.ciphertext) {
      try {
        open(plain, { setUid: set.uid, itemId: sample.doc.id }, parseCiphertext(sample.doc.ciphertext));
      } catch {
        throw new KeyturnError('IMPORT_INVALID', `${field}: that key does not open the set's items sealed under '${entry.keyId}'`, { field });
      }
    }
    staged.push({ stored, wrapped: Buffer.from(wrapped).toString('base64url') });
  }
  if (staged.length === 0) throw new ValidationError('keys', 'keys: at least one key');
  const now = (await deps.clock.now()).toISOString();
  for (const { stored, wrapped } of staged) {
    await deps.store.replaceKey({ ...stored.doc, wrapped, kek, updatedAt: now }, stored.etag);
  }
  service.forgetCached(setId);
  for (let attempt = 0; attempt < 5; attempt++) {
    const latest = await service.readSet(setId);
    const { kekFailingSince: _f, ...rest } = latest.doc;
    void _f;
    try {
      await deps.store.replaceSet({ ...rest, state: 'available', keysVersion: latest.doc.keysVersion + 1, updatedAt: now }, latest.etag);
      break;
    } catch (e) {
      if (!(e instanceof ConcurrencyConflict)) throw e;
    }
  }
  service.forgetCached(setId);
  log.info('Key set data keys imported', { setId, keys: staged.map((s) => s.stored.doc.keyId) });
  return { keySet: await service.view(setId), imported: staged.length };
}
