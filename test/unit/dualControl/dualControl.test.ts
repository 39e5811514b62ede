import { generateKeyPairSync, createHash } from 'node:crypto';
import { approvalRefusal } from '../../../shared/domain/dualControl';
import { parseRecipientKey } from '../../../shared/domain/recipientKey';
import { PRINCIPAL_ID_HEADER, resolveIdentity } from '../../../shared/http/identity';
import { KeyturnError, ValidationError } from '../../../shared/errors';

const at = '2026-12-01T10:00:00.000Z';
const request = { requestedBy: 'alice-oid', requestedAt: at, digest: 'AB'.repeat(32) };

describe('approvalRefusal', () => {
  it('refuses the requester approving their own request', () => {
    expect(approvalRefusal(request, { approvedBy: 'alice-oid', digest: request.digest }, new Date(at), { minWaitMs: 0 })?.code).toBe('APPROVER_IS_REQUESTER');
  });
  it('refuses an approval naming another digest, or none', () => {
    expect(approvalRefusal(request, { approvedBy: 'bob-oid', digest: 'cd'.repeat(32) }, new Date(at), { minWaitMs: 0 })?.code).toBe('APPROVAL_DIGEST_MISMATCH');
    expect(approvalRefusal(request, { approvedBy: 'bob-oid' }, new Date(at), { minWaitMs: 0 })?.code).toBe('APPROVAL_DIGEST_MISMATCH');
  });
  it('compares digests case-insensitively (hex)', () => {
    expect(approvalRefusal(request, { approvedBy: 'bob-oid', digest: 'ab'.repeat(32) }, new Date(at), { minWaitMs: 0 })).toBeUndefined();
  });
  it('holds an approval until the waiting period has passed', () => {
    const policy = { minWaitMs: 3_600_000 };
    const early = approvalRefusal(request, { approvedBy: 'bob-oid', digest: request.digest }, new Date(Date.parse(at) + 3_599_000), policy);
    expect(early?.code).toBe('APPROVAL_TOO_EARLY');
    expect(early?.details.notBefore).toBe('2026-12-01T11:00:00.000Z');
    expect(approvalRefusal(request, { approvedBy: 'bob-oid', digest: request.digest }, new Date(Date.parse(at) + 3_600_000), policy)).toBeUndefined();
  });
});

describe('parseRecipientKey', () => {
  const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).publicKey.export({ format: 'pem', type: 'spki' }) as string;
  it('accepts RSA ≥ 3072 and digests the DER, whatever the PEM line endings', () => {
    const pem = rsa(3072);
    const parsed = parseRecipientKey(pem, 'requesterPublicKey');
    expect(parsed.bits).toBe(3072);
    const der = Buffer.from(pem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    expect(parsed.sha256).toBe(createHash('sha256').update(der).digest('hex'));
    expect(parseRecipientKey(pem.replace(/\n/g, '\r\n'), 'requesterPublicKey').sha256).toBe(parsed.sha256);
  });
  it.each([
    ['a short RSA key', () => rsa(2048), /2048 bits/],
    ['an EC key', () => generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }) as string, /RSA/],
    ['not PEM', () => 'hello', /PEM/],
    ['a private key', () => generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string, /PEM SPKI/],
    ['garbage inside the armour', () => '-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', /readable/],
    ['not a string', () => 42 as unknown as string, /PEM/],
  ])('refuses %s naming the field', (_name, make, message) => {
    let thrown: unknown;
    try {
      parseRecipientKey(make(), 'recipientPublicKey');
    } catch (e) {
      thrown = e;
    }
    expect(thrown).toBeInstanceOf(ValidationError);
    expect((thrown as ValidationError).field).toBe('recipientPublicKey');
    expect((thrown as Error).message).toMatch(message);
  });
});

describe('resolveIdentity', () => {
  const azure = { trustEasyAuthHeader: true, localStack: false };
  const local = { trustEasyAuthHeader: false, localStack: true };
  it('takes the Easy Auth principal id in Azure and refuses a body identity there', () => {
    expect(resolveIdentity({ principalId: '0000-oid', field: 'approvedBy' }, azure)).toEqual({ id: '0000-oid', source: 'easy-auth' });
    expect(() => resolveIdentity({ principalId: '0000-oid', declared: 'bob', field: 'approvedBy' }, azure)).toThrow(ValidationError);
  });
  it(`needs ${PRINCIPAL_ID_HEADER} when Easy Auth is trusted`, () => {
    const thrown = (() => { try { resolveIdentity({ field: 'requestedBy' }, azure); } catch (e) { return e; } })();
    expect((thrown as KeyturnError).code).toBe('IDENTITY_REQUIRED');
  });
  it('uses the declared identity on the local stack only, and requires it', () => {
    expect(resolveIdentity({ declared: 'bob', field: 'approvedBy' }, local)).toEqual({ id: 'bob', source: 'local-declared' });
    expect(() => resolveIdentity({ field: 'approvedBy' }, local)).toThrow(/approvedBy: required/);
    const thrown = (() => { try { resolveIdentity({ declared: 'bob', field: 'approvedBy' }, { trustEasyAuthHeader: false, localStack: false }); } catch (e) { return e; } })();
    expect((thrown as KeyturnError).code).toBe('DUAL_CONTROL_UNAVAILABLE');
  });
  it('ignores a principal header that is not trusted (anyone could send it)', () => {
    expect(resolveIdentity({ principalId: 'forged', declared: 'bob', field: 'approvedBy' }, local).id).toBe('bob');
  });
});
