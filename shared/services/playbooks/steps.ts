/**
 * Runs one planned playbook step (`shared/domain/playbooks.ts`) against the life cycles'
 * actions and says what to write on the incident's timeline. Every action is idempotent
 * on its own terms (rekeys by `fromKid`, emergency rollover by `kid`, renewals by
 * `fromVersion`, assignment removal by id), so a step re-run after a crash changes
 * nothing twice; the incident's job records each step once it is done. Evidence is ids,
 * kids, versions, states and counts — never values or key material.
 */
import type { PlannedStep } from '../../domain/playbooks';
import type { RoleAssignment } from '../../ports';

export interface TimelineNote {
  event: string;
  evidence: Record<string, unknown>;
}

export interface PlaybookTask {
  title: string;
  reason: string;
  target?: string;
  /** A blocking task keeps the incident `awaiting-action` until it is done; an advisory one is listed only. */
  blocking: boolean;
}

/** What a step did: done (with its notes and tasks), or waiting for work it started (a batch job) to finish. */
export type StepOutcome =
  | { done: true; notes: TimelineNote[]; tasks: PlaybookTask[] }
  | { done: false; notes: TimelineNote[]; retryAfterMs: number };

/** The life cycles' operations a playbook drives; each wired to the existing service in the composition root. */
export interface PlaybookActions {
  tenants: {
    /** Service-managed: a rekey away from `fromKid`; `compromised` drops it from the published keys at once. */
    rekey(tenantId: string, input: { fromKid: string; compromised: boolean; reason: string }): Promise<{ newKid: string }>;
    /** BYOK: the version stops protecting (the tenant waits for the customer's new key). */
    markCompromised(tenantId: string, kid: string, reason: string): Promise<{ tenantState: string }>;
  };
  signing: {
    /** Emergency rollover away from `kid`; compromised keys leave the JWKS at once. */
    emergencyRollover(input: { kid: string; compromised: true; reason: string }): Promise<{ signingKid?: string; disabledInKeyVault?: boolean }>;
    /**
     * Replaces `kid` with a fresh key made under the current key policy (the policy was
     * raised first): a published-but-weak next key cannot simply be promoted.
     */
    replace(input: { kid: string; reason: string }): Promise<{ signingKid?: string; newKids: string[] }>;
  };
  credentials: {
    /** Renews `vault/name` now; the old version is disabled as soon as the new one is promoted (no grace). */
    renewWithoutGrace(credentialId: string, reason: string): Promise<{ rotationId: string; state: string; oldVersionDisabled: boolean }>;
  };
  keySets: {
    /** A new primary; `replacing`: the leaked keys (none of them primary any more → already done, nothing added). */
    addKey(set: string, reason: string, replacing?: string[]): Promise<{ keyId: string }>;
    /** Starts (or finds) the set's re-encryption onto its primary; `completed` once every item is on it. */
    reencrypt(set: string): Promise<{ jobId: string; completed: boolean; processed: number; total: number }>;
    retireKey(set: string, keyId: string): Promise<void>;
    flagExportStale(set: string): Promise<void>;
    rotateKek(set: string, reason: string): Promise<{ kekVersion: string; rewrapped: number }>;
  };
  policy: {
    /** A new policy version; never lower than the current one. */
    raise(to: { rsaMinBits: number; forbiddenAlgorithms: string[] }): Promise<{ version: number }>;
  };
  access: {
    assignmentsOf(principalId: string, vaults: string[]): Promise<RoleAssignment[]>;
    /** Resolves also when the assignment is already gone. */
    remove(assignment: { id: string; scope: string }): Promise<void>;
  };
}

/** How long a step waits before looking at a batch job again. */
export const WAIT_FOR_JOB_MS = 5_000;

const done = (notes: TimelineNote[], tasks: PlaybookTask[] = []): StepOutcome => ({ done: true, notes, tasks });

