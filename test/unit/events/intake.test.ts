/**
 * The one Key Vault event intake: dead letters before any handler, handlers asked in
 * order until one answers `handled`, and lookups keyed by event data that only ever
 * see own properties (a vault named `constructor` is not Keyturn's).
 */
import { KeyVaultEventIntake } from '../../../shared/services/events/intake';
import type { HandlerAnswer, KeyVaultEventHandler, RoutedEvent } from '../../../shared/services/events/ports';
import { FakeClock, FakeDeadLetters, MemoryLogger } from '../renewal/fakes';

const topic = (vault: string) => `/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/${vault}`;
const event = (vault: string, objectType = 'Secret', kind = 'SecretNearExpiry', name = 'db-key') => ({
  id: `e-${Math.random()}`,
  topic: topic(vault),
  subject: name,
  eventType: `Microsoft.KeyVault.${kind.replace('Secret', objectType)}`,
  eventTime: '2030-01-01T00:00:00Z',
  data: { VaultName: vault, ObjectType: objectType, ObjectName: name, Version: 'abc', NBF: null, EXP: 1 },
  dataVersion: '1',
});

function world(vaults: Record<string, string> = { local: 'https://127.0.0.1:8443', prod: 'https://contoso-prod.vault.azure.net' }) {
  const deadLetters = new FakeDeadLetters();
  const log = new MemoryLogger();
  const seen: string[] = [];
  const handler = (name: string, answer: (r: RoutedEvent) => HandlerAnswer): KeyVaultEventHandler => ({
    name,
    async handle(routed) {
      seen.push(`${name}:${routed.vaultAlias}:${routed.event.objectName}`);
      return answer(routed);
    },
  });
  const intake = new KeyVaultEventIntake({ deadLetters, clock: new FakeClock(), log, settings: { vaults, eventVaultNames: { 'keyturn-local': 'local' } } });
  return { intake, deadLetters, log, seen, handler };
}

test('handlers are asked in order until one answers handled', async () => {
  const w = world();
  w.intake
    .register(w.handler('secrets', (r) => (r.event.objectType === 'Secret' ? { answer: 'handled', outcome: 'started', detail: { id: 1 } } : { answer: 'not-mine' })))
    .register(w.handler('keys', () => ({ answer: 'handled', outcome: 'rolled' })));
  expect(await w.intake.receive(event('keyturn-local'))).toEqual({ outcome: 'handled', handler: 'secrets', result: 'started', detail: { id: 1 } });
  expect(await w.intake.receive(event('contoso-prod', 'Key'))).toEqual({ outcome: 'handled', handler: 'keys', result: 'rolled' });
  expect(w.seen).toEqual(['secrets:local:db-key', 'secrets:prod:db-key', 'keys:prod:db-key']);
  expect(() => w.intake.register(w.handler('keys', () => ({ answer: 'not-mine' })))).toThrow(/registered twice/);
});

test('an event no handler takes is acknowledged with the first reason given', async () => {
  const w = world();
  w.intake.register(w.handler('a', () => ({ answer: 'not-mine' }))).register(w.handler('b', () => ({ answer: 'not-mine', reason: 'not managed by Keyturn' })));
  expect(await w.intake.receive(event('local'))).toEqual({ outcome: 'ignored', reason: 'not managed by Keyturn' });
  expect(w.log.lines.some((l) => l.startsWith('info Key Vault event acknowledged'))).toBe(true);
  expect(w.deadLetters.letters.size).toBe(0);
});

test.each(['constructor', 'toString', 'hasOwnProperty', 'valueOf'])('a vault named %s is not ours: dead-lettered as spoofed, no handler asked', async (vault) => {
  const w = world();
  w.intake.register(w.handler('a', () => ({ answer: 'handled', outcome: 'x' })));
  expect(await w.intake.receive(event(vault))).toEqual({ outcome: 'dead-lettered', reason: 'spoofed' });
  expect(w.seen).toEqual([]);
  expect([...w.deadLetters.letters.values()][0]).toMatchObject({ reason: 'spoofed', detail: expect.stringContaining(vault) });
});

test('an event mapped to an alias that is only an inherited property is not ours either', async () => {
  const w = world();
  const intake = new KeyVaultEventIntake({
    deadLetters: w.deadLetters,
    clock: new FakeClock(),
    log: w.log,
    settings: { vaults: { local: 'https://127.0.0.1:8443' }, eventVaultNames: { 'keyturn-local': 'constructor' } },
  }).register(w.handler('a', () => ({ answer: 'handled', outcome: 'x' })));
  expect(await intake.receive(event('keyturn-local'))).toEqual({ outcome: 'dead-lettered', reason: 'spoofed' });
});

test('malformed and unsupported events are dead letters before any handler', async () => {
  const w = world();
  w.intake.register(w.handler('a', () => ({ answer: 'handled', outcome: 'x' })));
  expect(await w.intake.receive({ nonsense: true })).toEqual({ outcome: 'dead-lettered', reason: 'malformed' });
  expect(await w.intake.receive({ ...event('local'), eventType: 'Microsoft.Storage.BlobCreated' })).toEqual({ outcome: 'dead-lettered', reason: 'unsupported' });
  expect(w.seen).toEqual([]);
});
