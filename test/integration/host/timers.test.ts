import { pollUntil, startHostProcess, type HostProcess } from '../../helpers/host';
import { EffectsFile, type Effect } from './fixtureEffects';

interface TimerInput {
  schedule: { adjustForDST: boolean };
  scheduleStatus: unknown;
  isPastDue: boolean;
}

describe('local host: timers on their schedules', () => {
  let host: HostProcess;
  const effects = new EffectsFile();

  beforeAll(async () => {
    host = await startHostProcess({
      env: {
        FIXTURE_EFFECTS_FILE: effects.path,
        // %FIXTURE_SCHEDULE% resolves to this (the environment wins over local.settings.json).
        FIXTURE_SCHEDULE: '*/1 * * * * *',
        // Each run outlasts the interval, so overlapping runs would show.
        FIXTURE_TIMER_DELAY_MS: '1500',
      },
    });
  });
  afterAll(async () => {
    await host?.stop();
    effects.remove();
  });

  it('marks a function with a bad schedule as in error, like func, and keeps the others', async () => {
    await host.waitForLine(
      "The 'badTimer' function is in error: The schedule expression '*/1 * * * *' was not recognized as a valid cron expression or timespan string.",
    );
    await pollUntil(() => effects.of('timer', 'settingTimer')[0]);
    expect(effects.of('timer', 'badTimer')).toHaveLength(0);
  });

  it('runs runOnStartup timers at start', async () => {
    const run = await pollUntil(() => effects.of('timer', 'startupTimer')[0]);
    expect((run.timer as TimerInput).isPastDue).toBe(false);
  });

  it('runs a %Setting% schedule repeatedly, without overlapping runs', async () => {
    await pollUntil(() => (effects.of('timer-done', 'settingTimer').length >= 3 ? true : undefined), 30_000);
    const sequence = effects
      .read()
      .filter((e: Effect) => (e.kind === 'timer' || e.kind === 'timer-done') && e.name === 'settingTimer')
      .map((e) => e.kind);
    // start, done, start, done, ... (a trailing start may be in progress)
    sequence.forEach((kind, i) => expect(kind).toBe(i % 2 === 0 ? 'timer' : 'timer-done'));
  });

  it('sends the host payload; the monitor is off for schedules under a minute', async () => {
    const timer = effects.of('timer', 'settingTimer')[0]?.timer as TimerInput;
    expect(timer).toEqual({ schedule: { adjustForDST: true }, scheduleStatus: null, isPastDue: false });
    await host.waitForLine(/Executing 'Functions\.settingTimer' \(Reason='Timer fired at [^']+', Id=[0-9a-f-]{36}\)/);
  });

  it('does not schedule a disabled timer', async () => {
    // disabledTimer's schedule fires every second; settingTimer has fired several times by now.
    await pollUntil(() => (effects.of('timer', 'settingTimer').length >= 3 ? true : undefined), 30_000);
    expect(effects.of('timer', 'disabledTimer')).toHaveLength(0);
  });
});

describe('local host: LOCALHOST_DISABLE_TIMERS', () => {
  it('disables the scheduler but keeps admin runs', async () => {
    const effects = new EffectsFile();
    const host = await startHostProcess({
      env: { FIXTURE_EFFECTS_FILE: effects.path, FIXTURE_SCHEDULE: '*/1 * * * * *', LOCALHOST_DISABLE_TIMERS: 'true' },
    });
    try {
      const res = await fetch(`${host.url}/admin/functions/mondayTimer`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"input":""}',
      });
      expect(res.status).toBe(202);
      await pollUntil(() => effects.of('timer-done', 'mondayTimer')[0]);
      // A second admin run queued after the first shows time passed; still no scheduled or startup runs.
      await fetch(`${host.url}/admin/functions/mondayTimer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      await pollUntil(() => (effects.of('timer-done', 'mondayTimer').length >= 2 ? true : undefined));
      expect(effects.of('timer', 'startupTimer')).toHaveLength(0);
      expect(effects.of('timer', 'settingTimer')).toHaveLength(0);
      expect(((await (await fetch(`${host.url}/admin/host/status`)).json()) as { timersEnabled: boolean }).timersEnabled).toBe(false);
    } finally {
      await host.stop();
      effects.remove();
    }
  });
});
