/** The movable clock and Key Vault's Event Grid events (payload, timing, once per version, listeners). */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EventGridEvent } from '../../../local/keyvault';
import { advanceClock, DAY, emulatorSeconds, rawRequest, startTestVault, type TestVault } from '../../helpers/keyvault';

const iso = (unixSeconds: number): string => new Date(unixSeconds * 1000).toISOString();
const types = (events: EventGridEvent[]): string[] => events.map((e) => e.eventType.replace('Microsoft.KeyVault.', ''));

describe('Key Vault emulator: clock and events', () => {
  let vault: TestVault;
  beforeEach(async () => {
    vault = await startTestVault({ vaultName: 'kv-events', subscriptionId: '11111111-2222-3333-4444-555555555555', resourceGroup: 'rg-test' });
  });
  afterEach(() => vault.close());

  it('publishes SecretNewVersionCreated in the Event Grid schema with PascalCase data', async () => {
    const s = await vault.secrets.setSecret('payload-secret', 'v');
    const [event] = vault.recorder.events;
    const topic = '/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/rg-test/providers/Microsoft.KeyVault/vaults/kv-events';
    expect(vault.emulator.topic).toBe(topic);
    expect(event).toEqual({
      id: expect.stringMatching(/^[0-9a-f-]{36}$/),
      topic,
      subject: 'payload-secret',
      eventType: 'Microsoft.KeyVault.SecretNewVersionCreated',
      eventTime: expect.any(String),
      data: {
        Id: `${vault.emulator.url}/secrets/payload-secret/${s.properties.version}`,
        VaultName: 'kv-events',
        ObjectType: 'Secret',
        ObjectName: 'payload-secret',
        Version: s.properties.version,
        NBF: null,
        EXP: null,
      },
      dataVersion: '1',
      metadataVersion: '1',
    });
    expect(Date.parse(event!.eventTime)).toBeGreaterThanOrEqual(s.properties.createdOn!.getTime());
  });

  it('publishes KeyNewVersionCreated on create, import and rotate, with NBF/EXP as Unix seconds', async () => {
    const now = emulatorSeconds(vault.emulator);
    const k = await vault.keys.createEcKey('evt-key', { notBefore: new Date(now * 1000), expiresOn: new Date((now + 400 * DAY) * 1000) });
    const r = await vault.keys.rotateKey('evt-key');
    const imported = await vault.keys.importKey('evt-imported', { kty: 'oct', k: randomBytes(32) });
    expect(types(vault.recorder.events)).toEqual(['KeyNewVersionCreated', 'KeyNewVersionCreated', 'KeyNewVersionCreated']);
    expect(vault.recorder.events[2]!.data).toMatchObject({ ObjectName: 'evt-imported', Version: imported.properties.version, NBF: null, EXP: null });
    const [first, second] = vault.recorder.events;
    expect(first!.data).toMatchObject({ ObjectType: 'Key', ObjectName: 'evt-key', Version: k.properties.version, NBF: now, EXP: now + 400 * DAY });
    expect(second!.data).toMatchObject({ Version: r.properties.version, Id: `${vault.emulator.url}/keys/evt-key/${r.properties.version}` });
  });

  it('fires NearExpiry 30 days before exp and Expired at exp, each at its own time, in order, once', async () => {
    const now = emulatorSeconds(vault.emulator);
    const exp = now + 60 * DAY;
    const s = await vault.secrets.setSecret('expiring', 'v', { expiresOn: new Date(exp * 1000) });
    vault.recorder.clear();

    await vault.emulator.clock.advance(29 * DAY);
    expect(vault.recorder.events).toEqual([]);

    // One jump over both due times: each still happens at its own time, in order.
    await vault.emulator.clock.advance(40 * DAY);
    expect(types(vault.recorder.events)).toEqual(['SecretNearExpiry', 'SecretExpired']);
    const [near, expired] = vault.recorder.events;
    expect(near!.eventTime).toBe(iso(exp - 30 * DAY));
    expect(expired!.eventTime).toBe(iso(exp));
    expect(near!.data).toMatchObject({ Version: s.properties.version, EXP: exp, ObjectName: 'expiring' });

    await vault.emulator.clock.advance(100 * DAY);
    expect(vault.recorder.events).toHaveLength(2);
  });

  it('fires NearExpiry promptly for a version created inside the window', async () => {
    const exp = emulatorSeconds(vault.emulator) + 10 * DAY;
    await vault.secrets.setSecret('short-lived', 'v', { expiresOn: new Date(exp * 1000) });
    expect(types(vault.recorder.events)).toEqual(['SecretNewVersionCreated', 'SecretNearExpiry']);
  });

  it('only the current enabled version gets expiry events', async () => {
    const now = emulatorSeconds(vault.emulator);
    await vault.secrets.setSecret('replaced', 'old', { expiresOn: new Date((now + 40 * DAY) * 1000) });
    const newer = await vault.secrets.setSecret('replaced', 'new', { expiresOn: new Date((now + 200 * DAY) * 1000) });
    const disabled = await vault.secrets.setSecret('switched-off', 'x', { expiresOn: new Date((now + 40 * DAY) * 1000), enabled: false });
    vault.recorder.clear();
    await vault.emulator.clock.advance(100 * DAY);
    expect(vault.recorder.events).toEqual([]);
    await vault.emulator.clock.advance(100 * DAY);
    expect(vault.recorder.events.map((e) => [e.eventType, e.data.Version])).toEqual([
      ['Microsoft.KeyVault.SecretNearExpiry', newer.properties.version],
      ['Microsoft.KeyVault.SecretExpired', newer.properties.version],
    ]);
    expect(vault.recorder.events.some((e) => e.data.Version === disabled.properties.version)).toBe(false);
  });

  it('a changed exp fires again only if that event has not fired yet', async () => {
    const now = emulatorSeconds(vault.emulator);
    const s = await vault.secrets.setSecret('moving-exp', 'v', { expiresOn: new Date((now + 35 * DAY) * 1000) });
    await vault.emulator.clock.advance(10 * DAY); // NearExpiry fired at exp-30d
    expect(vault.recorder.ofType('SecretNearExpiry')).toHaveLength(1);
    const newExp = now + 100 * DAY;
    await vault.secrets.updateSecretProperties('moving-exp', s.properties.version!, { expiresOn: new Date(newExp * 1000) });
    await vault.emulator.clock.advance(120 * DAY);
    expect(vault.recorder.ofType('SecretNearExpiry')).toHaveLength(1);
    const expired = vault.recorder.ofType('SecretExpired');
    expect(expired).toHaveLength(1);
    expect(expired[0]!.eventTime).toBe(iso(newExp));
    expect(expired[0]!.data.EXP).toBe(newExp);
  });

  it('keys: the rotation policy Notify timeBeforeExpiry sets when KeyNearExpiry fires', async () => {
    const now = emulatorSeconds(vault.emulator);
    const exp = now + 50 * DAY;
    await vault.keys.createEcKey('notify-key', { expiresOn: new Date(exp * 1000) });
    await vault.keys.createEcKey('default-key', { expiresOn: new Date(exp * 1000) });
    await vault.keys.updateKeyRotationPolicy('notify-key', { lifetimeActions: [{ action: 'Notify', timeBeforeExpiry: 'P10D' }] });
    vault.recorder.clear();
    await vault.emulator.clock.advance(60 * DAY);
    const near = vault.recorder.ofType('KeyNearExpiry');
    expect(near.map((e) => [e.subject, e.eventTime])).toEqual([
      ['default-key', iso(exp - 30 * DAY)],
      ['notify-key', iso(exp - 10 * DAY)],
    ]);
    expect(vault.recorder.ofType('KeyExpired').map((e) => e.subject).sort()).toEqual(['default-key', 'notify-key']);
  });

  it('carries out a Rotate policy when the clock passes each trigger, in order', async () => {
    const key = await vault.keys.createEcKey('auto-rotated', { curve: 'P-384' });
    await vault.keys.updateKeyRotationPolicy('auto-rotated', {
      expiresIn: 'P90D',
      lifetimeActions: [{ action: 'Rotate', timeAfterCreate: 'P30D' }],
    });
    vault.recorder.clear();
    const created = key.properties.createdOn!.getTime() / 1000;
    await vault.emulator.clock.advance(95 * DAY);

    const versions = [];
    for await (const p of vault.keys.listPropertiesOfKeyVersions('auto-rotated')) versions.push(p);
    versions.sort((a, b) => a.createdOn!.getTime() - b.createdOn!.getTime());
    expect(versions).toHaveLength(4);
    const rotations = versions.slice(1);
    rotations.forEach((v, i) => {
      expect(v.createdOn!.getTime() / 1000).toBe(created + (i + 1) * 30 * DAY);
      expect(v.expiresOn!.getTime() - v.createdOn!.getTime()).toBe(90 * DAY * 1000);
    });
    const latest = await vault.keys.getKey('auto-rotated');
    expect(latest.properties.version).toBe(rotations[2]!.version);
    expect(latest.key!.crv).toBe('P-384');
    const newVersions = vault.recorder.ofType('KeyNewVersionCreated');
    expect(newVersions.map((e) => e.data.Version)).toEqual(rotations.map((v) => v.version));
    expect(newVersions.map((e) => e.eventTime)).toEqual(rotations.map((v) => v.createdOn!.toISOString()));
  });

  it('moves through the management API, reports the time, and POSTs listeners after due events', async () => {
    const calls: Array<{ body: { time: string }; eventsSeen: number }> = [];
    const listener: Server = createServer((req: IncomingMessage, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        calls.push({ body: JSON.parse(text), eventsSeen: vault.recorder.events.length });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    const failing = 'http://127.0.0.1:1/unreachable';
    try {
      const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/clock`;
      for (const u of [url, url, failing]) {
        const reg = await rawRequest(vault.emulator, 'POST', '/management/vault/time/listeners', { body: { url: u } });
        expect(reg.status).toBe(200);
      }
      expect((await rawRequest(vault.emulator, 'GET', '/management/vault/time/listeners')).body.listeners).toEqual([url, failing]);

      const exp = emulatorSeconds(vault.emulator) + 5 * DAY;
      await vault.secrets.setSecret('listened', 'v', { expiresOn: new Date(exp * 1000) });
      const before = vault.emulator.clock.now().getTime();
      const moved = await advanceClock(vault.emulator, 7 * DAY);
      expect(moved.offsetSeconds).toBeGreaterThanOrEqual(7 * DAY);
      expect(Date.parse(moved.time)).toBeGreaterThanOrEqual(before + 7 * DAY * 1000);

      // Exactly one POST (idempotent registration), after the due Expired event, before the PUT answered.
      expect(calls).toHaveLength(1);
      expect(calls[0]!.eventsSeen).toBe(vault.recorder.events.length);
      expect(types(vault.recorder.events)).toContain('SecretExpired');
      expect(Date.parse(calls[0]!.body.time)).toBeGreaterThanOrEqual(before + 7 * DAY * 1000);

      const now = await rawRequest(vault.emulator, 'GET', '/management/vault/time');
      expect(now.body.offsetSeconds).toBe(moved.offsetSeconds);
      expect((await rawRequest(vault.emulator, 'PUT', '/management/vault/time/all?seconds=-5')).status).toBe(400);

      // The programmatic move does the same.
      await vault.emulator.clock.advance(DAY);
      expect(calls).toHaveLength(2);

      // A listener that fails three moves in a row (a host that is gone) is dropped; the live one stays.
      await vault.emulator.clock.advance(DAY);
      expect((await rawRequest(vault.emulator, 'GET', '/management/vault/time/listeners')).body.listeners).toEqual([url]);
      expect(calls).toHaveLength(3);
    } finally {
      await new Promise((r) => listener.close(r));
    }
  });

  it('waits for published events to settle before telling clock listeners', async () => {
    const order: string[] = [];
    const inFlight: Promise<void>[] = [];
    const sink = {
      publish: () => {
        // Delivery completes a little later, as with a real subscriber.
        inFlight.push(new Promise<void>((r) => setTimeout(() => (order.push('event delivered'), r()), 300)));
      },
      settle: async () => void (await Promise.all(inFlight)),
    };
    const local = await startTestVault({ events: sink });
    const listener: Server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        order.push('listener told');
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => listener.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(listener.address() as AddressInfo).port}/clock`;
      await rawRequest(local.emulator, 'POST', '/management/vault/time/listeners', { body: { url } });
      const exp = emulatorSeconds(local.emulator) + 2 * DAY;
      await local.secrets.setSecret('settled', 'v', { expiresOn: new Date(exp * 1000) });
      await advanceClock(local.emulator, 3 * DAY);
      // NewVersionCreated, NearExpiry and Expired all delivered before the listener heard of the move.
      expect(order).toEqual(['event delivered', 'event delivered', 'event delivered', 'listener told']);
    } finally {
      await new Promise((r) => listener.close(r));
      await local.close();
    }
  });
});