/** Runs `step`; `reason` names the incident (e.g. `incident 7f3… key-leaked`) in everything it changes. */
export async function runPlaybookStep(step: PlannedStep, actions: PlaybookActions, reason: string): Promise<StepOutcome> {
  switch (step.kind) {
    case 'record-rule':
      return done([{ event: 'playbook.rule', evidence: { rule: step.rule } }]);
    case 'record-advisory':
      return done([{ event: 'playbook.advisory', evidence: { advisory: step.advisory, exposed: step.exposed } }]);
    case 'record-no-rekey':
      return done([{ event: 'playbook.no-rekey', evidence: { why: step.why } }]);
    case 'tenant-rekey-compromised': {
      const { newKid } = await actions.tenants.rekey(step.tenantId, { fromKid: step.fromKid, compromised: true, reason });
      return done([{ event: 'tenant.rekeyed', evidence: { tenantId: step.tenantId, compromisedKid: step.fromKid, newKid } }]);
    }
    case 'tenant-rekey': {
      const { newKid } = await actions.tenants.rekey(step.tenantId, { fromKid: step.fromKid, compromised: false, reason: `${reason}: ${step.why}` });
      return done([{ event: 'tenant.rekeyed', evidence: { tenantId: step.tenantId, fromKid: step.fromKid, newKid, why: step.why } }]);
    }
    case 'tenant-mark-compromised': {
      const { tenantState } = await actions.tenants.markCompromised(step.tenantId, step.kid, reason);
      return done([{ event: 'tenant.version-compromised', evidence: { tenantId: step.tenantId, kid: step.kid, tenantState } }]);
    }
    case 'signing-emergency-rollover': {
      const out = await actions.signing.emergencyRollover({ kid: step.kid, compromised: true, reason });
      return done([{ event: 'signing.emergency-rollover', evidence: { compromisedKid: step.kid, signingKid: out.signingKid, disabledInKeyVault: out.disabledInKeyVault } }]);
    }
    case 'signing-roll': {
      const out = await actions.signing.replace({ kid: step.kid, reason: `${reason}: ${step.why}` });
      return done([{ event: 'signing.replaced', evidence: { fromKid: step.kid, signingKid: out.signingKid, newKids: out.newKids, why: step.why } }]);
    }
    case 'credential-renew-no-grace': {
      const out = await actions.credentials.renewWithoutGrace(step.credentialId, reason);
      return done([{ event: 'credential.renewed', evidence: { credentialId: step.credentialId, rotationId: out.rotationId, state: out.state, oldVersionDisabled: out.oldVersionDisabled } }]);
    }
    case 'keyset-add-key': {
      const { keyId } = await actions.keySets.addKey(step.set, reason, step.replacing);
      return done([{ event: 'keyset.key-added', evidence: { set: step.set, keyId, replacing: step.replacing } }]);
    }
    case 'keyset-reencrypt': {
      const job = await actions.keySets.reencrypt(step.set);
      const evidence = { set: step.set, jobId: job.jobId, processed: job.processed, total: job.total };
      return job.completed
        ? done([{ event: 'keyset.reencrypted', evidence }])
        : { done: false, notes: [], retryAfterMs: WAIT_FOR_JOB_MS };
    }
    case 'keyset-retire-key':
      await actions.keySets.retireKey(step.set, step.keyId);
      return done([{ event: 'keyset.key-retired', evidence: { set: step.set, keyId: step.keyId } }]);
    case 'keyset-flag-export-stale':
      await actions.keySets.flagExportStale(step.set);
      return done([{ event: 'keyset.export-stale', evidence: { set: step.set } }]);
    case 'kek-rotate': {
      const out = await actions.keySets.rotateKek(step.set, `${reason}: ${step.why}`);
      return done([{ event: 'keyset.kek-rotated', evidence: { set: step.set, kekVersion: out.kekVersion, rewrapped: out.rewrapped, why: step.why } }]);
    }
    case 'raise-policy': {
      const { version } = await actions.policy.raise(step.to);
      return done([{ event: 'policy.raised', evidence: { from: { version: step.from.version, rsaMinBits: step.from.rsaMinBits }, to: { version, ...step.to } } }]);
    }
    case 'list-assignments': {
      const found = await actions.access.assignmentsOf(step.principalId, step.vaults);
      const evidence = { principalId: step.principalId, assignments: found.map((a) => ({ id: a.id, scope: a.scope, roleDefinitionId: a.roleDefinitionId })) };
      return done([{ event: 'access.assignments-listed', evidence }]);
    }
    case 'remove-assignment':
      await actions.access.remove({ id: step.assignmentId, scope: step.scope });
      return done([{ event: 'access.assignment-removed', evidence: { principalId: step.principalId, assignmentId: step.assignmentId, scope: step.scope } }]);
    case 'refuse-protected-principal':
      return done([{ event: 'access.refused-protected', evidence: { principalId: step.principalId, why: 'a protected principal (Keyturn itself or a configured administrator) is never removed' } }]);
    case 'task':
      return done([{ event: 'task.opened', evidence: { title: step.title, reason: step.reason, target: step.target, blocking: step.blocking } }], [
        { title: step.title, reason: step.reason, target: step.target, blocking: step.blocking },
      ]);
    case 'report-counts':
      return done([{ event: 'playbook.counts', evidence: { counts: step.counts } }]);
  }
}
