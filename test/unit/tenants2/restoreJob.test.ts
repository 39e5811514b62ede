/**
 * Backup and restore on the real step runner with in-memory ports: a crash at every
 * step boundary resumes and restores once; checksum first; present / soft-deleted /
 * purged decide the action; notifications with deterministic ids. And the escrow:
 * written before the version is recorded, and a failed escrow leaves no usable version.
 */
import { BACKUP_CONTAINER } from '../../../shared/domain/tenantBackups';
import { ESCROW_CONTAINER } from '../../../shared/domain/tenantExports';
import { VAULT } from '../tenants/fakes';
import { codeOf } from '../../helpers/memoryStores';
import { LEASE_MS, world } from './world';

async function backedUp() {
  const w = world();
  const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', adminContacts: ['sec@acme.example'], requestedBy: 'ops' });
  const before = await w.service.protect('acme', Buffer.from('old content'));
  const backup = await w.host().backups.create('acme', 'ops');
  return { w, t, before, backup, name: t.versions[0]!.name };
}

describe('tenant-key backup and restore (step kernel, in-memory ports)', () => {
  test('When backed up, then the blob carries its SHA-256 and the record lists the versions; the admins are told once', async () => {
    const { w, t, backup } = await backedUp();
    expect(backup.versions).toEqual([t.activeKid]);
    const blob = await w.blobs.get(BACKUP_CONTAINER, backup.blob);
    expect(blob!.metadata.sha256).toBe(backup.sha256);
    expect(await w.host().backups.list('acme')).toEqual([backup]);
    expect(w.notifier.events).toEqual([
      expect.objectContaining({ id: `${backup.id}:backedUp`, eventType: 'Keyturn.TenantKeyBackedUp', subject: '/tenants/acme', data: expect.objectContaining({ adminContacts: ['sec@acme.example'], sha256: backup.sha256 }) }),
    ]);
    expect(JSON.stringify(w.notifier.events)).not.toContain('fake-backup');
  });

  test('When the key is present, then KEY_PRESENT; soft-deleted → recovered; purged → restored; old content opens each time', async () => {
    const { w, before, backup, name } = await backedUp();
    const h = w.host();
    expect(await codeOf(h.restore.restore('acme', backup.id, 'ops'))).toBe('KEY_PRESENT');
    await w.keys.delete(VAULT, name);
    await h.restore.restore('acme', backup.id, 'ops');
    expect(w.vault.counts).toMatchObject({ recover: 1, restore: 0 });
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
    await w.keys.delete(VAULT, name);
    await w.keys.purge(VAULT, name);
    await h.restore.restore('acme', backup.id, 'ops');
    expect(w.vault.counts).toMatchObject({ recover: 1, restore: 1 });
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
    expect(w.notifier.ids('Keyturn.TenantKeyRestored')).toHaveLength(2);
  });

  test('When Keyturn may not read deleted keys (Crypto Officer has no deletedKeys/read), then soft-deleted is still recovered and purged restored from the blob', async () => {
    const { w, before, backup, name } = await backedUp();
    w.vault.deletedReadForbidden = true;
    const h = w.host();
    expect(await codeOf(h.restore.restore('acme', backup.id, 'ops'))).toBe('KEY_PRESENT');
    await w.keys.delete(VAULT, name);
    await h.restore.restore('acme', backup.id, 'ops');
    expect(w.vault.counts).toMatchObject({ recover: 1, restore: 0 });
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
    await w.keys.delete(VAULT, name);
    await w.keys.purge(VAULT, name);
    await h.restore.restore('acme', backup.id, 'ops');
    expect(w.vault.counts).toMatchObject({ recover: 1, restore: 1 });
    expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
  });

  test('When the blob was altered, then BACKUP_CHECKSUM_MISMATCH and nothing is restored (no job either)', async () => {
    const { w, backup, name } = await backedUp();
    await w.keys.delete(VAULT, name);
    await w.keys.purge(VAULT, name);
    const key = `${BACKUP_CONTAINER}/${backup.blob}`;
    const stored = w.blobs.blobs.get(key)!;
    w.blobs.blobs.set(key, { ...stored, bytes: Buffer.concat([Buffer.from(stored.bytes), Buffer.from('x')]) });
    expect(await codeOf(w.host().restore.restore('acme', backup.id, 'ops'))).toBe('BACKUP_CHECKSUM_MISMATCH');
    expect(w.vault.counts.restore).toBe(0);
    expect(w.restores.all()).toEqual([]);
  });

  const POINTS = ['restore-key', 'restore-notify'].flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);

  test.each(POINTS)('When a host crashes at %s, then the retried request completes the restore once', async (point) => {
    for (const purged of [false, true]) {
      const { w, before, backup, name } = await backedUp();
      await w.keys.delete(VAULT, name);
      if (purged) await w.keys.purge(VAULT, name);
      expect(await codeOf(w.host([point]).restore.restore('acme', backup.id, 'ops'))).toBe('CRASH');
      w.clock.advance(LEASE_MS + 1);
      expect(await codeOf(w.host().restore.restore('acme', backup.id, 'ops'))).toBe('OK');
      expect(w.vault.counts).toEqual({ create: 1, recover: purged ? 0 : 1, restore: purged ? 1 : 0 });
      const [job] = w.restores.all();
      expect([w.restores.all().length, job!.status, job!.action]).toEqual([1, 'completed', purged ? 'restore-blob' : 'recover']);
      expect(new Set(w.notifier.ids('Keyturn.TenantKeyRestored'))).toEqual(new Set([`${job!.id}:restored`]));
      expect((await w.service.unprotect('acme', before.jwe)).plaintext.toString()).toBe('old content');
    }
  });
});

describe('tenant-key escrow', () => {
  test('When Keyturn generates a version, then its sealed copy is in Blob storage (never the PEM) before the tenant records it', async () => {
    const w = world();
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const v = t.versions[0]!;
    const blob = await w.blobs.get(ESCROW_CONTAINER, `acme/${v.version}`);
    const text = Buffer.from(blob!.bytes).toString();
    expect(JSON.parse(text)).toMatchObject({ v: 1, tenantId: 'acme', kid: v.kid, wrapAlg: 'RSA-OAEP-256', enc: 'A256GCM' });
    expect(text).not.toMatch(/PRIVATE KEY|"d":/);
    const opened = await w.escrow.open('acme', v.kid, v.version);
    expect(opened!.export({ format: 'jwk' })).toEqual(w.vault.versions.get(v.name)![0]!.privateKey.export({ format: 'jwk' }));
    await w.escrow.destroy('acme', v.version);
    expect(await w.escrow.open('acme', v.kid, v.version)).toBeUndefined();
  });

  test('When the escrow copy cannot be stored, then the create fails and the imported version is disabled, without its step token', async () => {
    const w = world();
    w.blobs.failNextPut = true;
    expect(await codeOf(w.service.newServiceManagedKey('acme', await w.clock.now(), 'tenant-acme-1', { 'keyturn-step-token': 'tok' }))).toBe('DEPENDENCY_FAILED');
    const [version] = w.vault.versions.get('tenant-acme-1')!;
    expect(version!.properties.enabled).toBe(false);
    expect(version!.properties.tags).toEqual({ 'keyturn-tenant': 'acme' });
  });
});
