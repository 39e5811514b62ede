/**
 * Breach playbooks (issue 15), pure: an incident's type, its details and a snapshot of
 * the affected keys → the ordered steps to run. The practice's rule table:
 * - the key leaked → rekey (leaked versions `compromised`: no new use, old content opens);
 * - an unauthorized party could use the key but it did not leak → no rekey (it would
 *   not help): find the root cause and close the access;
 * - a vulnerability in the HSM technology → update; rekey only if keys may be exposed;
 * - the algorithm or key length became weak → raise the minimum, rekey everything below.
 * The plan is computed once when the playbook starts and stored with its job, so a
 * resumed run finishes the same steps even though the keys have changed meanwhile.
 * Step ids are deterministic (kind + target): the runner records each step once.
 */
import { ValidationError } from '../errors';
import { type KeyPolicy, RSA_SIZES } from './tenantKeyPolicy';

export const PLAYBOOK_TYPES = ['key-leaked', 'unauthorized-use', 'hsm-vulnerability', 'algorithm-weakness'] as const;
export type PlaybookType = (typeof PLAYBOOK_TYPES)[number];

/** The rule each playbook follows, quoted on the timeline. */
export const PLAYBOOK_RULES: Record<PlaybookType, string> = {
  'key-leaked': 'The key leaked: rekey; leaked versions are marked compromised (never used for new content, still open old content).',
  'unauthorized-use':
    'An unauthorized party got the right to use the key but it did not leak: rekeying does not help. Find the root cause and close the access.',
  'hsm-vulnerability': 'A vulnerability in the HSM technology: update it; rekey only if there is reason to believe keys were exposed.',
  'algorithm-weakness': 'The algorithm or key length became weak: support stronger keys and rekey everything below them.',
};

// ------------------------------------------------------------------ the snapshot

export interface TenantSnapshot {
  tenantId: string;
  topology: 'service-managed' | 'byok';
  /** The vault (Key Vault host name) holding the tenant's keys. */
  vault: string;
  activeKid?: string;
  versions: { kid: string; state: 'pending' | 'active' | 'archived' | 'revoked'; compromised: boolean; rsaBits?: number }[];
  revoked: boolean;
}

export interface SigningKeySnapshot {
  kid: string;
  state: 'next' | 'current' | 'previous' | 'retired';
  /** `RSA` or `EC`; EC keys have no RSA size and are never below an RSA minimum. */
  kty: 'RSA' | 'EC';
  rsaBits?: number;
}

export interface KeySetSnapshot {
  set: string;
  /** The KEK's vault host name, and whether Keyturn owns (and so may rotate) it. */
  kekVault: string;
  kekOwned: boolean;
  kekRsaBits?: number;
  keys: { keyId: string; state: 'primary' | 'active' | 'retired' }[];
}

export interface RoleAssignmentSnapshot {
  id: string;
  principalId: string;
  scope: string;
  /** `direct`: on a scope Keyturn manages (its own vaults, their keys/secrets), removable by Keyturn. */
  reach: 'direct' | 'inherited' | 'group' | 'customer-vault';
}

/** What the scope resolved to when the playbook started (only what a step needs: ids, states, sizes). */
export interface AffectedSnapshot {
  tenants: TenantSnapshot[];
  /** Named tenant versions (scope `tenantKeys`); a tenant named without kids means its versions in use. */
  tenantKids: string[];
  signingKeys: SigningKeySnapshot[];
  /** `vault/name`. */
  credentials: string[];
  keySets: KeySetSnapshot[];
  keySetKeys: { set: string; keyId: string }[];
  principals: string[];
  /** Vault host names in scope (`hsm-vulnerability`, `unauthorized-use`). */
  vaults: string[];
  assignments: RoleAssignmentSnapshot[];
}

export interface PlaybookDetails {
  exposed?: boolean;
  advisory?: string;
  policy?: { rsaMinBits?: number; forbiddenAlgorithms?: string[] };
}

export interface PlaybookContext {
  /** Principals no playbook may remove: Keyturn's own identity and the configured administrators. */
  protectedPrincipals: string[];
  /** The key policy in force when the playbook starts. */
  policy: KeyPolicy;
}

// ------------------------------------------------------------------ steps

