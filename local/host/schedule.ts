/**
 * Timer schedules as the Functions timer extension reads them (pure, no timers):
 * `%AppSetting%` references, six-field NCRONTAB (`{second} {minute} {hour} {day} {month} {day-of-week}`,
 * day-of-month AND day-of-week, names by prefix) evaluated with croner, else a TimeSpan `[d.]hh:mm[:ss]`.
 */
import { Cron } from 'croner';

export interface Schedule {
  kind: 'cron' | 'timespan';
  /** The expression after `%Setting%` resolution. */
  expression: string;
  /** First occurrence strictly after `fromMs`, or null when there is none. */
  nextAfter(fromMs: number): number | null;
  /** Human description used in logs and the admin listing. */
  describe(): string;
}

const DAYS = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'];
const MONTHS = ['january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november', 'december'];

/** Replaces `%Name%` with the setting's value; an unknown setting is an error, as in func. */
export function resolveSettingReferences(expression: string, env: NodeJS.ProcessEnv): string {
  return expression.replace(/%([^%]+)%/g, (_whole, name: string) => {
    const value = Object.hasOwn(env, name) ? env[name] : undefined;
    if (value === undefined) throw new Error(`'%${name}%' does not resolve to a value.`);
    return value;
  });
}

function shortenNames(field: string, names: string[]): string {
  return field.replace(/[A-Za-z]+/g, (token) => {
    const lower = token.toLowerCase();
    const full = names.find((n) => lower.length >= 3 && n.startsWith(lower));
    // croner only knows 3-letter names; NCrontab accepts any prefix of at least 3 letters.
    return full ? full.slice(0, 3).toUpperCase() : token;
  });
}

/** Normalises an NCRONTAB expression for croner: whitespace, and month/day names to 3 letters. */
export function normaliseNcrontab(expression: string): string {
  const fields = expression.trim().split(/\s+/);
  if (fields.length !== 6) return fields.join(' ');
  const [sec, min, hour, day, month, dow] = fields as [string, string, string, string, string, string];
  return [sec, min, hour, day, shortenNames(month, MONTHS), shortenNames(dow, DAYS)].join(' ');
}

/** .NET `TimeSpan.TryParse` forms the timer extension accepts: `d`, `[d.]hh:mm[:ss[.fffffff]]`. */
export function parseTimeSpan(expression: string): number | null {
  const text = expression.trim();
  if (/^\d+$/.test(text)) return Number(text) * 86_400_000;
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$/.exec(text);
  if (!m) return null;
  const [, d, h, mi, s, f] = m;
  const hours = Number(h);
  const minutes = Number(mi);
  const seconds = Number(s ?? 0);
  if (hours > 23 || minutes > 59 || seconds > 59) return null;
  const fraction = f ? Number(`0.${f}`) : 0;
  return ((Number(d ?? 0) * 24 + hours) * 60 + minutes) * 60_000 + (seconds + fraction) * 1000;
}

export interface ParseScheduleOptions {
  /** IANA zone (WEBSITE_TIME_ZONE); default is the machine's local time, as with `func start`. */
  timezone?: string;
}

export function parseSchedule(expression: string, options: ParseScheduleOptions = {}): Schedule {
  const normalised = normaliseNcrontab(expression);
  if (normalised.split(' ').length === 6) {
    try {
      const cron = new Cron(normalised, {
        mode: '6-part',
        domAndDow: true,
        sloppyRanges: true,
        paused: true,
        ...(options.timezone ? { timezone: options.timezone } : {}),
      });
      // croner accepts some patterns that never fire; NCrontab would still accept those, so keep them.
      return {
        kind: 'cron',
        expression,
        nextAfter: (fromMs) => cron.nextRun(new Date(fromMs))?.getTime() ?? null,
        describe: () => `Cron: '${expression}'`,
      };
    } catch {
      // fall through to the common error below
    }
  }
  const interval = parseTimeSpan(expression);
  if (interval !== null && interval > 0) {
    return {
      kind: 'timespan',
      expression,
      nextAfter: (fromMs) => fromMs + interval,
      describe: () => `TimeSpan: '${expression}'`,
    };
  }
  throw new Error(`The schedule expression '${expression}' was not recognized as a valid cron expression or timespan string.`);
}

/** func turns the schedule monitor off for schedules more frequent than once a minute. */
export function effectiveUseMonitor(schedule: Schedule, requested: boolean | undefined, nowMs: number): boolean {
  if (requested === false) return false;
  const first = schedule.nextAfter(nowMs);
  const second = first === null ? null : schedule.nextAfter(first);
  if (first === null || second === null) return true;
  return second - first >= 60_000;
}

/** .NET-style local timestamp (`2024-05-01T10:00:00+02:00`); `0001-01-01T00:00:00` for "never". */
export function formatDotNetDate(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '0001-01-01T00:00:00';
  const d = new Date(ms);
  const pad = (n: number, w = 2): string => String(Math.trunc(Math.abs(n))).padStart(w, '0');
  const offset = -d.getTimezoneOffset();
  const sign = offset >= 0 ? '+' : '-';
  const millis = d.getMilliseconds();
  return (
    `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}` +
    `T${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}` +
    (millis ? `.${pad(millis, 3)}` : '') +
    `${sign}${pad(offset / 60)}:${pad(offset % 60)}`
  );
}
