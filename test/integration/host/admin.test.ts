import { pollUntil, startHostProcess, type HostProcess } from '../../helpers/host';
import { EffectsFile } from './fixtureEffects';

interface Listed {
  name: string;
  triggerType: string;
  isDisabled: boolean;
  error?: string;
  url?: string;
  methods?: string[];
  schedule?: string;
}

describe('local host: admin API', () => {
  let host: HostProcess;
  const effects = new EffectsFile();

  beforeAll(async () => {
    host = await startHostProcess({ env: { LOCALHOST_DISABLE_TIMERS: 'true', FIXTURE_EFFECTS_FILE: effects.path } });
  });
  afterAll(async () => {
    await host?.stop();
    effects.remove();
  });

  const run = (name: string, body: string | null, contentType = 'application/json') =>
    fetch(`${host.url}/admin/functions/${name}`, {
      method: 'POST',
      headers: contentType ? { 'content-type': contentType } : {},
      ...(body !== null ? { body } : {}),
    });

  it('lists functions with trigger type, HTTP URL and methods, timer schedule, state', async () => {
    const res = await fetch(`${host.url}/admin/functions`);
    expect(res.status).toBe(200);
    const list = (await res.json()) as Listed[];
    const byName = new Map(list.map((f) => [f.name, f]));
    expect(byName.get('itemById')).toMatchObject({ triggerType: 'httpTrigger', url: `${host.url}/api/items/{id:int}`, methods: ['GET'] });
    expect(byName.get('settingTimer')).toMatchObject({ triggerType: 'timerTrigger', schedule: '%FIXTURE_SCHEDULE%' });
    expect(byName.get('onEvent')).toMatchObject({ triggerType: 'eventGridTrigger' });
    expect(byName.get('disabledTimer')?.isDisabled).toBe(true);
    expect(byName.get('badTimer')?.error).toMatch(/not recognized as a valid cron expression/);
  });

  it('reports host status', async () => {
    const res = await fetch(`${host.url}/admin/host/status`);
    expect(res.status).toBe(200);
    const status = (await res.json()) as { state: string; timersEnabled: boolean; errors: string[] };
    expect(status.state).toBe('Running');
    expect(status.timersEnabled).toBe(false);
    expect(status.errors.some((e) => e.includes("'badTimer'"))).toBe(true);
  });

  it('runs a non-HTTP function with its input, 202 at once, case-insensitive name', async () => {
    const res = await run('QUEUEWORKER', JSON.stringify({ input: 'item-42' }));
    expect(res.status).toBe(202);
    const done = await pollUntil(() => effects.of('queue').find((e) => e.item === 'item-42'));
    expect(done.functionName).toBe('queueWorker');
  });

  it('runs a timer function with a host-shaped timer payload even when timers are disabled', async () => {
    expect((await run('settingTimer', JSON.stringify({ input: '' }))).status).toBe(202);
    const effect = await pollUntil(() => effects.of('timer', 'settingTimer')[0]);
    const timer = effect.timer as { schedule: unknown; scheduleStatus: Record<string, string> | null; isPastDue: boolean };
    expect(timer.schedule).toEqual({ adjustForDST: true });
    expect(timer.isPastDue).toBe(false);
    expect(Object.keys(timer.scheduleStatus ?? {}).sort()).toEqual(['last', 'lastUpdated', 'next']);
    await host.waitForLine(/Executing 'Functions\.settingTimer' \(Reason='This function was programmatically called via the host APIs\.', Id=/);
  });

  it('runs a disabled timer manually', async () => {
    expect((await run('disabledTimer', JSON.stringify({}))).status).toBe(202);
    await pollUntil(() => effects.of('timer', 'disabledTimer')[0]);
  });

  it('passes a JSON input to an Event Grid function as the event', async () => {
    const event = { id: 'admin-evt', eventType: 'Test', subject: 's', data: { via: 'admin' } };
    expect((await run('onEvent', JSON.stringify({ input: JSON.stringify(event) }))).status).toBe(202);
    const effect = await pollUntil(() => effects.of('eventgrid').find((e) => (e.event as { id?: string }).id === 'admin-evt'));
    expect(effect.event).toEqual(event);
  });

  it('answers 400 for a null or invalid body, 404 for unknown or in-error functions, 415 without JSON', async () => {
    expect((await run('queueWorker', 'null')).status).toBe(400);
    expect((await run('queueWorker', '{not json')).status).toBe(400);
    expect((await run('noSuchFunction', '{}')).status).toBe(404);
    expect((await run('badTimer', '{}')).status).toBe(404);
    expect((await run('queueWorker', '{"input":"x"}', 'text/plain')).status).toBe(415);
  });
});

describe('local host: lifecycle hooks', () => {
  it.each(['SIGTERM', 'SIGINT'] as const)('runs appStart after load and appTerminate on %s, then exits 0', async (signal) => {
    const effects = new EffectsFile();
    const host = await startHostProcess({ env: { LOCALHOST_DISABLE_TIMERS: 'true', FIXTURE_EFFECTS_FILE: effects.path } });
    try {
      expect(effects.of('appStart')).toHaveLength(1);
      expect(await host.stop(signal)).toBe(0);
      // hookData set in appStart is visible in appTerminate (the app-level hook data).
      expect(effects.of('appTerminate')).toEqual([expect.objectContaining({ startedBy: 'fixture' })]);
    } finally {
      await host.stop('SIGKILL');
      effects.remove();
    }
  });
});
