import {
  effectiveUseMonitor,
  formatDotNetDate,
  normaliseNcrontab,
  parseSchedule,
  parseTimeSpan,
  resolveSettingReferences,
} from '../../../local/host/schedule';

describe('NCRONTAB normalisation', () => {
  it('shortens day and month names given by any prefix of at least 3 letters', () => {
    expect(normaliseNcrontab('0 0 12 * * Monday')).toBe('0 0 12 * * MON');
    expect(normaliseNcrontab('0 0 12 * January-March thurs,Sat')).toBe('0 0 12 * JAN-MAR THU,SAT');
    expect(normaliseNcrontab('  0   */5 *  * * *  ')).toBe('0 */5 * * * *');
  });

  it('leaves unknown words for the parser to reject', () => {
    expect(normaliseNcrontab('0 0 12 * * Someday')).toBe('0 0 12 * * Someday');
    expect(() => parseSchedule('0 0 12 * * Someday')).toThrow(/not recognized/);
  });
});

describe('parseSchedule', () => {
  const from = Date.UTC(2030, 0, 1, 0, 0, 0);

  it('needs six fields', () => {
    expect(() => parseSchedule('*/1 * * * *')).toThrow(
      "The schedule expression '*/1 * * * *' was not recognized as a valid cron expression or timespan string.",
    );
  });

  it('computes the next occurrence strictly after a time', () => {
    const s = parseSchedule('*/10 * * * * *', { timezone: 'UTC' });
    const next = s.nextAfter(from) as number;
    expect(next).toBeGreaterThan(from);
    expect(new Date(next).getUTCSeconds() % 10).toBe(0);
    expect(s.nextAfter(next)).toBe(next + 10_000);
  });

  it('uses AND semantics for day-of-month and day-of-week, like NCrontab', () => {
    const s = parseSchedule('0 0 0 13 * Friday', { timezone: 'UTC' });
    let t = from;
    for (let i = 0; i < 3; i++) {
      t = s.nextAfter(t) as number;
      const d = new Date(t);
      expect(d.getUTCDate()).toBe(13);
      expect(d.getUTCDay()).toBe(5);
    }
  });

  it('accepts NCrontab step forms such as 5/10', () => {
    const s = parseSchedule('5/10 * * * * *', { timezone: 'UTC' });
    expect(new Date(s.nextAfter(from) as number).getUTCSeconds()).toBe(5);
  });

  it('falls back to TimeSpan schedules', () => {
    expect(parseTimeSpan('00:05:00')).toBe(300_000);
    expect(parseTimeSpan('1.02:00:00')).toBe(26 * 3_600_000);
    expect(parseTimeSpan('not a span')).toBeNull();
    const s = parseSchedule('00:00:30');
    expect(s.kind).toBe('timespan');
    expect(s.nextAfter(from)).toBe(from + 30_000);
  });
});

describe('%AppSetting% references', () => {
  it('resolves from the environment', () => {
    expect(resolveSettingReferences('%SCHED%', { SCHED: '0 0 * * * *' })).toBe('0 0 * * * *');
  });
  it('fails for an unknown setting', () => {
    expect(() => resolveSettingReferences('%MISSING_X%', {})).toThrow("'%MISSING_X%' does not resolve to a value.");
  });
});

describe('schedule monitor default', () => {
  const now = Date.UTC(2030, 0, 1);
  it('is on for schedules of a minute or more and off for faster ones', () => {
    expect(effectiveUseMonitor(parseSchedule('0 */5 * * * *'), undefined, now)).toBe(true);
    expect(effectiveUseMonitor(parseSchedule('*/5 * * * * *'), undefined, now)).toBe(false);
    expect(effectiveUseMonitor(parseSchedule('*/5 * * * * *'), true, now)).toBe(false);
    expect(effectiveUseMonitor(parseSchedule('0 */5 * * * *'), false, now)).toBe(false);
  });
});

describe('formatDotNetDate', () => {
  it('uses DateTime.MinValue for never and an offset otherwise', () => {
    expect(formatDotNetDate(null)).toBe('0001-01-01T00:00:00');
    const text = formatDotNetDate(Date.UTC(2030, 5, 1, 12, 0, 0));
    expect(text).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$/);
    expect(Date.parse(text)).toBe(Date.UTC(2030, 5, 1, 12, 0, 0));
  });
});
