/**
 * The app on the local stack, as `npm start` runs it: health, the function list,
 * Event Grid webhook delivery, and a dependency going down.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunningCosmos, startCosmos } from '../../../local/cosmos';
import { ensureLocalTls } from '../../../local/tls';
import { eventually } from '../../helpers/process';
import { type TestStack, call, freePort, startStack } from '../../helpers/stack';

describe('When Keyturn runs on the local stack', () => {
  let stack: TestStack;
  let ownCosmos: RunningCosmos;
  let tlsDir: string;

  beforeAll(async () => {
    // A Cosmos server this test owns, so it can stop it under the running app.
    tlsDir = await mkdtemp(join(tmpdir(), 'keyturn-health-'));
    const tls = await ensureLocalTls(tlsDir);
    ownCosmos = await startCosmos({ port: 0, tls });
    stack = await startStack({
      env: { KEYTURN_COSMOS_ENDPOINT: ownCosmos.endpoint, KEYTURN_COSMOS_CA_FILE: tls.caFile },
    });
  });

  afterAll(async () => {
    await stack?.stop();
    await ownCosmos?.close().catch(() => {});
    await rm(tlsDir, { recursive: true, force: true });
  });

  test('then /api/health reports every dependency ok', async () => {
    const res = await call('GET', `${stack.host!.url}/api/health`);
    expect(res.status).toBe(200);
    const body = res.json<{ status: string; dependencies: Record<string, { status: string; latencyMs: number }> }>();
    expect(body.status).toBe('ok');
    expect(body.dependencies.storage?.status).toBe('ok');
    expect(body.dependencies.cosmos?.status).toBe('ok');
    expect(body.dependencies['keyvault:local']?.status).toBe('ok');
    expect(typeof body.dependencies.cosmos?.latencyMs).toBe('number');
  });

  test("then /api/health lists the customer's vault contoso-byok as reachable, not required", async () => {
    const body = (await call('GET', `${stack.host!.url}/api/health`)).json<{ status: string; dependencies: Record<string, unknown> }>();
    expect(stack.env.KEYTURN_CUSTOMER_VAULTS).toMatch(/^contoso-byok=https:\/\/127\.0\.0\.1:\d+$/);
    expect(body.dependencies['keyvault:contoso-byok']).toMatchObject({ status: 'ok', required: false });
  });

  test("then an unreachable customer vault is reported but does not fail health", async () => {
    const other = await stack.startSecondHost({ KEYTURN_CUSTOMER_VAULTS: `contoso-byok=${stack.vaults['contoso-byok']!.url},gone-vault=https://127.0.0.1:${await freePort()}` });
    try {
      const res = await call('GET', `${other.url}/api/health`);
      expect(res.status).toBe(200);
      const body = res.json<{ status: string; dependencies: Record<string, { status: string; error?: string }> }>();
      expect(body.status).toBe('ok');
      expect(body.dependencies['keyvault:gone-vault']).toMatchObject({ status: 'error', error: 'unreachable', required: false });
      expect(body.dependencies['keyvault:contoso-byok']).toMatchObject({ status: 'ok' });
    } finally {
      await other.stop();
    }
  });

  test('then /admin/functions lists the app functions', async () => {
    const res = await call('GET', `${stack.host!.url}/admin/functions`);
    expect(res.status).toBe(200);
    const names = res.json<{ name: string }[]>().map((f) => f.name);
    expect(names).toEqual(expect.arrayContaining(['health', 'keyVaultEvents']));
  });

  test('then a SubscriptionValidation event gets its validationResponse', async () => {
    const res = await call('POST', `${stack.host!.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, {
      headers: { 'aeg-event-type': 'SubscriptionValidation' },
      body: [
        {
          id: 'v1',
          topic: stack.keyVault.topic,
          subject: '',
          eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
          eventTime: new Date().toISOString(),
          data: { validationCode: 'code-123' },
          dataVersion: '2',
          metadataVersion: '1',
        },
      ],
    });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ validationResponse: 'code-123' });
  });

  test('then the vault system topic delivers to the app through the local Event Grid', async () => {
    await stack.keyVault.secretClient().setSecret('health-probe', 'value-not-managed');
    const delivered = await eventually(async () => {
      const deliveries = await stack.eventGrid.deliveries();
      return deliveries.find((d: any) => JSON.stringify(d).includes('health-probe') && d.state === 'delivered');
    }, 'a delivered NewVersionCreated event');
    expect(JSON.stringify(delivered)).toContain('Microsoft.KeyVault.SecretNewVersionCreated');
  });

  test('then stopping Cosmos makes /api/health answer 503 naming it', async () => {
    await ownCosmos.close();
    const res = await call('GET', `${stack.host!.url}/api/health`);
    expect(res.status).toBe(503);
    const body = res.json<{ status: string; dependencies: Record<string, { status: string; error?: string }> }>();
    expect(body.status).toBe('error');
    expect(body.dependencies.cosmos?.status).toBe('error');
    expect(body.dependencies.storage?.status).toBe('ok');
  });
});
