/** SecretClient contract: every operation the emulator implements, errors and paging. */
import { DAY, emulatorSeconds, rawRequest, startTestVault, type TestVault } from '../../helpers/keyvault';

const poll = { intervalInMs: 10 };

describe('Key Vault emulator: secrets', () => {
  let vault: TestVault;
  beforeAll(async () => {
    vault = await startTestVault();
  });
  afterAll(() => vault.close());

  it('sets and gets a secret with its properties', async () => {
    const now = emulatorSeconds(vault.emulator);
    const notBefore = new Date((now - 60) * 1000);
    const expiresOn = new Date((now + 90 * DAY) * 1000);
    const set = await vault.secrets.setSecret('app-password', 's3cret', {
      contentType: 'text/plain',
      tags: { owner: 'team-a' },
      notBefore,
      expiresOn,
    });
    expect(set.value).toBe('s3cret');
    expect(set.properties.version).toMatch(/^[0-9a-f]{32}$/);
    const got = await vault.secrets.getSecret('app-password');
    expect(got.value).toBe('s3cret');
    expect(got.properties).toMatchObject({
      name: 'app-password',
      version: set.properties.version,
      contentType: 'text/plain',
      tags: { owner: 'team-a' },
      enabled: true,
      notBefore,
      expiresOn,
      recoveryLevel: 'Recoverable+Purgeable',
    });
    expect(got.properties.createdOn).toBeInstanceOf(Date);
  });

  it('keeps versions: latest and by version', async () => {
    const v1 = await vault.secrets.setSecret('versioned', 'one');
    const v2 = await vault.secrets.setSecret('versioned', 'two');
    expect(v1.properties.version).not.toBe(v2.properties.version);
    expect((await vault.secrets.getSecret('versioned')).value).toBe('two');
    expect((await vault.secrets.getSecret('versioned', { version: v1.properties.version! })).value).toBe('one');
  });

  it('treats names case-insensitively and keeps the original casing', async () => {
    await vault.secrets.setSecret('MixedCase', 'a');
    const got = await vault.secrets.getSecret('mixedcase');
    expect(got.value).toBe('a');
    expect(got.name).toBe('MixedCase');
    await vault.secrets.setSecret('MIXEDCASE', 'b');
    const versions = [];
    for await (const p of vault.secrets.listPropertiesOfSecretVersions('mixedCASE')) versions.push(p);
    expect(versions).toHaveLength(2);
    expect(versions.every((p) => p.name === 'MixedCase')).toBe(true);
  });

  it('lists secrets and versions without values, paging past one page', async () => {
    for (let i = 0; i < 28; i++) await vault.secrets.setSecret('many-versions', `v${i}`);
    const all = [];
    for await (const p of vault.secrets.listPropertiesOfSecretVersions('many-versions')) all.push(p);
    expect(all).toHaveLength(28);
    expect(new Set(all.map((p) => p.version)).size).toBe(28);
    expect(all.every((p) => !('value' in p))).toBe(true);

    const sizes: number[] = [];
    for await (const page of vault.secrets.listPropertiesOfSecretVersions('many-versions').byPage({ maxPageSize: 10 })) sizes.push(page.length);
    expect(sizes).toEqual([10, 10, 8]);

    const names = [];
    for await (const p of vault.secrets.listPropertiesOfSecrets()) names.push(p.name);
    expect(names).toEqual(expect.arrayContaining(['app-password', 'versioned', 'many-versions']));
    expect(new Set(names).size).toBe(names.length);
  });

  it('returns an absolute nextLink and rejects maxresults above 25', async () => {
    const page = await rawRequest(vault.emulator, 'GET', '/secrets/many-versions/versions?api-version=7.5&maxresults=5', { token: 't' });
    expect(page.status).toBe(200);
    expect(page.body.value).toHaveLength(5);
    expect(page.body.nextLink.startsWith(`${vault.emulator.url}/secrets/many-versions/versions?`)).toBe(true);
    const tooBig = await rawRequest(vault.emulator, 'GET', '/secrets?maxresults=26', { token: 't' });
    expect(tooBig.status).toBe(400);
  });

  it('updates properties; a disabled version answers 403 SecretDisabled', async () => {
    const s = await vault.secrets.setSecret('toggle', 'value');
    const updated = await vault.secrets.updateSecretProperties('toggle', s.properties.version!, {
      enabled: false,
      tags: { state: 'off' },
      contentType: 'application/x-test',
    });
    expect(updated).toMatchObject({ enabled: false, tags: { state: 'off' }, contentType: 'application/x-test' });
    const err = await vault.secrets.getSecret('toggle').catch((e) => e);
    expect(err).toMatchObject({ statusCode: 403, code: 'Forbidden' });
    expect(err.details.error.innerError.code).toBe('SecretDisabled');
    await vault.secrets.updateSecretProperties('toggle', s.properties.version!, { enabled: true });
    expect((await vault.secrets.getSecret('toggle')).value).toBe('value');
  });

  it('still returns expired and not-yet-valid secrets (as the service does)', async () => {
    const now = emulatorSeconds(vault.emulator);
    await vault.secrets.setSecret('expired-one', 'old', { expiresOn: new Date((now - DAY) * 1000) });
    await vault.secrets.setSecret('future-one', 'later', { notBefore: new Date((now + DAY) * 1000) });
    expect((await vault.secrets.getSecret('expired-one')).value).toBe('old');
    expect((await vault.secrets.getSecret('future-one')).value).toBe('later');
  });

  it('answers 404 SecretNotFound for unknown names and versions', async () => {
    await expect(vault.secrets.getSecret('nope')).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
    await expect(vault.secrets.getSecret('versioned', { version: '0'.repeat(32) })).rejects.toMatchObject({ statusCode: 404, code: 'SecretNotFound' });
  });

  it('soft-deletes, refuses reuse with 409, lists, recovers and purges', async () => {
    await vault.secrets.setSecret('doomed', 'bye');
    const deleted = await (await vault.secrets.beginDeleteSecret('doomed', poll)).pollUntilDone();
    expect(deleted.name).toBe('doomed');
    expect(deleted.recoveryId).toBe(`${vault.emulator.url}/deletedsecrets/doomed`);
    expect(deleted.deletedOn).toBeInstanceOf(Date);
    expect(deleted.scheduledPurgeDate!.getTime()).toBeGreaterThan(deleted.deletedOn!.getTime());

    await expect(vault.secrets.getSecret('doomed')).rejects.toMatchObject({ statusCode: 404 });
    const conflict = await vault.secrets.setSecret('doomed', 'again').catch((e) => e);
    expect(conflict).toMatchObject({ statusCode: 409, code: 'Conflict' });
    expect(conflict.details.error.innerError.code).toBe('ObjectIsDeletedButRecoverable');

    expect((await vault.secrets.getDeletedSecret('doomed')).name).toBe('doomed');
    const deletedNames = [];
    for await (const d of vault.secrets.listDeletedSecrets()) deletedNames.push(d.name);
    expect(deletedNames).toContain('doomed');

    await (await vault.secrets.beginRecoverDeletedSecret('doomed', poll)).pollUntilDone();
    expect((await vault.secrets.getSecret('doomed')).value).toBe('bye');

    await (await vault.secrets.beginDeleteSecret('doomed', poll)).pollUntilDone();
    await vault.secrets.purgeDeletedSecret('doomed');
    await expect(vault.secrets.getDeletedSecret('doomed')).rejects.toMatchObject({ statusCode: 404 });
    const reused = await vault.secrets.setSecret('doomed', 'fresh');
    expect(reused.value).toBe('fresh');
  });

  it('backs up and restores all versions; restore into a used name is 409', async () => {
    const a = await vault.secrets.setSecret('backed', 'first');
    await vault.secrets.setSecret('backed', 'second');
    const blob = await vault.secrets.backupSecret('backed');
    expect(blob).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(blob!).toString('latin1')).not.toContain('second');
    await expect(vault.secrets.restoreSecretBackup(blob!)).rejects.toMatchObject({ statusCode: 409 });
    await (await vault.secrets.beginDeleteSecret('backed', poll)).pollUntilDone();
    await expect(vault.secrets.restoreSecretBackup(blob!)).rejects.toMatchObject({ statusCode: 409 });
    await vault.secrets.purgeDeletedSecret('backed');
    const restored = await vault.secrets.restoreSecretBackup(blob!);
    expect(restored.name).toBe('backed');
    expect((await vault.secrets.getSecret('backed')).value).toBe('second');
    expect((await vault.secrets.getSecret('backed', { version: a.properties.version! })).value).toBe('first');
    await expect(vault.secrets.restoreSecretBackup(new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ statusCode: 400 });
  });
});
