/**
 * An incident's scope against what exists: ids that exist nowhere are refused (400
 * SCOPE_NOT_FOUND listing them) before anything is recorded; principals are taken as
 * given (Keyturn cannot read the directory); key sets, until their life cycle's lookup
 * is wired in, are refused with SCOPE_KIND_UNSUPPORTED. The snapshot (what the scope
 * resolved to: states, kids, versions, never values) is what the first step records.
 */
import type { IncidentScope } from '../../domain/incident';
import { KeyturnError } from '../../errors';
import type { ScopeLookups, TenantSummary } from './ports';

export interface ScopeResolution {
  snapshot: Record<string, unknown>;
  adminContacts: string[];
}

type Missing = { kind: string; id: string };

/** Checks the scope (throws 400 listing what is missing) and returns its snapshot. */
export async function resolveScope(lookups: ScopeLookups, scope: IncidentScope): Promise<ScopeResolution> {
  const unsupported = (['keySets', 'keySetKeys'] as const).filter((k) => scope[k] !== undefined);
  if (unsupported.length > 0 && !lookups.keySets) {
    throw new KeyturnError('SCOPE_KIND_UNSUPPORTED', `Scope kinds not supported yet: ${unsupported.join(', ')} (the key-set life cycle has not landed)`, {
      field: `scope.${unsupported[0]}`,
      kinds: unsupported,
    });
  }
  const missing: Missing[] = [];
  const snapshot: Record<string, unknown> = {};
  const tenantsSeen = new Map<string, TenantSummary>();

  const allScope = scope.all === true;
  if (scope.tenants || allScope) {
    const found = await lookups.tenants(allScope ? undefined : scope.tenants);
    for (const t of found) tenantsSeen.set(t.tenantId, t);
    for (const id of scope.tenants ?? []) if (!tenantsSeen.has(id)) missing.push({ kind: 'tenants', id });
    snapshot.tenants = found.map((t) => ({ tenantId: t.tenantId, topology: t.topology, state: t.state, activeKid: t.activeKid ?? null }));
  }
  if (scope.tenantKeys) {
    const holders = await lookups.tenantsByKid(scope.tenantKeys);
    const versions = holders.flatMap((t) => t.versions.map((v) => ({ tenantId: t.tenantId, ...v })));
    for (const t of holders) tenantsSeen.set(t.tenantId, t);
    const found = scope.tenantKeys.flatMap((kid) => versions.filter((v) => v.kid === kid));
    for (const kid of scope.tenantKeys) if (!found.some((v) => v.kid === kid)) missing.push({ kind: 'tenantKeys', id: kid });
    snapshot.tenantKeys = found;
  }
  if (scope.signingKeys || allScope) {
    const keys = await lookups.signingKeys();
    const wanted = allScope ? keys : keys.filter((k) => scope.signingKeys!.includes(k.kid));
    for (const kid of scope.signingKeys ?? []) if (!keys.some((k) => k.kid === kid)) missing.push({ kind: 'signingKeys', id: kid });
    snapshot.signingKeys = wanted.map((k) => ({ kid: k.kid, state: k.state }));
  }
  if (scope.credentials) {
    const current = await Promise.all(
      scope.credentials.map(async (ref) => {
        const [vault, name] = ref.split('/') as [string, string];
        const known = lookups.vaults().includes(vault.toLowerCase());
        return { ref, vault, name, latest: known ? await lookups.credential(vault.toLowerCase(), name) : undefined };
      }),
    );
    for (const c of current) if (!c.latest) missing.push({ kind: 'credentials', id: c.ref });
    snapshot.credentials = current.flatMap((c) => (c.latest ? [{ vault: c.vault, name: c.name, version: c.latest.version }] : []));
  }
  if (scope.vaults || allScope) {
    const known = lookups.vaults();
    for (const v of scope.vaults ?? []) if (!known.includes(v.toLowerCase())) missing.push({ kind: 'vaults', id: v });
    snapshot.vaults = allScope ? known : (scope.vaults ?? []).filter((v) => known.includes(v.toLowerCase()));
  }
  if ((scope.keySets || allScope) && lookups.keySets) {
    const found = await lookups.keySets.sets(allScope ? undefined : scope.keySets);
    for (const id of scope.keySets ?? []) if (!found.includes(id)) missing.push({ kind: 'keySets', id });
    snapshot.keySets = found;
  }
  if (scope.keySetKeys && lookups.keySets) {
    const found = await lookups.keySets.keys(scope.keySetKeys);
    for (const k of scope.keySetKeys) if (!found.some((f) => f.set === k.set && f.keyId === k.keyId)) missing.push({ kind: 'keySetKeys', id: `${k.set}/${k.keyId}` });
    snapshot.keySetKeys = found;
  }
  if (scope.principals) snapshot.principals = scope.principals;
  if (allScope) snapshot.all = true;

  if (missing.length > 0) {
    throw new KeyturnError('SCOPE_NOT_FOUND', `The scope names ids that exist nowhere: ${missing.map((m) => `${m.kind} ${m.id}`).join(', ')}`, {
      field: `scope.${missing[0]!.kind}`,
      missing,
    });
  }
  const adminContacts = [...new Set([...tenantsSeen.values()].flatMap((t) => t.adminContacts))];
  return { snapshot, adminContacts };
}
