/**
 * ISO 8601 durations as used by rotation policies (`P90D`, `P1Y`, `P2M`, `PT12H`).
 * Years and months are calendar units, as the service applies them to dates.
 */
export interface Duration {
  years: number;
  months: number;
  days: number;
  seconds: number;
}

const PATTERN = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

export function parseDuration(text: string): Duration | undefined {
  const m = PATTERN.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const n = (i: number): number => Number(m[i] ?? 0);
  return {
    years: n(1),
    months: n(2),
    days: n(3) * 7 + n(4),
    seconds: n(5) * 3600 + n(6) * 60 + n(7),
  };
}

export function isPositive(d: Duration): boolean {
  return d.years + d.months + d.days + d.seconds > 0;
}

/** date + sign*duration, in UTC calendar arithmetic. */
export function addDuration(date: Date, d: Duration, sign: 1 | -1 = 1): Date {
  const r = new Date(date.getTime());
  if (d.years || d.months) r.setUTCMonth(r.getUTCMonth() + sign * (d.years * 12 + d.months));
  r.setUTCDate(r.getUTCDate() + sign * d.days);
  return new Date(r.getTime() + sign * d.seconds * 1000);
}
