/**
 * The expiry sweep (hourly): renews managed secrets inside the renewal window (or
 * expired) that no rotation covers, and re-alerts failed rotations daily until their
 * credential is renewed or expires.
 */
import { ConcurrencyConflict } from '../../errors';
import { DAY_MS, STEP_FAILURE, alertDue, isInFlight, markAlerted } from '../../domain/rotation';
import type { RenewalContext } from './context';
import { managed, startRenewal } from './requests';

export type SweepReport = { managed: number; started: string[]; alerted: string[] };

export async function sweep(c: RenewalContext): Promise<SweepReport> {
  const { secrets, rotations, settings, log, clock } = c.deps;
  const report: SweepReport = { managed: 0, started: [], alerted: [] };
  for (const vault of Object.keys(settings.vaults)) {
    for (const item of await secrets.list(vault)) {
      const found = await managed(c, vault, item.name);
      if ('reason' in found) continue;
      report.managed++;
      const { latest } = found;
      const now = await clock.now();
      const all = await rotations.forCredential(vault, latest.name);
      const version = latest.version.toLowerCase();
      const hasRotation = all.some((r) => r.fromVersion === version || isInFlight(r));
      const windowStart = latest.expiresOn ? latest.expiresOn.getTime() - settings.windowDays * DAY_MS : Infinity;
      if (!hasRotation && now.getTime() >= windowStart) {
        const started = await startRenewal(c, { vault, name: latest.name, version, trigger: 'sweep' });
        if (started.outcome === 'started') report.started.push(started.rotationId);
      }
      for (const r of all) {
        // Only while this attempt is the last word on the current version: a new version or a later attempt ends it.
        if (!alertDue(r, now, { currentVersion: version, expiresOn: latest.expiresOn, rotations: all })) continue;
        const expiresOn = latest.expiresOn;
        const expired = expiresOn !== undefined && now.getTime() >= expiresOn.getTime();
        log.error(`ALERT: credential rotation failed and the credential is ${expired ? 'EXPIRED' : 'not renewed'}`, {
          rotationId: r.id,
          vault,
          name: r.name,
          expiresOn: expiresOn?.toISOString(),
          lastError: r.lastError ? STEP_FAILURE[r.lastError.step] : undefined,
          cleanup: r.cleanup?.state,
        });
        const stored = await rotations.read(r.id);
        if (stored) {
          try {
            await rotations.replace(markAlerted(stored.doc, now), stored.etag);
          } catch (e) {
            if (!(e instanceof ConcurrencyConflict)) throw e; // changed meanwhile: the next sweep marks it
          }
        }
        report.alerted.push(r.id);
      }
    }
  }
  return report;
}
