/**
 * The export on the real step runner with in-memory ports: a crash at every step
 * boundary resumes and completes once (one package, one of each notification id),
 * dual-control refusals, the minimum wait, versions without escrow listed as not
 * exportable, and the package opening with the requester's key.
 */
import { constants, createPrivateKey, generateKeyPairSync, privateDecrypt } from 'node:crypto';
import { EXPORT_CONTAINER, packageDigest } from '../../../shared/domain/tenantExports';
import { RekeyService } from '../../../shared/services/tenants/rekeyService';
import { rekeyJob } from '../../../shared/services/tenants/rekeyJob';
import { StepRunner } from '../../../shared/services/jobs/runner';
import { FakeRekeys, silentLog } from '../tenants/fakes';
import { codeOf } from '../../helpers/memoryStores';
import { HOUR, LEASE_MS, world } from './world';

const requester = generateKeyPairSync('rsa', { modulusLength: 3072 });
const PEM = requester.publicKey.export({ type: 'spki', format: 'pem' }) as string;

function open(pkg: { encryptedPassword: string; keys: { pkcs8: string | null }[] }) {
  const password = privateDecrypt({ key: requester.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' }, Buffer.from(pkg.encryptedPassword, 'base64url')).toString();
  return pkg.keys.map((k) => (k.pkcs8 ? createPrivateKey({ key: k.pkcs8, format: 'pem', passphrase: password }) : null));
}

describe('tenant-key export (dual control, step kernel, in-memory ports)', () => {
  test('When requested and approved, then the package opens with the requester key and holds each version\'s private key', async () => {
    const w = world();
    await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const h = w.host();
    const req = await h.exports.request('acme', { requesterPublicKey: PEM, reason: 'leaving' }, 'alice');
    expect(req.status).toBe('awaiting-approval');
    expect(await codeOf(h.exports.package('acme', req.id, 'alice'))).toBe('EXPORT_NOT_APPROVED');
    expect(await codeOf(h.exports.approve('acme', req.id, { publicKeySha256: req.publicKeySha256 }, 'alice'))).toBe('APPROVER_IS_REQUESTER');
    expect(await codeOf(h.exports.approve('acme', req.id, { publicKeySha256: '0'.repeat(64) }, 'bob'))).toBe('APPROVAL_DIGEST_MISMATCH');
    const done = await h.exports.approve('acme', req.id, { publicKeySha256: req.publicKeySha256.toUpperCase() }, 'bob');
    expect(done).toMatchObject({ status: 'completed', approvedBy: 'bob' });
    expect(await codeOf(h.exports.package('acme', req.id, 'bob'))).toBe('EXPORT_REQUESTER_ONLY');
    const pkg = await h.exports.package('acme', req.id, 'alice');
    const { sha256, ...rest } = pkg;
    expect(packageDigest(rest)).toBe(sha256);
    const [key] = open(pkg);
    const tenant = await w.service.get('acme');
    const vaultVersion = w.vault.versions.get(tenant.versions[0]!.name)![0]!;
    expect(key!.export({ format: 'jwk' })).toEqual(vaultVersion.privateKey.export({ format: 'jwk' }));
    // The escrow key is Keyturn's own: wrap/unwrap only, no exp.
    const escrowKey = w.vault.versions.get('keyturn-tenant-escrow')![0]!;
    expect([escrowKey.keyOps.sort(), escrowKey.properties.expiresOn]).toEqual([['unwrapKey', 'wrapKey'], undefined]);
    w.clock.advance(24 * HOUR + 1);
    expect(await codeOf(h.exports.package('acme', req.id, 'alice'))).toBe('EXPORT_EXPIRED');
  });

  test('When a version was made before escrow existed, then the package lists it as not exportable', async () => {
    const w = world({ escrow: false });
    const t = await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    // A rekey with escrow on: the second version has a copy.
    const withEscrow = new (await import('../../../shared/services/tenants/tenantService')).TenantService({ ...w.tenantDeps, escrow: w.escrow });
    const rekeys = new FakeRekeys();
    const runner = new StepRunner({ clock: w.clock, faults: { hit() {} }, log: silentLog, owner: 'r' });
    const kind = rekeyJob({ deps: { ...w.tenantDeps, escrow: w.escrow }, service: withEscrow, rekeys, leaseMs: LEASE_MS, maxAttempts: 5 });
    await new RekeyService({ tenants: withEscrow, rekeys, runner, kind, clock: w.clock, log: silentLog }).rekey('acme', { reason: 'r', requestedBy: 'ops' });
    const h = w.host();
    const req = await h.exports.request('acme', { requesterPublicKey: PEM, reason: 'r' }, 'alice');
    const done = await h.exports.approve('acme', req.id, { publicKeySha256: req.publicKeySha256 }, 'bob');
    expect(done.package!.notExportable).toEqual([t.activeKid]);
    const pkg = await h.exports.package('acme', req.id, 'alice');
    expect(pkg.keys.map((k) => [k.exportable, k.pkcs8 === null])).toEqual([[false, true], [true, false]]);
    expect(open(pkg)[1]).not.toBeNull();
  });

  test('When a minimum wait is set, then an earlier approval is APPROVAL_TOO_EARLY; a BYOK tenant is EXPORT_NOT_ALLOWED', async () => {
    const w = world({ minWaitMs: HOUR });
    await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const h = w.host();
    const req = await h.exports.request('acme', { requesterPublicKey: PEM, reason: 'r' }, 'alice');
    expect(await codeOf(h.exports.approve('acme', req.id, { publicKeySha256: req.publicKeySha256 }, 'bob'))).toBe('APPROVAL_TOO_EARLY');
    w.clock.advance(HOUR);
    expect((await h.exports.approve('acme', req.id, { publicKeySha256: req.publicKeySha256 }, 'bob')).status).toBe('completed');
    const stored = (await w.tenants.read('acme'))!;
    await w.tenants.createOnly({ ...stored.doc, id: 'byok-t', tenantId: 'byok-t', topology: 'byok' });
    expect(await codeOf(h.exports.request('byok-t', { requesterPublicKey: PEM, reason: 'r' }, 'alice'))).toBe('EXPORT_NOT_ALLOWED');
    const weak = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
    expect(await codeOf(h.exports.request('acme', { requesterPublicKey: weak, reason: 'r' }, 'alice'))).toBe('VALIDATION_FAILED');
  });

  const POINTS = ['export-requested', 'export-package', 'export-notify'].flatMap((s) => [`${s}:before`, `${s}:claimed`, `${s}:after`]);

  test.each(POINTS)('When a host crashes at %s, then the next one completes the export once', async (point) => {
    const w = world();
    await w.service.create({ tenantId: 'acme', topology: 'service-managed', requestedBy: 'ops' });
    const crashing = w.host([point]);
    const first = await codeOf(crashing.exports.request('acme', { requesterPublicKey: PEM, reason: 'r' }, 'alice'));
    const [job] = w.exports.all();
    const approve = (h: ReturnType<typeof w.host>) => h.exports.approve('acme', job!.id, { publicKeySha256: job!.publicKeySha256 }, 'bob');
    const second = first === 'CRASH' ? 'CRASH' : await codeOf(approve(crashing));
    expect(second).toBe('CRASH');
    w.clock.advance(LEASE_MS + 1); // the dead host's lease lapses
    const done = await approve(w.host());
    expect(done.status).toBe('completed');
    expect(w.blobs.in(EXPORT_CONTAINER)).toHaveLength(1);
    expect(w.blobs.writes).toBe(2); // the tenant key's escrow copy and one package
    const pkg = await w.host().exports.package('acme', job!.id, 'alice');
    expect(pkg.sha256).toBe(done.package!.sha256);
    expect(open(pkg)[0]).not.toBeNull();
    for (const type of ['Keyturn.TenantKeyExportRequested', 'Keyturn.TenantKeyExported']) {
      expect(new Set(w.notifier.ids(type))).toEqual(new Set([`${job!.id}:${type === 'Keyturn.TenantKeyExported' ? 'exported' : 'exportRequested'}`]));
    }
  });
});
