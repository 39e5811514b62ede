import { MAX_EVENT_BYTES, projectEvent, readKeyVaultEvent, resolveVaultAlias } from '../../../shared/domain/keyVaultEvent';

const TOPIC = '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/keyturn-local';
const VERSION = 'ee059b2bb5bc48398a53b168c6cdcb10';

function eventGrid(data: Record<string, unknown>, overrides: Record<string, unknown> = {}) {
  return {
    id: 'e1',
    topic: TOPIC,
    subject: 'db-password',
    eventType: 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: '2030-01-01T00:00:00Z',
    data,
    dataVersion: '1',
    metadataVersion: '1',
    ...overrides,
  };
}

const pascal = {
  Id: `https://keyturn-local.vault.azure.net/secrets/db-password/${VERSION}`,
  VaultName: 'keyturn-local',
  ObjectType: 'Secret',
  ObjectName: 'db-password',
  Version: VERSION,
  NBF: 1559081980,
  EXP: 1559082100,
};

describe('readKeyVaultEvent', () => {
  test('real deliveries: PascalCase data with numeric NBF/EXP', () => {
    const r = readKeyVaultEvent(eventGrid(pascal));
    expect(r).toEqual({
      ok: true,
      event: {
        schema: 'EventGrid',
        id: 'e1',
        type: 'Microsoft.KeyVault.SecretNearExpiry',
        kind: 'SecretNearExpiry',
        topic: TOPIC,
        vaultName: 'keyturn-local',
        objectType: 'Secret',
        objectName: 'db-password',
        version: VERSION,
        nbf: new Date(1559081980_000),
        exp: new Date(1559082100_000),
        eventTime: '2030-01-01T00:00:00Z',
      },
    });
  });

  test('SDK typings: camelCase data', () => {
    const camel = { id: pascal.Id, vaultName: 'keyturn-local', objectType: 'Secret', objectName: 'db-password', version: VERSION, nbf: 1, exp: 2 };
    expect(readKeyVaultEvent(eventGrid(camel))).toMatchObject({ ok: true, event: { objectName: 'db-password', exp: new Date(2000) } });
  });

  test('numeric strings, null and missing times', () => {
    const r1 = readKeyVaultEvent(eventGrid({ ...pascal, NBF: '1559081980', EXP: ' 1559082100 ' }));
    expect(r1).toMatchObject({ ok: true, event: { nbf: new Date(1559081980_000), exp: new Date(1559082100_000) } });
    const r2 = readKeyVaultEvent(eventGrid({ ...pascal, NBF: null, EXP: null }));
    expect(r2).toMatchObject({ ok: true, event: { nbf: null, exp: null } });
    const { NBF, EXP, ...noTimes } = pascal;
    void NBF, void EXP;
    expect(readKeyVaultEvent(eventGrid(noTimes))).toMatchObject({ ok: true, event: { nbf: null, exp: null } });
  });

  test("the documentation sample's stray spaces ('ObjectName ' and ' ee05…')", () => {
    const { ObjectName, Version, ...rest } = pascal;
    void ObjectName, void Version;
    const r = readKeyVaultEvent(eventGrid({ ...rest, 'ObjectName ': 'db-password', Version: ` ${VERSION}` }));
    expect(r).toMatchObject({ ok: true, event: { objectName: 'db-password', version: VERSION } });
  });

  test('CloudEvents 1.0 schema: type, source, subject, data', () => {
    const cloud = { specversion: '1.0', id: 'c1', source: TOPIC, subject: 'db-password', type: 'Microsoft.KeyVault.SecretExpired', time: '2030-01-01T00:00:00Z', data: pascal };
    expect(readKeyVaultEvent(cloud)).toMatchObject({ ok: true, event: { schema: 'CloudEvents', id: 'c1', kind: 'SecretExpired', topic: TOPIC } });
  });

  test('key events are read too; access-policy events are acknowledged without data parsing', () => {
    const key = eventGrid({ ...pascal, ObjectType: 'Key' }, { eventType: 'Microsoft.KeyVault.KeyNearExpiry' });
    expect(readKeyVaultEvent(key)).toMatchObject({ ok: true, event: { objectType: 'Key', kind: 'KeyNearExpiry' } });
    const policy = eventGrid({ Id: 'x' }, { eventType: 'Microsoft.KeyVault.VaultAccessPolicyChanged', subject: 'keyturn-local' });
    expect(readKeyVaultEvent(policy)).toEqual({ ok: true, ignored: true, type: 'Microsoft.KeyVault.VaultAccessPolicyChanged', topic: TOPIC, id: 'e1' });
  });

  test.each([
    ['not an object', 'hello', 'malformed', '(event)'],
    ['an array', [eventGrid(pascal)], 'malformed', '(event)'],
    ['no data', { ...eventGrid(pascal), data: undefined }, 'malformed', 'data'],
    ['no id', { ...eventGrid(pascal), id: '' }, 'malformed', 'id'],
    ['a bad object name', eventGrid({ ...pascal, ObjectName: '../etc/passwd' }), 'malformed', 'data.objectname'],
    ['a bad version', eventGrid({ ...pascal, Version: 'a b' }), 'malformed', 'data.version'],
    ['a bad EXP', eventGrid({ ...pascal, EXP: 'tomorrow' }), 'malformed', 'data.exp'],
    ['a topic that is not a vault', eventGrid(pascal, { topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a' }), 'malformed', 'topic'],
    ['VaultName not matching the topic', eventGrid({ ...pascal, VaultName: 'other' }), 'malformed', 'data.VaultName'],
    ['ObjectType not matching the type', eventGrid({ ...pascal, ObjectType: 'Key' }), 'malformed', 'data.ObjectType'],
    ['subject not matching ObjectName', eventGrid(pascal, { subject: 'other' }), 'malformed', 'subject'],
    ['a non Key Vault type', eventGrid(pascal, { eventType: 'Microsoft.Storage.BlobCreated' }), 'unsupported', 'eventType'],
  ])('refuses %s', (_what, raw, reason, field) => {
    const r = readKeyVaultEvent(raw);
    expect(r).toMatchObject({ ok: false, reason });
    expect(!r.ok && r.detail.startsWith(field)).toBe(true);
  });

  test('refuses an oversized event before parsing it', () => {
    const big = eventGrid({ ...pascal, Padding: 'x'.repeat(MAX_EVENT_BYTES) });
    expect(readKeyVaultEvent(big)).toMatchObject({ ok: false, reason: 'oversized' });
  });
});

describe('resolveVaultAlias', () => {
  const vaults = { local: 'https://127.0.0.1:8443', prod: 'https://contoso-prod.vault.azure.net' };
  test('an explicit mapping first (the emulator is named keyturn-local, its URL is an IP)', () => {
    expect(resolveVaultAlias('keyturn-local', vaults, { 'keyturn-local': 'local' })).toBe('local');
    expect(resolveVaultAlias('Keyturn-Local', vaults, { 'keyturn-local': 'local' })).toBe('local');
    expect(resolveVaultAlias('keyturn-local', vaults, { 'keyturn-local': 'gone' })).toBeUndefined();
  });
  test('then the vault key, then the first host label of the URL', () => {
    expect(resolveVaultAlias('LOCAL', vaults)).toBe('local');
    expect(resolveVaultAlias('contoso-prod', vaults)).toBe('prod');
    expect(resolveVaultAlias('127', vaults)).toBeUndefined();
    expect(resolveVaultAlias('someone-else', vaults)).toBeUndefined();
  });
});

describe('projectEvent (what a dead letter keeps)', () => {
  test('the envelope and the sorted names of data keys (at most 20, each cut to 64), never data values', () => {
    const data: Record<string, unknown> = { Zeta: 'secret-looking-value', alpha: { nested: 'v' } };
    for (let i = 0; i < 23; i++) data[`k${String(i).padStart(2, '0')}${'x'.repeat(100)}`] = `value-${i}`;
    const p = projectEvent(eventGrid(data));
    expect(p).toEqual({
      id: 'e1',
      eventType: 'Microsoft.KeyVault.SecretNearExpiry',
      subject: 'db-password',
      topic: TOPIC,
      dataVersion: '1',
      eventTime: '2030-01-01T00:00:00Z',
      dataKeys: Object.keys(data).sort().slice(0, 20).map((k) => k.slice(0, 64)),
      dataKeyCount: 25,
    });
    expect(p.dataKeys.every((k) => k.length <= 64)).toBe(true);
    expect(JSON.stringify(p)).not.toMatch(/value|nested/);
  });

  test('CloudEvents names map; missing or odd parts are left out', () => {
    expect(projectEvent({ specversion: '1.0', id: 'c1', source: TOPIC, type: 'Microsoft.KeyVault.SecretExpired', time: 't', data: [1, 2] })).toEqual({
      id: 'c1',
      eventType: 'Microsoft.KeyVault.SecretExpired',
      topic: TOPIC,
      eventTime: 't',
      dataKeys: [],
      dataKeyCount: null,
    });
    expect(projectEvent('nonsense')).toEqual({ dataKeys: [], dataKeyCount: null });
    expect(projectEvent({ id: 42, subject: 'x'.repeat(1000) }).subject).toHaveLength(300);
  });
});