export type PlaybookStep =
  | { kind: 'record-rule'; rule: string }
  | { kind: 'record-advisory'; advisory: string; exposed: boolean }
  | { kind: 'record-no-rekey'; why: string }
  | { kind: 'tenant-rekey-compromised'; tenantId: string; fromKid: string }
  | { kind: 'tenant-mark-compromised'; tenantId: string; kid: string }
  | { kind: 'tenant-rekey'; tenantId: string; fromKid: string; why: string }
  | { kind: 'signing-emergency-rollover'; kid: string }
  | { kind: 'signing-roll'; kid: string; why: string }
  | { kind: 'credential-renew-no-grace'; credentialId: string }
  | { kind: 'keyset-add-key'; set: string; replacing: string[] }
  | { kind: 'keyset-reencrypt'; set: string }
  | { kind: 'keyset-retire-key'; set: string; keyId: string }
  | { kind: 'keyset-flag-export-stale'; set: string }
  | { kind: 'kek-rotate'; set: string; why: string }
  | { kind: 'raise-policy'; from: KeyPolicy; to: { rsaMinBits: number; forbiddenAlgorithms: string[] } }
  | { kind: 'list-assignments'; principalId: string; vaults: string[] }
  | { kind: 'remove-assignment'; principalId: string; assignmentId: string; scope: string }
  | { kind: 'refuse-protected-principal'; principalId: string }
  | { kind: 'task'; title: string; reason: TaskReason; target?: string; blocking: boolean }
  | { kind: 'report-counts'; counts: Record<string, number> };

export type PlannedStep = PlaybookStep & { id: string };

export type TaskReason = 'customer-rekey' | 'customer-access' | 'inherited-assignment' | 'root-cause' | 'byok-exposed';

/**
 * Which tasks block. Blocking: the breach is not contained until a person does it — a
 * leaked or exposed customer key still to be replaced, an access Keyturn could not close
 * (inherited, through a group, in a customer's vault). Advisory: the playbook's changes
 * are complete without it — the root-cause analysis, a customer key that is weak but not
 * exposed. Both are listed as tasks; only blocking ones keep the incident `awaiting-action`.
 */
export const BLOCKING_TASKS: Record<PlaybookType, Partial<Record<TaskReason, boolean>>> = {
  'key-leaked': { 'customer-rekey': true },
  'unauthorized-use': { 'customer-access': true, 'inherited-assignment': true, 'root-cause': false },
  'hsm-vulnerability': { 'byok-exposed': true },
  'algorithm-weakness': { 'customer-rekey': false },
};

const task = (type: PlaybookType, reason: TaskReason, title: string, target?: string): PlaybookStep => ({
  kind: 'task',
  title,
  reason,
  ...(target !== undefined ? { target } : {}),
  blocking: BLOCKING_TASKS[type][reason] ?? true,
});

const inUse = (v: TenantSnapshot['versions'][number]) => (v.state === 'active' || v.state === 'pending') && !v.compromised;

/** The id of a step: its kind and its target, so the same step is never planned (or run) twice. */
export function stepId(step: PlaybookStep): string {
  switch (step.kind) {
    case 'record-rule':
    case 'record-advisory':
    case 'record-no-rekey':
    case 'raise-policy':
    case 'report-counts':
      return step.kind;
    case 'tenant-rekey-compromised':
    case 'tenant-rekey':
      return `${step.kind}:${step.tenantId}:${step.fromKid}`;
    case 'tenant-mark-compromised':
      return `${step.kind}:${step.tenantId}:${step.kid}`;
    case 'signing-emergency-rollover':
    case 'signing-roll':
      return `${step.kind}:${step.kid}`;
    case 'credential-renew-no-grace':
      return `${step.kind}:${step.credentialId}`;
    case 'keyset-add-key':
    case 'keyset-reencrypt':
    case 'keyset-flag-export-stale':
    case 'kek-rotate':
      return `${step.kind}:${step.set}`;
    case 'keyset-retire-key':
      return `${step.kind}:${step.set}:${step.keyId}`;
    case 'list-assignments':
    case 'refuse-protected-principal':
      return `${step.kind}:${step.principalId}`;
    case 'remove-assignment':
      return `${step.kind}:${step.assignmentId}`;
    case 'task':
      return `task:${step.reason}:${step.target ?? ''}`;
  }
}

/** The leaked versions of each tenant: the named kids, else the versions in use. */
function leakedVersions(t: TenantSnapshot, namedKids: Set<string>): string[] {
  const named = t.versions.filter((v) => namedKids.has(v.kid) && v.state !== 'revoked' && !v.compromised).map((v) => v.kid);
  if (named.length > 0) return named;
  if (t.versions.some((v) => namedKids.has(v.kid))) return []; // named, but already compromised or revoked
  return t.versions.filter(inUse).map((v) => v.kid);
}

