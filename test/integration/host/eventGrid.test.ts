import { startHostProcess, type HostProcess } from '../../helpers/host';
import { EffectsFile } from './fixtureEffects';

describe('local host: Event Grid webhook', () => {
  let host: HostProcess;
  const effects = new EffectsFile();

  beforeAll(async () => {
    host = await startHostProcess({ env: { LOCALHOST_DISABLE_TIMERS: 'true', FIXTURE_EFFECTS_FILE: effects.path } });
  });
  afterAll(async () => {
    await host?.stop();
    effects.remove();
  });

  const post = (body: unknown, headers: Record<string, string> = {}, fn = 'onEvent', path = '/runtime/webhooks/EventGrid') =>
    fetch(`${host.url}${path}?functionName=${encodeURIComponent(fn)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  const event = (id: string, data: Record<string, unknown> = {}) => ({
    id,
    topic: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/v',
    subject: 'secret-a',
    eventType: 'Microsoft.KeyVault.SecretNearExpiry',
    eventTime: '2030-01-01T00:00:00Z',
    data: { VaultName: 'v', ObjectName: 'secret-a', ...data },
    dataVersion: '1',
    metadataVersion: '1',
  });

  const delivered = (id: string) => effects.of('eventgrid').filter((e) => (e.event as { id?: string }).id === id);

  it('answers the subscription validation handshake', async () => {
    const res = await post(
      [{ id: 'v1', eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent', data: { validationCode: 'code-123', validationUrl: 'https://x' } }],
      { 'aeg-event-type': 'SubscriptionValidation' },
    );
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ validationResponse: 'code-123' });
  });

  it('delivers each event of a Notification batch unchanged and answers 202', async () => {
    const batch = [event('n1'), event('n2')];
    const res = await post(batch, { 'aeg-event-type': 'Notification' }, 'onEvent', '/RUNTIME/webhooks/eventgrid');
    expect(res.status).toBe(202);
    expect(delivered('n1').map((e) => e.event)).toEqual([batch[0]]);
    expect(delivered('n2').map((e) => e.event)).toEqual([batch[1]]);
    expect(delivered('n1')[0]?.triggerMetadataKeys).toContain('data');
  });

  it('accepts a single event object', async () => {
    expect((await post(event('single'), { 'aeg-event-type': 'Notification' })).status).toBe(202);
    expect(delivered('single')).toHaveLength(1);
  });

  it('answers 500 when any invocation fails, after running all of them', async () => {
    const res = await post([event('ok-1'), event('bad-1', { fail: true })], { 'aeg-event-type': 'Notification' });
    expect(res.status).toBe(500);
    expect(await res.text()).toContain('Functions.onEvent');
    expect(delivered('ok-1')).toHaveLength(1);
    expect(delivered('bad-1')).toHaveLength(1);
  });

  it('answers 202 to Unsubscribe and 400 for a missing or unknown aeg-event-type', async () => {
    expect((await post([event('u')], { 'aeg-event-type': 'Unsubscribe' })).status).toBe(202);
    expect((await post([event('missing')])).status).toBe(400);
    expect((await post([event('other')], { 'aeg-event-type': 'Something' })).status).toBe(400);
    expect(delivered('u')).toHaveLength(0);
    expect(delivered('missing')).toHaveLength(0);
    expect(delivered('other')).toHaveLength(0);
  });

  it('answers 404 for an unknown function (exact name)', async () => {
    const res = await post([event('x')], { 'aeg-event-type': 'Notification' }, 'OnEvent');
    expect(res.status).toBe(404);
    expect(await res.text()).toBe("cannot find function: 'OnEvent'");
    expect((await post([event('y')], { 'aeg-event-type': 'Notification' }, 'echo')).status).toBe(404);
  });

  it('delivers CloudEvents with the Notification header, and like func refuses them without it', async () => {
    const ce = { specversion: '1.0', id: 'ce-1', source: '/vaults/v', type: 'Microsoft.KeyVault.SecretNearExpiry', subject: 'a', data: { ObjectName: 'a' } };
    expect((await post([{ ...ce, id: 'ce-0' }])).status).toBe(400);
    expect((await post([ce], { 'aeg-event-type': 'Notification' })).status).toBe(202);
    expect(delivered('ce-1').map((e) => e.event)).toEqual([ce]);
    expect(delivered('ce-0')).toEqual([]);
  });

  it('answers the CloudEvents OPTIONS handshake', async () => {
    const url = `${host.url}/runtime/webhooks/EventGrid?functionName=onEvent`;
    const withOrigin = await fetch(url, { method: 'OPTIONS', headers: { 'WebHook-Request-Origin': 'eventemitter.example.com' } });
    expect(withOrigin.status).toBe(200);
    expect(withOrigin.headers.get('webhook-allowed-origin')).toBe('eventemitter.example.com');
    const without = await fetch(url, { method: 'OPTIONS' });
    expect(without.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');
  });
});
