/** The emulator publishing into the local Event Grid, delivered to a webhook subscriber. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startEventGrid } from '../../../local/eventgrid';
import { startKeyVaultEmulator } from '../../../local/keyvault';
import { ensureLocalTls } from '../../../local/tls';
import { DAY, keyVaultClients, tempDir } from '../../helpers/keyvault';

describe('Key Vault emulator → local Event Grid', () => {
  it('delivers Key Vault system-topic events to a subscriber', async () => {
    const tls = tempDir('kv-eg-tls-');
    const received: Array<{ eventType: string; subject: string; data: Record<string, unknown> }> = [];
    const hook: Server = createServer((req, res) => {
      let text = '';
      req.on('data', (c) => (text += c));
      req.on('end', () => {
        const events = JSON.parse(text) as Array<{ eventType: string; subject: string; data: Record<string, unknown> }>;
        const validation = events.find((e) => e.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent');
        if (validation) {
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ validationResponse: validation.data.validationCode }));
          return;
        }
        received.push(...events);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    const grid = await startEventGrid({ port: 0, tls: await ensureLocalTls(tls.path), log: () => undefined, validationRetryMs: 50 });
    const vault = await startKeyVaultEmulator({ port: 0, tlsDir: tls.path, events: { publish: (topic, events) => grid.publish(topic, events) } });
    try {
      grid.addSubscription({
        name: 'kv-events',
        topic: vault.topic,
        endpoint: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/api/kv`,
        includedEventTypes: ['Microsoft.KeyVault.SecretNewVersionCreated', 'Microsoft.KeyVault.SecretNearExpiry'],
      });
      const { secrets } = keyVaultClients(vault);
      const s = await secrets.setSecret('delivered', 'v', { expiresOn: new Date(vault.clock.now().getTime() + 40 * DAY * 1000) });
      await vault.clock.advance(15 * DAY);
      await grid.drain({ timeoutMs: 30_000 });
      // Event Grid does not promise order; compare as a set.
      expect(received.map((e) => e.eventType).sort()).toEqual(['Microsoft.KeyVault.SecretNearExpiry', 'Microsoft.KeyVault.SecretNewVersionCreated']);
      const near = received.find((e) => e.eventType.endsWith('NearExpiry'))!;
      expect(near.subject).toBe('delivered');
      expect(near.data).toMatchObject({ ObjectType: 'Secret', ObjectName: 'delivered', Version: s.properties.version, VaultName: 'keyturn-local' });
    } finally {
      await vault.close();
      await grid.close();
      await new Promise((r) => hook.close(r));
      tls.remove();
    }
  });
});