function keyLeaked(s: AffectedSnapshot): PlaybookStep[] {
  const steps: PlaybookStep[] = [{ kind: 'record-rule', rule: PLAYBOOK_RULES['key-leaked'] }];
  const namedKids = new Set(s.tenantKids);
  for (const t of s.tenants) {
    if (t.revoked) continue;
    for (const kid of leakedVersions(t, namedKids)) {
      if (t.topology === 'service-managed') {
        steps.push({ kind: 'tenant-rekey-compromised', tenantId: t.tenantId, fromKid: kid });
      } else {
        // Keyturn cannot rekey a customer's vault: stop using the version, ask the customer.
        steps.push({ kind: 'tenant-mark-compromised', tenantId: t.tenantId, kid });
        steps.push(task('key-leaked', 'customer-rekey', `Customer: name a new key for tenant ${t.tenantId} (POST tenants/${t.tenantId}/rekey {keyUrl})`, t.tenantId));
      }
    }
  }
  for (const k of s.signingKeys) if (k.state !== 'retired') steps.push({ kind: 'signing-emergency-rollover', kid: k.kid });
  for (const credentialId of s.credentials) steps.push({ kind: 'credential-renew-no-grace', credentialId });
  // The named keys of a set; a set named without keys (or every set, for `all`) leaked its live keys, as a tenant named without kids.
  const leakedBySet = new Map<string, string[]>();
  for (const { set, keyId } of s.keySetKeys) leakedBySet.set(set, [...(leakedBySet.get(set) ?? []), keyId]);
  for (const k of s.keySets) if (!leakedBySet.has(k.set)) leakedBySet.set(k.set, k.keys.map((key) => key.keyId));
  for (const [set, keyIds] of leakedBySet) {
    const known = s.keySets.find((k) => k.set === set);
    const live = keyIds.filter((id) => known?.keys.some((k) => k.keyId === id && k.state !== 'retired'));
    if (live.length === 0) continue;
    steps.push({ kind: 'keyset-add-key', set, replacing: live });
    steps.push({ kind: 'keyset-reencrypt', set });
    for (const keyId of live) steps.push({ kind: 'keyset-retire-key', set, keyId });
    steps.push({ kind: 'keyset-flag-export-stale', set });
  }
  return steps;
}

function unauthorizedUse(s: AffectedSnapshot, ctx: PlaybookContext): PlaybookStep[] {
  const steps: PlaybookStep[] = [{ kind: 'record-rule', rule: PLAYBOOK_RULES['unauthorized-use'] }];
  const protectedIds = new Set(ctx.protectedPrincipals.map((p) => p.toLowerCase()));
  for (const principalId of s.principals) {
    if (protectedIds.has(principalId.toLowerCase())) {
      steps.push({ kind: 'refuse-protected-principal', principalId });
      continue;
    }
    steps.push({ kind: 'list-assignments', principalId, vaults: s.vaults });
    for (const a of s.assignments.filter((x) => x.principalId.toLowerCase() === principalId.toLowerCase())) {
      if (a.reach === 'direct') steps.push({ kind: 'remove-assignment', principalId, assignmentId: a.id, scope: a.scope });
      else {
        const reason = a.reach === 'customer-vault' ? 'customer-access' : 'inherited-assignment';
        steps.push(task('unauthorized-use', reason, `Remove ${principalId}'s ${a.reach} assignment at ${a.scope} (Keyturn cannot remove it)`, a.id));
      }
    }
  }
  steps.push(task('unauthorized-use', 'root-cause', 'Find the root cause of the unauthorized use and record the finding'));
  return steps;
}

function hsmVulnerability(s: AffectedSnapshot, details: PlaybookDetails): PlaybookStep[] {
  const exposed = details.exposed === true;
  const steps: PlaybookStep[] = [
    { kind: 'record-rule', rule: PLAYBOOK_RULES['hsm-vulnerability'] },
    { kind: 'record-advisory', advisory: details.advisory ?? '', exposed },
  ];
  if (!exposed) {
    steps.push({ kind: 'record-no-rekey', why: 'The advisory gives no reason to believe keys were exposed: update the HSM, keep the keys.' });
    return steps;
  }
  const vaults = new Set(s.vaults);
  for (const t of s.tenants) {
    if (t.revoked || !vaults.has(t.vault) || !t.activeKid) continue;
    if (t.topology === 'service-managed') steps.push({ kind: 'tenant-rekey', tenantId: t.tenantId, fromKid: t.activeKid, why: 'HSM vulnerability with exposure' });
    else steps.push(task('hsm-vulnerability', 'byok-exposed', `Customer: rekey tenant ${t.tenantId} in your vault (HSM advisory ${details.advisory ?? ''})`, t.tenantId));
  }
  for (const k of s.keySets) if (vaults.has(k.kekVault) && k.kekOwned) steps.push({ kind: 'kek-rotate', set: k.set, why: 'HSM vulnerability with exposure' });
  return steps;
}

