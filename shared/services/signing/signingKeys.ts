/**
 * The signing-key life cycle's entry points: the hourly rollover, token-time bootstrap,
 * emergency rollovers and Key Vault expiry events. Key set changes
 * (`keySetChanges.ts`), the Key Vault sync (`vaultSync.ts`) and emergency rollover
 * (`emergencyRollover.ts`) each live in their own file.
 */
import { type RolloverRecord, planPolicyReplace, planScheduled, signingKey } from '../../domain/signingKeys';
import { markExpiryNotice } from '../../domain/signingKeyVaultSync';
import { ConcurrencyConflict, KeyturnError } from '../../errors';
import { EmergencyRollover, type EmergencyRequest, type EmergencyResult } from './emergencyRollover';
import { type ChangeOutcome, KeySetChanges } from './keySetChanges';
import type { StoredKeySet } from './ports';
import { MAX_ATTEMPTS, type SigningKeyDeps } from './signingDeps';
import { VaultSync } from './vaultSync';

export type { ChangeOutcome } from './keySetChanges';
export type { EmergencyRequest, EmergencyResult } from './emergencyRollover';
export { type SigningKeyDeps, type SigningSettings, SingleFlight, logText } from './signingDeps';

/** A Key Vault NearExpiry/Expired event for a key, as the event router hands it on. */
export interface KeyExpiringEvent {
  /** The alias (KEYTURN_VAULTS) of the vault the event came from. */
  vaultAlias: string;
  name: string;
  version?: string;
  eventType: string;
}

/** Transitions one timer run may make (e.g. add-next then promote then retire). */
const MAX_STEPS = 6;

export class SigningKeyService {
  private readonly sync: VaultSync;
  private readonly changes: KeySetChanges;
  private readonly emergencies: EmergencyRollover;

  constructor(private readonly deps: SigningKeyDeps) {
    this.sync = new VaultSync(deps);
    this.changes = new KeySetChanges(deps, this.sync);
    this.emergencies = new EmergencyRollover(deps, this.changes, this.sync);
  }

  read(): Promise<StoredKeySet | undefined> {
    return this.deps.sets.read(this.deps.settings.issuer);
  }

  /**
   * The key set with a signing key, bootstrapped (a signer and a next) if there is none
   * yet: for `/api/tokens` (function auth) only. Anonymous paths only `read`; the timer
   * bootstraps at start-up. One bootstrap at a time per process; across processes the
   * ETag lets one win and the others discard their keys.
   */
  async signingKeySet(): Promise<StoredKeySet> {
    const stored = await this.read();
    if (stored && signingKey(stored.set)) return stored;
    const { policy } = this.deps.settings;
    await this.deps.bootstrap.run(async () => {
      await this.changes.change((set, now) => (signingKey(set) ? undefined : planScheduled(set, now, policy)));
    });
    const created = await this.read();
    if (!created || !signingKey(created.set)) {
      throw new KeyturnError('SIGNING_KEYS_NOT_READY', 'There is no signing key yet; retry shortly');
    }
    return created;
  }

  /** The timer: applies every transition that is due, then retries any lagging Key Vault writes. */
  async runSchedule(): Promise<ChangeOutcome[]> {
    const { policy } = this.deps.settings;
    const outcomes: ChangeOutcome[] = [];
    for (let step = 0; step < MAX_STEPS; step++) {
      const outcome = await this.changes.change((set, now) => planScheduled(set, now, policy));
      if (!outcome) break;
      outcomes.push(outcome);
    }
    await this.sync.followUp(await this.read());
    return outcomes;
  }

  /** See `EmergencyRollover`. */
  emergency(request: EmergencyRequest): Promise<EmergencyResult> {
    return this.emergencies.run(request);
  }

  /**
   * Replaces `kid` when it is below the key policy's RSA minimum (the algorithm-weakness
   * playbook): new keys are created at the policy's size. A retry, or a key already
   * replaced, changes nothing.
   */
  async replaceBelowPolicy(request: { kid: string; rsaMinBits: number; reason: string; requestedBy?: string }): Promise<{ signingKid?: string; newKids: string[] }> {
    const before = new Set((await this.read())?.set.keys.map((k) => k.kid));
    const outcome = await this.changes.change((set) => planPolicyReplace(set, request.rsaMinBits, request.kid), {
      requestedBy: request.requestedBy ?? 'keyturn',
      requestedByVerified: request.requestedBy === undefined,
      reason: request.reason,
    });
    const set = outcome?.stored.set ?? (await this.read())?.set;
    return { signingKid: signingKey(set)?.kid, newKids: (set?.keys ?? []).filter((k) => !before.has(k.kid)).map((k) => k.kid) };
  }

  /**
   * A KeyNearExpiry/KeyExpired event: a signing key brings its rollover forward (next
   * is promoted once published for the publish-ahead time); an expiring next is replaced.
   */
  async onKeyExpiring(event: KeyExpiringEvent): Promise<'handled' | 'not-managed'> {
    const { vaultAlias, keyName } = this.deps.settings;
    if (event.vaultAlias.toLowerCase() !== vaultAlias || !event.name.toLowerCase().startsWith(`${keyName.toLowerCase()}-`)) {
      return 'not-managed';
    }
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const stored = await this.read();
      const ref = { vault: vaultAlias, name: event.name, version: event.version };
      const marked = markExpiryNotice(stored?.set, ref, event.eventType, await this.deps.clock.now());
      if (marked === 'not-managed') return 'not-managed';
      if (marked === 'no-change') break;
      try {
        await this.deps.sets.write(marked.set, stored?.etag);
        this.deps.log.info('Signing key expiry noticed', { kid: marked.key.kid, state: marked.key.state, eventType: event.eventType });
        break;
      } catch (e) {
        if (!(e instanceof ConcurrencyConflict)) throw e;
      }
    }
    await this.runSchedule();
    return 'handled';
  }

  rollovers(limit = 20): Promise<RolloverRecord[]> {
    return this.deps.sets.rollovers(this.deps.settings.issuer, limit);
  }
}
