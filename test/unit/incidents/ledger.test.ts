/** The ledger's cross-check against an incident's head, and the recovery of a deleted checkpoint secret (pure). */
import { checkpointRecovery, ledgerMismatch, recordedHead } from '../../../shared/domain/incidentLedger';

const h = (seq: number, hash = `h${seq}`) => ({ seq, hash });

test('agreeing heads, and an open incident the ledger does not name, are fine', () => {
  expect(ledgerMismatch(h(9), { closed: true, head: h(9) })).toBeUndefined();
  expect(ledgerMismatch(undefined, { closed: false, head: h(4) })).toBeUndefined();
  expect(ledgerMismatch(undefined, undefined)).toBeUndefined();
});

test('each direction is a mismatch with the first seq the ledger does not vouch for', () => {
  expect(ledgerMismatch(undefined, { closed: true, head: h(9) })).toEqual({ mismatch: 'not-in-ledger', recorded: null, actual: h(9), firstBrokenSeq: 9 });
  expect(ledgerMismatch(h(9), { closed: true, head: h(11) })).toMatchObject({ mismatch: 'head-differs', firstBrokenSeq: 10 });
  expect(ledgerMismatch(h(9), { closed: true, head: h(7) })).toMatchObject({ mismatch: 'head-differs', firstBrokenSeq: 8 });
  expect(ledgerMismatch(h(9), { closed: true, head: h(9, 'other') })).toMatchObject({ mismatch: 'head-differs', firstBrokenSeq: 9 });
  expect(ledgerMismatch(h(9), { closed: false, head: h(9) })).toMatchObject({ mismatch: 'not-closed', firstBrokenSeq: 9 });
  expect(ledgerMismatch(h(9), undefined)).toMatchObject({ mismatch: 'not-found', recorded: h(9), actual: null, firstBrokenSeq: 1 });
});

test('only incident-closed entries with a well-formed head are ledger records', () => {
  expect(recordedHead({ event: 'incident-closed', evidence: { incidentId: 'i1', seq: 9, hash: 'h', ref: 'closed:i1' } })).toEqual({ incidentId: 'i1', seq: 9, hash: 'h' });
  expect(recordedHead({ event: 'note', evidence: { incidentId: 'i1', seq: 9, hash: 'h' } })).toBeUndefined();
  expect(recordedHead({ event: 'incident-closed', evidence: { incidentId: 'i1', seq: '9', hash: 'h' } })).toBeUndefined();
});

test('the recovery names the vault, the secret and the purge date', () => {
  const r = checkpointRecovery({ vaultUrl: 'https://kt-prod.vault.azure.net/', secretName: 'incident-i1-head', scheduledPurgeDate: '2030-04-01T00:00:00.000Z' });
  expect(r.how).toContain('--vault-name kt-prod --name incident-i1-head');
  expect(r.how).toContain('2030-04-01T00:00:00.000Z');
});