function algorithmWeakness(s: AffectedSnapshot, details: PlaybookDetails, ctx: PlaybookContext): PlaybookStep[] {
  const wanted = details.policy ?? {};
  const rsaMinBits = wanted.rsaMinBits ?? ctx.policy.rsaMinBits;
  if (rsaMinBits < ctx.policy.rsaMinBits) {
    throw new ValidationError('details.policy.rsaMinBits', `details.policy.rsaMinBits: ${rsaMinBits} would lower the minimum (now ${ctx.policy.rsaMinBits}); a playbook only raises it`);
  }
  if (!RSA_SIZES.some((size) => size >= rsaMinBits)) {
    throw new ValidationError('details.policy.rsaMinBits', `details.policy.rsaMinBits: Key Vault creates RSA keys of at most ${RSA_SIZES.at(-1)} bits`);
  }
  const forbidden = [...new Set([...ctx.policy.forbiddenAlgorithms, ...(wanted.forbiddenAlgorithms ?? [])])];
  const below = (bits: number | undefined) => bits !== undefined && bits < rsaMinBits;
  const steps: PlaybookStep[] = [
    { kind: 'record-rule', rule: PLAYBOOK_RULES['algorithm-weakness'] },
    { kind: 'raise-policy', from: ctx.policy, to: { rsaMinBits, forbiddenAlgorithms: forbidden } },
  ];
  const counts = { tenantKeys: 0, signingKeys: 0, keyEncryptionKeys: 0, customerTasks: 0 };
  for (const t of s.tenants) {
    if (t.revoked || !t.activeKid) continue;
    const active = t.versions.find((v) => v.kid === t.activeKid);
    if (!active || !below(active.rsaBits)) continue;
    if (t.topology === 'service-managed') {
      steps.push({ kind: 'tenant-rekey', tenantId: t.tenantId, fromKid: t.activeKid, why: `RSA ${active.rsaBits} < ${rsaMinBits}` });
      counts.tenantKeys++;
    } else {
      steps.push(task('algorithm-weakness', 'customer-rekey', `Customer: replace tenant ${t.tenantId}'s RSA ${active.rsaBits} key with one of at least ${rsaMinBits} bits`, t.tenantId));
      counts.customerTasks++;
    }
  }
  for (const k of s.signingKeys) {
    // A previous key no longer signs; it leaves the set on schedule, once the tokens it signed expire.
    if (k.state === 'retired' || k.state === 'previous' || k.kty !== 'RSA' || !below(k.rsaBits)) continue;
    steps.push({ kind: 'signing-roll', kid: k.kid, why: `RSA ${k.rsaBits} < ${rsaMinBits}` });
    counts.signingKeys++;
  }
  for (const k of s.keySets) {
    if (!k.kekOwned || !below(k.kekRsaBits)) continue;
    steps.push({ kind: 'kek-rotate', set: k.set, why: `RSA ${k.kekRsaBits} < ${rsaMinBits}` });
    counts.keyEncryptionKeys++;
  }
  steps.push({ kind: 'report-counts', counts });
  return steps;
}

/** The ordered, de-duplicated steps of a playbook. Throws a ValidationError (naming the field) for input it cannot run. */
export function planPlaybook(type: PlaybookType, details: PlaybookDetails, snapshot: AffectedSnapshot, ctx: PlaybookContext): PlannedStep[] {
  const steps =
    type === 'key-leaked'
      ? keyLeaked(snapshot)
      : type === 'unauthorized-use'
        ? unauthorizedUse(snapshot, ctx)
        : type === 'hsm-vulnerability'
          ? hsmVulnerability(snapshot, details)
          : algorithmWeakness(snapshot, details, ctx);
  const seen = new Set<string>();
  const planned: PlannedStep[] = [];
  for (const step of steps) {
    const id = stepId(step);
    if (seen.has(id)) continue;
    seen.add(id);
    planned.push({ ...step, id });
  }
  return planned;
}

/** Steps that change keys, credentials or access (what the fleet-wide threshold counts). */
const CHANGES = new Set<PlaybookStep['kind']>([
  'tenant-rekey-compromised',
  'tenant-mark-compromised',
  'tenant-rekey',
  'signing-emergency-rollover',
  'signing-roll',
  'credential-renew-no-grace',
  'keyset-add-key',
  'kek-rotate',
  'remove-assignment',
]);

/** The keys a plan changes; a fleet-wide run (`all`, or more than the threshold) needs a second approver. */
export function changeCount(plan: PlannedStep[]): number {
  return plan.filter((s) => CHANGES.has(s.kind)).length;
}

export function needsSecondApprover(plan: PlannedStep[], scopeAll: boolean, threshold: number): boolean {
  return scopeAll || changeCount(plan) > threshold;
}
