import {
  MAX_MANAGED_NAME_LENGTH,
  TAG,
  carriedTags,
  isPendingSecretName,
  pendingSecretName,
  promotedTags,
  readCredentialTags,
} from '../../../shared/domain/managedCredential';

const defaults = { validityDays: 365, graceDays: 7 };
const APP = '3f2504e0-4f89-11d3-9a0c-0305e82c3301';

describe('readCredentialTags', () => {
  test('a secret without keyturn-provider is not managed', () => {
    expect(readCredentialTags(undefined, defaults)).toEqual({ kind: 'unmanaged' });
    expect(readCredentialTags({ ValidityPeriodDays: '60', CredentialId: 'key1' }, defaults)).toEqual({ kind: 'unmanaged' });
  });

  test('symmetric with defaults', () => {
    expect(readCredentialTags({ 'keyturn-provider': 'symmetric' }, defaults)).toEqual({
      kind: 'managed',
      credential: { provider: 'symmetric', validityDays: 365, graceDays: 7 },
    });
  });

  test("Keyturn's own tags, names matched case-insensitively", () => {
    const r = readCredentialTags({ 'Keyturn-Provider': 'symmetric', 'KEYTURN-VALIDITY-DAYS': '90', 'keyturn-grace-days': '0' }, defaults);
    expect(r).toEqual({ kind: 'managed', credential: { provider: 'symmetric', validityDays: 90, graceDays: 0 } });
  });

  test("the Azure rotation samples' tags map: ValidityPeriodDays, ProviderAddress, CredentialId", () => {
    const r = readCredentialTags(
      { 'keyturn-provider': 'entra-app-password', ValidityPeriodDays: '60', ProviderAddress: APP.toUpperCase(), CredentialId: 'key-1' },
      defaults,
    );
    expect(r).toEqual({
      kind: 'managed',
      credential: { provider: 'entra-app-password', validityDays: 60, graceDays: 7, appObjectId: APP, credentialRef: 'key-1' },
    });
  });

  test("Keyturn's tags win over the samples' where both are present", () => {
    const r = readCredentialTags(
      {
        'keyturn-provider': 'entra-app-password',
        'keyturn-validity-days': '30',
        ValidityPeriodDays: '60',
        'keyturn-app-object-id': APP,
        ProviderAddress: 'not-a-guid',
        'keyturn-credential-id': 'mine',
        CredentialId: 'theirs',
      },
      defaults,
    );
    expect(r).toMatchObject({ kind: 'managed', credential: { validityDays: 30, appObjectId: APP, credentialRef: 'mine' } });
  });

  test.each([
    [{ 'keyturn-provider': 'rsa' }, TAG.provider],
    [{ 'keyturn-provider': 'symmetric', 'keyturn-validity-days': 'a year' }, TAG.validityDays],
    [{ 'keyturn-provider': 'symmetric', 'keyturn-validity-days': '0' }, TAG.validityDays],
    [{ 'keyturn-provider': 'symmetric', ValidityPeriodDays: '-5' }, 'ValidityPeriodDays'],
    [{ 'keyturn-provider': 'symmetric', 'keyturn-grace-days': '1000' }, TAG.graceDays],
    [{ 'keyturn-provider': 'entra-app-password' }, 'ProviderAddress'],
    [{ 'keyturn-provider': 'entra-app-password', 'keyturn-app-object-id': 'app' }, TAG.appObjectId],
  ])('invalid tags are named: %j', (tags, tag) => {
    expect(readCredentialTags(tags, defaults)).toMatchObject({ kind: 'invalid', tag });
  });
});

describe('what could never rotate is invalid before anything is created', () => {
  const userTags = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`tag-${i}`, 'v']));

  test('a name longer than 118 characters: {name}--pending would exceed Key Vault\'s 127', () => {
    expect(MAX_MANAGED_NAME_LENGTH).toBe(118);
    const tags = { 'keyturn-provider': 'symmetric' };
    expect(readCredentialTags(tags, defaults, 'n'.repeat(118))).toMatchObject({ kind: 'managed' });
    expect(readCredentialTags(tags, defaults, 'n'.repeat(119))).toMatchObject({ kind: 'invalid', tag: '(name)', provider: 'symmetric', message: expect.stringContaining('118') });
  });

  test('more tags than the promoted version can hold (Key Vault allows 15)', () => {
    // symmetric: the provider tag + user tags + stage, step token and rotation.
    expect(readCredentialTags({ 'keyturn-provider': 'symmetric', ...userTags(11) }, defaults, 'db')).toMatchObject({ kind: 'managed' });
    expect(readCredentialTags({ 'keyturn-provider': 'symmetric', ...userTags(12) }, defaults, 'db')).toMatchObject({
      kind: 'invalid',
      tag: '(tags)',
      message: expect.stringContaining('16 tags'),
    });
    // entra: the credential id tag is added too when the secret does not carry one yet.
    const entra = { 'keyturn-provider': 'entra-app-password', 'keyturn-app-object-id': APP };
    expect(readCredentialTags({ ...entra, ...userTags(9) }, defaults)).toMatchObject({ kind: 'managed' });
    expect(readCredentialTags({ ...entra, ...userTags(10) }, defaults)).toMatchObject({ kind: 'invalid', tag: '(tags)' });
    expect(readCredentialTags({ ...entra, 'keyturn-credential-id': 'k', ...userTags(9) }, defaults)).toMatchObject({ kind: 'managed' });
    // Keyturn's per-version tags on the current version are replaced, not added to.
    const current = { 'keyturn-provider': 'symmetric', 'keyturn-stage': 'current', 'keyturn-step-token': 't', 'keyturn-rotation': 'r', ...userTags(11) };
    expect(readCredentialTags(current, defaults)).toMatchObject({ kind: 'managed' });
  });
});

describe('version tags', () => {
  test('per-version rotation tags are not carried to the next version', () => {
    const old = { 'keyturn-provider': 'symmetric', 'keyturn-stage': 'current', 'keyturn-step-token': 't', 'keyturn-rotation': 'r', owner: 'team-a' };
    expect(carriedTags(old)).toEqual({ 'keyturn-provider': 'symmetric', owner: 'team-a' });
  });

  test('the promoted version is current, carries its token and the new credential id (both vocabularies)', () => {
    const tags = promotedTags({ 'keyturn-provider': 'entra-app-password', CredentialId: 'old', 'keyturn-stage': 'current' }, {
      token: 'tok',
      rotationId: 'local:x:v:1',
      credentialRef: 'new',
    });
    expect(tags).toEqual({
      'keyturn-provider': 'entra-app-password',
      CredentialId: 'new',
      'keyturn-credential-id': 'new',
      'keyturn-stage': 'current',
      'keyturn-step-token': 'tok',
      'keyturn-rotation': 'local:x:v:1',
    });
  });

  test('pending sibling names', () => {
    expect(pendingSecretName('db')).toBe('db--pending');
    expect(isPendingSecretName('DB--PENDING')).toBe(true);
    expect(isPendingSecretName('db')).toBe(false);
  });
});
