/**
 * The expiry sweep (hourly): renews managed secrets inside the renewal window (or
 * expired) that no rotation covers, and re-alerts failed rotations daily until their
 * credential is renewed or expires. One bad item (a read still failing after the SDK's
 * retries, a listing page that fails) is counted, logged and skipped: the rest of the
 * run goes on, and the next run retries it.
 */
import { ConcurrencyConflict, describeError, errorFacts } from '../../errors';
import { DAY_MS, STEP_FAILURE, alertDue, isInFlight, markAlerted } from '../../domain/rotation';
import { isInjectedCrash } from '../jobs/runner';
import type { RenewalContext } from './context';
import { managed, startRenewal } from './requests';

/** An item the sweep could not look at this run: a secret, or (no `name`) the rest of a vault's listing. */
export interface SweepFailure {
  vault: string;
  name?: string;
  /** The error's facts only (name, code, status, kind): never its text. */
  error: ReturnType<typeof errorFacts>;
}

export type SweepReport = { managed: number; started: string[]; alerted: string[]; failed: SweepFailure[] };

export async function sweep(c: RenewalContext): Promise<SweepReport> {
  const { secrets, settings, log } = c.deps;
  const report: SweepReport = { managed: 0, started: [], alerted: [], failed: [] };
  const skip = (thrown: unknown, vault: string, name?: string) => {
    if (isInjectedCrash(thrown)) throw thrown;
    report.failed.push({ vault, ...(name !== undefined ? { name } : {}), error: errorFacts(thrown) });
    log.warn(name !== undefined ? 'Sweep skipped a secret it could not read; the next sweep retries it' : 'Sweep could not list the vault (the rest of it is skipped); the next sweep retries it', {
      vault,
      ...(name !== undefined ? { name } : {}),
      error: describeError(thrown),
    });
  };
  for (const vault of Object.keys(settings.vaults)) {
    try {
      // `for await` takes a listing that is an array or pages arriving one by one.
      for await (const item of await secrets.list(vault)) {
        try {
          await sweepOne(c, vault, item.name, report);
        } catch (e) {
          skip(e, vault, item.name);
        }
      }
    } catch (e) {
      skip(e, vault);
    }
  }
  return report;
}

async function sweepOne(c: RenewalContext, vault: string, name: string, report: SweepReport): Promise<void> {
  const { rotations, settings, log, clock } = c.deps;
  const found = await managed(c, vault, name);
  if ('reason' in found) return;
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
