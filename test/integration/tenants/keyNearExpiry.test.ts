/**
 * KeyNearExpiry on a service-managed tenant version starts a rekey through the event
 * intake; a redelivered event is a no-op; the emulator's own event (its clock moved to
 * 30 days before `exp`) rekeys the tenant with no request at all.
 */
import { eventually } from '../../helpers/process';
import { type TestStack, call, startStack } from '../../helpers/stack';

const DAY_S = 86_400;

describe('When a service-managed tenant key nears its expiry on the local stack', () => {
  let stack: TestStack;
  let api: string;
  const TENANT = 'expiring';

  beforeAll(async () => {
    stack = await startStack();
    api = `${stack.host!.url}/api`;
    expect((await call('POST', `${api}/tenants`, { body: { tenantId: TENANT, topology: 'service-managed' } })).status).toBe(201);
  });
  afterAll(async () => {
    await stack?.stop();
  });

  const tenant = async () => (await call('GET', `${api}/tenants/${TENANT}`)).json().tenant;

  function nearExpiry(kid: string, id: string) {
    const [, name, version] = /\/keys\/([^/]+)\/([^/]+)$/.exec(kid)!;
    return {
      id,
      topic: stack.keyVault.topic,
      subject: name,
      eventType: 'Microsoft.KeyVault.KeyNearExpiry',
      eventTime: new Date().toISOString(),
      dataVersion: '1',
      metadataVersion: '1',
      data: { Id: kid, VaultName: stack.keyVault.vaultName, ObjectType: 'Key', ObjectName: name, Version: version, NBF: null, EXP: 1767225600 },
    };
  }
  const deliver = (event: object) =>
    call('POST', `${stack.host!.url}/runtime/webhooks/EventGrid?functionName=keyVaultEvents`, { body: [event], headers: { 'aeg-event-type': 'Notification' } });

  test('then the event rekeys it once, and a redelivery is a no-op', async () => {
    const first = (await tenant()).activeKid;
    const event = nearExpiry(first, 'near-1');
    expect((await deliver(event)).status).toBe(202);
    const t = await eventually(async () => {
      const now = await tenant();
      return now.activeKid !== first ? now : undefined;
    }, 'the rekey from the event', 30_000, 250);
    expect(t.state).toBe('changeover');
    expect((await deliver(event)).status).toBe(202);
    expect((await deliver({ ...event, id: 'near-1-again' })).status).toBe(202);
    await eventually(() => stack.host!.logs().filter((l) => l.includes('that version no longer protects new content')).length >= 2 || undefined, 'both redeliveries acknowledged', 30_000, 250);
    expect((await tenant()).versions).toHaveLength(2);
  });

  test("then the emulator's own KeyNearExpiry (its clock moved) rekeys the tenant again", async () => {
    const before = await tenant();
    await stack.keyVault.moveClock(340 * DAY_S);
    const after = await eventually(async () => {
      const t = await tenant();
      return t.activeKid !== before.activeKid ? t : undefined;
    }, 'a rekey from the emulator event', 60_000, 500);
    expect(after.versions).toHaveLength(3);
  });
});
