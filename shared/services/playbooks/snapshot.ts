/**
 * An incident's scope → the playbook's `AffectedSnapshot` (ids, states, sizes; never
 * values), read once when the playbook is planned. Role assignments are listed per
 * principal on the affected vaults (ARM `listForScope` with `assignedTo`) and classified
 * by where they sit: on Keyturn's own vault or below it (`direct`, removable), on a
 * customer's vault, through a group, or above the vault (`inherited`).
 */
import type { IncidentScope } from '../../domain/incident';
import type { AffectedSnapshot, KeySetSnapshot, RoleAssignmentSnapshot, SigningKeySnapshot, TenantSnapshot } from '../../domain/playbooks';
import type { RoleAssignment } from '../../ports';

/** What the snapshot reads; wired over the life cycles' stores in `shared/roots/playbooks.ts`. */
export interface PlaybookInventory {
  /** The tenants with these ids; every tenant when `ids` is undefined. */
  tenants(ids?: string[]): Promise<TenantSnapshot[]>;
  tenantsByKid(kids: string[]): Promise<TenantSnapshot[]>;
  signingKeys(): Promise<SigningKeySnapshot[]>;
  /** The named key sets; every set when `ids` is undefined (absent until the key-set life cycle is wired: none). */
  keySets?(ids?: string[]): Promise<KeySetSnapshot[]>;
  /** A managed credential's current version (`vault/name`). */
  credentialVersion(ref: string): Promise<string | undefined>;
  /** Vault name → its ARM resource id: Keyturn's own vaults, and customers' vaults. */
  vaultScopes(): { own: Record<string, string>; customer: Record<string, string> };
  /** ARM `listForScope(scope, {assignedTo})`. */
  assignmentsAt(scope: string, principalId: string): Promise<RoleAssignment[]>;
}

const lower = (s: string) => s.toLowerCase();
const under = (scope: string, parent: string) => lower(scope) === lower(parent) || lower(scope).startsWith(`${lower(parent)}/`);

/** Where an assignment sits, as the unauthorized-use playbook treats it. */
export function classifyAssignment(a: RoleAssignment, principalId: string, scopes: { own: Record<string, string>; customer: Record<string, string> }): RoleAssignmentSnapshot['reach'] {
  if (lower(a.principalId) !== lower(principalId)) return 'group'; // ARM's assignedTo also lists the groups' assignments
  if (Object.values(scopes.customer).some((s) => under(a.scope, s))) return 'customer-vault';
  if (Object.values(scopes.own).some((s) => under(a.scope, s))) return 'direct';
  return 'inherited';
}

export async function affectedSnapshot(inventory: PlaybookInventory, scope: IncidentScope): Promise<AffectedSnapshot> {
  const all = scope.all === true;
  const tenants = new Map<string, TenantSnapshot>();
  if (all || scope.tenants) for (const t of await inventory.tenants(all ? undefined : scope.tenants)) tenants.set(t.tenantId, t);
  if (scope.tenantKeys) for (const t of await inventory.tenantsByKid(scope.tenantKeys)) tenants.set(t.tenantId, t);
  const signing = all || scope.signingKeys ? (await inventory.signingKeys()).filter((k) => all || scope.signingKeys!.includes(k.kid)) : [];
  const scopes = inventory.vaultScopes();
  const knownVaults = [...Object.keys(scopes.own), ...Object.keys(scopes.customer)];
  // No vault named: every vault Keyturn knows for `all` or a principal, else the tenants' vaults.
  const vaults = scope.vaults?.map(lower) ?? (all || scope.principals ? knownVaults : [...new Set([...tenants.values()].map((t) => t.vault))]);
  const assignments: RoleAssignmentSnapshot[] = [];
  for (const principalId of scope.principals ?? []) {
    const seen = new Set<string>();
    for (const vault of vaults) {
      const at = scopes.own[vault] ?? scopes.customer[vault];
      if (!at) continue;
      for (const a of await inventory.assignmentsAt(at, principalId)) {
        if (seen.has(lower(a.id))) continue;
        seen.add(lower(a.id));
        assignments.push({ id: a.id, principalId, scope: a.scope, reach: classifyAssignment(a, principalId, scopes) });
      }
    }
  }
  return {
    tenants: [...tenants.values()],
    tenantKids: scope.tenantKeys ?? [],
    signingKeys: signing,
    // Pinned to the version seen now: a re-run renews that one (by `fromVersion`), never a second time.
    credentials: await Promise.all((scope.credentials ?? []).map(async (ref) => {
      const version = await inventory.credentialVersion(ref);
      return version ? `${ref}@${version}` : ref;
    })),
    keySets: inventory.keySets ? await inventory.keySets(all ? undefined : [...new Set([...(scope.keySets ?? []), ...(scope.keySetKeys ?? []).map((k) => k.set)])]) : [],
    keySetKeys: scope.keySetKeys ?? [],
    principals: scope.principals ?? [],
    vaults,
    assignments,
  };
}
