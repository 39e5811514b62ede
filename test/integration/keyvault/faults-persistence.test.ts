/** Fault injection (the SDK's retries absorb it) and persistence across restarts. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, verify as nodeVerify } from 'node:crypto';
import { DAY, nodePublicKey, rawRequest, startTestVault, tempDir } from '../../helpers/keyvault';

describe('Key Vault emulator: fault injection', () => {
  it('answers every vault request with 429/503 + Retry-After at rate 1, but not the challenge or /management', async () => {
    const vault = await startTestVault({ faults: { rate: 1, seed: 3 } });
    try {
      const statuses = [];
      for (let i = 0; i < 4; i++) {
        const res = await rawRequest(vault.emulator, 'PUT', '/secrets/faulty', { token: 't', body: { value: 'v' } });
        expect(res.headers['retry-after']).toBe('1');
        statuses.push(res.status);
      }
      expect(new Set(statuses)).toEqual(new Set([429, 503]));
      expect((await rawRequest(vault.emulator, 'GET', '/management/faults')).body).toEqual({ rate: 1, served: 4 });
      expect((await rawRequest(vault.emulator, 'GET', '/secrets/faulty')).status).toBe(401);
      expect((await rawRequest(vault.emulator, 'GET', '/management/vault/time')).status).toBe(200);
      // Nothing was written by the refused requests.
      expect(vault.recorder.events).toEqual([]);
    } finally {
      await vault.close();
    }
  });

  it('with 20% faults the SDK still succeeds thanks to its retries', async () => {
    const vault = await startTestVault({ faults: { rate: 0.2, seed: 42 } });
    try {
      await vault.secrets.setSecret('resilient', 'one');
      await vault.secrets.setSecret('resilient', 'two');
      expect((await vault.secrets.getSecret('resilient')).value).toBe('two');
      const key = await vault.keys.createEcKey('resilient-key');
      const digest = createHash('sha256').update('x').digest();
      const sig = await vault.keys.getCryptographyClient('resilient-key').sign('ES256', digest);
      expect(nodeVerify('sha256', Buffer.from('x'), { key: nodePublicKey(key.key!), dsaEncoding: 'ieee-p1363' }, sig.result)).toBe(true);
      // Each new version was created exactly once despite the retries.
      expect(vault.recorder.ofType('SecretNewVersionCreated')).toHaveLength(2);
      // Faults were really served (and absorbed): a silent injector would pass the above too.
      const faults = (await rawRequest(vault.emulator, 'GET', '/management/faults')).body;
      expect(faults.rate).toBe(0.2);
      expect(faults.served).toBeGreaterThan(0);
    } finally {
      await vault.close();
    }
  });
});

describe('Key Vault emulator: fault counter', () => {
  it('reports no faults when injection is off', async () => {
    const vault = await startTestVault();
    try {
      await vault.secrets.setSecret('calm', 'v');
      expect((await rawRequest(vault.emulator, 'GET', '/management/faults')).body).toEqual({ rate: 0, served: 0 });
    } finally {
      await vault.close();
    }
  });
});

describe('Key Vault emulator: persistence', () => {
  it('writes state atomically and loads it on restart (secrets, keys, policy, clock, event marks)', async () => {
    const data = tempDir('kv-data-');
    try {
      const first = await startTestVault({ dataDir: data.path });
      const secret = await first.secrets.setSecret('kept', 'persisted-value', { expiresOn: new Date(Date.now() + 40 * DAY * 1000) });
      const key = await first.keys.createRsaKey('kept-key');
      await first.keys.updateKeyRotationPolicy('kept-key', { lifetimeActions: [{ action: 'Notify', timeBeforeExpiry: 'P7D' }] });
      await first.emulator.clock.advance(15 * DAY); // NearExpiry for 'kept' fires now
      expect(first.recorder.ofType('SecretNearExpiry')).toHaveLength(1);
      const offset = first.emulator.clock.now().getTime() - Date.now();
      await first.close();

      expect(readdirSync(data.path).filter((f) => f.endsWith('.tmp'))).toEqual([]);
      expect(existsSync(join(data.path, 'vault.json'))).toBe(true);
      expect(() => JSON.parse(readFileSync(join(data.path, 'vault.json'), 'utf8'))).not.toThrow();

      const second = await startTestVault({ dataDir: data.path });
      try {
        expect((await second.secrets.getSecret('kept')).value).toBe('persisted-value');
        expect((await second.secrets.getSecret('kept')).properties.version).toBe(secret.properties.version);
        const again = await second.keys.getKey('kept-key');
        expect(Buffer.from(again.key!.n!)).toEqual(Buffer.from(key.key!.n!));
        const digest = createHash('sha256').update('after restart').digest();
        const sig = await second.keys.getCryptographyClient('kept-key').sign('RS256', digest);
        expect(nodeVerify('sha256', Buffer.from('after restart'), nodePublicKey(key.key!), sig.result)).toBe(true);
        expect((await second.keys.getKeyRotationPolicy('kept-key')).lifetimeActions).toEqual([{ action: 'Notify', timeBeforeExpiry: 'P7D' }]);
        // The clock offset survives; the NearExpiry already sent is not repeated.
        expect(second.emulator.clock.now().getTime() - Date.now()).toBeGreaterThanOrEqual(offset - 1000);
        await second.emulator.clock.advance(DAY);
        expect(second.recorder.ofType('SecretNearExpiry')).toHaveLength(0);
      } finally {
        await second.close();
      }
    } finally {
      data.remove();
    }
  });
});
