import { AdjustableClock } from '../../../local/host/clock';
import { HostLogger } from '../../../local/host/hostLogger';
import { parseSchedule } from '../../../local/host/schedule';
import { TimerScheduler, type TimerPayload } from '../../../local/host/timers';

// A frozen base clock: only jumps move time, so nothing fires on its own during the test.
function setup() {
  let base = Date.UTC(2030, 0, 1, 0, 0, 0);
  const clock = new AdjustableClock({ now: () => base });
  const runs: { name: string; payload: TimerPayload; reason: string }[] = [];
  let release: (() => void) | undefined;
  let block = false;
  const scheduler = new TimerScheduler(
    clock,
    async (name, payload, reason) => {
      runs.push({ name, payload, reason });
      if (block) await new Promise<void>((r) => (release = r));
      return true;
    },
    new HostLogger(() => undefined, 'Information'),
  );
  const add = (name: string, cron: string, extra: Partial<{ useMonitor: boolean; scheduled: boolean; runOnStartup: boolean }> = {}) =>
    scheduler.add({ name, schedule: parseSchedule(cron, { timezone: 'UTC' }), runOnStartup: false, useMonitor: true, scheduled: true, ...extra });
  return {
    clock,
    scheduler,
    runs,
    add,
    setBase: (ms: number) => (base = ms),
    blockRuns: () => (block = true),
    releaseRun: () => release?.(),
  };
}

describe('TimerScheduler clock jumps', () => {
  it('runs each passed timer once, past due, and reschedules from the new time', async () => {
    const t = setup();
    t.add('hourly', '0 0 * * * *');
    t.add('yearly', '0 0 0 1 1 *');
    t.scheduler.start();
    const start = t.clock.now();

    t.clock.set(start + 5 * 3_600_000 + 1000); // five hourly occurrences passed
    const ran = await t.scheduler.clockJumped();
    expect(ran).toEqual(['hourly']);
    expect(t.runs.map((r) => r.name)).toEqual(['hourly']);
    expect(t.runs[0]?.payload.IsPastDue).toBe(true);
    expect(t.scheduler.nextOccurrence('hourly')).toBeGreaterThan(t.clock.now());

    t.clock.set(start + 2 * 365 * 86_400_000);
    expect((await t.scheduler.clockJumped()).sort()).toEqual(['hourly', 'yearly']);
    expect(t.runs).toHaveLength(3);
    t.scheduler.stop();
  });

  it('reports monitor status like the timer extension', async () => {
    const t = setup();
    t.add('hourly', '0 0 * * * *');
    t.add('fast', '*/5 * * * * *', { useMonitor: false });
    t.scheduler.start();
    const firstNext = t.scheduler.nextOccurrence('hourly') as number;

    t.clock.set(firstNext);
    await t.scheduler.clockJumped();
    const first = t.runs.find((r) => r.name === 'hourly')?.payload;
    expect(first?.ScheduleStatus?.Last).toBe('0001-01-01T00:00:00');
    expect(Date.parse(first?.ScheduleStatus?.Next ?? '')).toBe(firstNext);
    expect(t.runs.find((r) => r.name === 'fast')?.payload.ScheduleStatus).toBeNull();

    t.clock.set(firstNext + 3_600_000);
    await t.scheduler.clockJumped();
    const second = t.runs.filter((r) => r.name === 'hourly')[1]?.payload;
    expect(Date.parse(second?.ScheduleStatus?.Last ?? '')).toBe(firstNext);
    t.scheduler.stop();
  });

  it('does nothing for a jump that passes no occurrence, or goes back', async () => {
    const t = setup();
    t.add('hourly', '0 30 * * * *');
    t.scheduler.start();
    t.clock.set(t.clock.now() + 1000);
    expect(await t.scheduler.clockJumped()).toEqual([]);
    t.clock.set(t.clock.now() - 86_400_000);
    expect(await t.scheduler.clockJumped()).toEqual([]);
    expect(t.runs).toHaveLength(0);
    t.scheduler.stop();
  });

  it('never overlaps runs of one function and coalesces scheduler runs', async () => {
    const t = setup();
    t.add('hourly', '0 0 * * * *');
    t.scheduler.start();
    t.blockRuns();
    const manual = t.scheduler.runManual('hourly');
    await new Promise((r) => setImmediate(r));
    expect(t.runs).toHaveLength(1);

    t.clock.set(t.clock.now() + 3 * 3_600_000);
    const jump1 = t.scheduler.clockJumped();
    t.clock.set(t.clock.now() + 3 * 3_600_000);
    const jump2 = t.scheduler.clockJumped();
    await new Promise((r) => setImmediate(r));
    expect(t.runs).toHaveLength(1); // still blocked behind the manual run

    t.releaseRun();
    await manual;
    await new Promise((r) => setImmediate(r));
    t.releaseRun();
    await Promise.all([jump1, jump2]);
    expect(t.runs.map((r) => r.reason.startsWith('Timer fired'))).toEqual([false, true]);
    t.scheduler.stop();
  });

  it('does not schedule disabled timers but still runs them manually', async () => {
    const t = setup();
    t.add('off', '0 0 * * * *', { scheduled: false });
    t.scheduler.start();
    t.clock.set(t.clock.now() + 10 * 3_600_000);
    expect(await t.scheduler.clockJumped()).toEqual([]);
    await t.scheduler.runManual('off');
    expect(t.runs.map((r) => r.name)).toEqual(['off']);
    t.scheduler.stop();
  });
});
