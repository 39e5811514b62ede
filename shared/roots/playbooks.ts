/**
 * Breach playbooks' part of the composition root (issue 15): the `PlaybookActions` over
 * the life cycles' real services (tenant rekeys, signing emergency and policy replace,
 * renewal without grace, the key policy, ARM role assignments), the inventory the
 * snapshot reads, and the planning context (protected principals, key policy). Key sets
 * are not merged yet: their actions refuse with PLAYBOOK_ACTION_UNAVAILABLE.
 */
import type { Config } from '../config';
import type { CosmosHandle } from '../adapters/cosmos';
import { type KeyVaultClients, LOCAL_APP_PRINCIPAL } from '../adapters/keyVault/clients';
import { cosmosTenantLookup } from '../adapters/incidents/cosmosIncidents';
import { cosmosTenantStore } from '../adapters/tenants/cosmosTenants';
import { keyVaultSecretStore } from '../adapters/renewal/keyVaultSecretStore';
import { consoleLogger } from '../adapters/logger';
import type { PlaybookContext, SigningKeySnapshot, TenantSnapshot } from '../domain/playbooks';
import type { Tenant } from '../domain/tenantKeys';
import { KeyturnError, ValidationError } from '../errors';
import type { Logger, RoleAssignments, VaultKeys } from '../ports';
import type { IncidentService, PlaybookPlanning } from '../services/incidents/service';
import type { PlaybookInventory } from '../services/playbooks/snapshot';
import type { PlaybookActions } from '../services/playbooks/steps';
import type { RenewalService } from '../services/renewal/renewalService';
import { rotationView } from '../services/renewal/views';
import type { SigningKeyService } from '../services/signing/signingKeys';
import type { TenantsRoot } from './tenants';
import type { KeySetsRoot } from './keySets';
import { keySetPlaybookParts } from './playbookKeySets';
import type { KeySetLookup } from '../services/incidents/ports';

export interface PlaybooksRoot {
  /** One per invocation (they log to its context). */
  actions(log: Logger): PlaybookActions;
  planning: PlaybookPlanning;
  protectedPrincipals: string[];
  /** The incident scope's key-set lookup (issue 13's sets). */
  keySetLookup?: KeySetLookup;
}

export interface PlaybooksDeps {
  keyVault: KeyVaultClients;
  /** Key Vault keys of any vault (the KEKs' sizes for the snapshot). */
  vaultKeys: VaultKeys;
  cosmos: CosmosHandle;
  tenants: TenantsRoot;
  signing: { service(log: Logger): SigningKeyService };
  renewal: { service(log: Logger): RenewalService };
  roleAssignments: () => RoleAssignments;
  keySets?: KeySetsRoot;
}

const REQUESTED_BY = 'keyturn-playbook';
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** An RSA public key's size from its modulus (base64url). */
const rsaBits = (n: string | undefined) => (n ? Math.round((Buffer.from(n, 'base64url').length * 8) / 1024) * 1024 : undefined);

const unavailable = (action: string) => () =>
  Promise.reject(new KeyturnError('PLAYBOOK_ACTION_UNAVAILABLE', `The key-set life cycle is not wired yet: ${action} cannot run`, { action }));

export function buildPlaybooks(config: Config, deps: PlaybooksDeps): PlaybooksRoot {
  const ready = () => deps.cosmos.ensureSchema();
  const tenantDocs = cosmosTenantStore(() => deps.cosmos.container('tenants'), ready);
  const tenantIds = cosmosTenantLookup(() => deps.cosmos.container('tenants'), ready);
  const secrets = keyVaultSecretStore((vault) => deps.keyVault.secrets(vault));
  // Vault URL → the name scopes use (settings alias or customer vault name).
  const vaultNames = new Map<string, string>([
    ...deps.keyVault.vaultAliases().map((a): [string, string] => [deps.keyVault.vaultUrl(a).toLowerCase(), a]),
    ...Object.entries(config.customerVaults).map(([name, url]): [string, string] => [url.toLowerCase(), name]),
  ]);
  const vaultOf = (vaultUrl: string) => vaultNames.get(vaultUrl.toLowerCase().replace(/\/$/, '')) ?? new URL(vaultUrl).hostname;
  const snapshotOf = (t: Tenant): TenantSnapshot => {
    const active = t.versions.find((v) => v.kid === t.activeKid) ?? t.versions.at(-1);
    return {
      tenantId: t.tenantId,
      topology: t.topology,
      vault: active ? vaultOf(active.vaultUrl) : '',
      ...(t.activeKid ? { activeKid: t.activeKid } : {}),
      versions: t.versions.map((v) => ({ kid: v.kid, state: v.state, compromised: v.compromised, ...(rsaBits(v.publicJwk.n) ? { rsaBits: rsaBits(v.publicJwk.n) } : {}) })),
      revoked: t.state === 'revoked',
    };
  };
  const readTenants = async (ids: string[]) => (await Promise.all(ids.map((id) => tenantDocs.read(id)))).flatMap((s) => (s ? [snapshotOf(s.doc)] : []));
  const customer = Object.fromEntries(Object.entries(config.playbooks.vaultScopes).filter(([name]) => name in config.customerVaults));
  const own = Object.fromEntries(Object.entries(config.playbooks.vaultScopes).filter(([name]) => !(name in config.customerVaults)));

  const kekBits = async (kek: { vaultUrl: string; name: string; version: string }) => rsaBits((await deps.vaultKeys.get(kek))?.publicJwk?.n);
  const sets = deps.keySets ? keySetPlaybookParts(deps.keySets, () => consoleLogger, vaultOf, kekBits) : undefined;
  const inventory: PlaybookInventory = {
    ...(sets ? { keySets: sets.snapshot } : {}),
    tenants: async (ids) => readTenants(ids ?? (await tenantIds.tenants()).map((t) => t.tenantId)),
    tenantsByKid: async (kids) => readTenants((await tenantIds.tenantsByKid(kids)).map((t) => t.tenantId)),
    async signingKeys() {
      const set = (await deps.signing.service(consoleLogger).read())?.set;
      return (set?.keys ?? []).map((k): SigningKeySnapshot => ({ kid: k.kid, state: k.state, kty: k.alg === 'RS256' ? 'RSA' : 'EC', ...(rsaBits(k.publicJwk?.n) ? { rsaBits: rsaBits(k.publicJwk?.n) } : {}) }));
    },
    async credentialVersion(ref) {
      const [vault, name] = ref.split('/') as [string, string];
      return (await secrets.latest(vault.toLowerCase(), name))?.version;
    },
    vaultScopes: () => ({ own, customer }),
    // ARM filters by object id; a name (Keyturn cannot read the directory) has none to list.
    assignmentsAt: async (scope, principalId) => (GUID.test(principalId) ? listOrNone(deps.roleAssignments(), scope, principalId) : []),
  };

  // Keyturn's own identity and the administrators are never removed by a playbook.
  const protectedPrincipals = [
    ...config.playbooks.protectedPrincipals,
    ...config.playbooks.adminPrincipals,
    ...(config.tenantsByok.appPrincipalId ? [config.tenantsByok.appPrincipalId] : []),
    ...(deps.keyVault.local ? [config.localPrincipal ?? 'keyturn-app', 'keyturn-app', LOCAL_APP_PRINCIPAL] : []),
  ];
  const context = async (): Promise<PlaybookContext> => ({ protectedPrincipals, policy: await deps.tenants.policies.current() });

  const actions = (log: Logger): PlaybookActions => ({
    tenants: {
      async rekey(tenantId, input) {
        const out = await deps.tenants.rekeys(log).rekey(tenantId, { ...input, requestedBy: REQUESTED_BY });
        return { newKid: out.tenant.activeKid ?? '' };
      },
      async markCompromised(tenantId, kid, reason) {
        // BYOK, no new key: the tenant is rekey-required until the customer names one.
        const out = await deps.tenants.rekeys(log).rekey(tenantId, { fromKid: kid, compromised: true, reason, requestedBy: REQUESTED_BY });
        return { tenantState: out.tenant.state };
      },
    },
    signing: {
      async emergencyRollover(input) {
        const out = await deps.signing.service(log).emergency({ ...input, requestedBy: REQUESTED_BY, requestedByVerified: true });
        return { ...(out.signingKid ? { signingKid: out.signingKid } : {}), ...(out.disabledInKeyVault !== undefined ? { disabledInKeyVault: out.disabledInKeyVault } : {}) };
      },
      async replace(input) {
        const { rsaMinBits } = await deps.tenants.policies.current();
        return deps.signing.service(log).replaceBelowPolicy({ ...input, rsaMinBits });
      },
    },
    credentials: {
      async renewWithoutGrace(credentialId) {
        const { vault, name, version } = parseCredentialRef(credentialId);
        const renewal = deps.renewal.service(log);
        let rotation = await renewal.renew(vault, name, { fromVersion: version, noGrace: true });
        // Zero grace ends at the announcement's instant: the retire runs once the clock has passed it.
        for (let i = 0; i < 20 && rotation.state === 'grace'; i++) {
          await new Promise((r) => setTimeout(r, 100));
          rotation = rotationView(await renewal.advance(rotation.id), new Date());
        }
        return { rotationId: rotation.id, state: rotation.state, oldVersionDisabled: rotation.status === 'completed' && Boolean(rotation.steps.retire?.completedAt) };
      },
    },
    keySets: sets
      ? sets.actions(log)
      : {
          addKey: unavailable('keyset-add-key'),
          reencrypt: unavailable('keyset-reencrypt'),
          retireKey: unavailable('keyset-retire-key'),
          flagExportStale: unavailable('keyset-flag-export-stale'),
          rotateKek: unavailable('kek-rotate'),
        },
    policy: {
      async raise(to) {
        const raise = deps.tenants.policies.raise;
        if (!raise) throw new KeyturnError('PLAYBOOK_ACTION_UNAVAILABLE', 'The key policy store cannot raise the policy', { action: 'raise-policy' });
        return { version: (await raise(to)).version };
      },
    },
    access: {
      async assignmentsOf(principalId, vaults) {
        if (!GUID.test(principalId)) return [];
        const scopes = vaults.flatMap((v) => (own[v] ?? customer[v] ? [own[v] ?? customer[v]!] : []));
        const found = await Promise.all(scopes.map((s) => listOrNone(deps.roleAssignments(), s, principalId)));
        const seen = new Set<string>();
        return found.flat().filter((a) => !seen.has(a.id.toLowerCase()) && seen.add(a.id.toLowerCase()));
      },
      async remove(assignment) {
        const name = assignment.id.split('/').at(-1)!;
        await deps.roleAssignments().delete(assignment.scope, name);
      },
    },
  });

  return { actions, planning: { inventory, context, approvalThreshold: config.playbooks.approvalThreshold }, protectedPrincipals, ...(sets ? { keySetLookup: sets.lookup } : {}) };
}

/** A vault whose assignments Keyturn may not read (a customer's) has none it could act on: listed as none. */
async function listOrNone(arm: RoleAssignments, scope: string, principalId: string) {
  try {
    return await arm.listForScope(scope, { assignedTo: principalId });
  } catch (e) {
    if (e instanceof KeyturnError && e.code === 'ACCESS_DENIED') return [];
    throw e;
  }
}

/** `vault/name@version` (the snapshot pins the version: a re-run renews the same one, by `fromVersion`). */
function parseCredentialRef(ref: string): { vault: string; name: string; version?: string } {
  const m = /^([0-9a-zA-Z-]+)\/([0-9a-zA-Z-]+)(?:@([0-9a-zA-Z]+))?$/.exec(ref);
  if (!m) throw new ValidationError('scope.credentials', `scope.credentials: expected vault/name, got '${ref}'`);
  return { vault: m[1]!.toLowerCase(), name: m[2]!, ...(m[3] ? { version: m[3] } : {}) };
}

/** A BYOK tenant lost access to its key: Keyturn's `access-lost` incident, one per loss (the probe calls it while lost). */
export async function accessLostIncident(incidents: { service(log: Logger): IncidentService }, log: Logger, input: { tenantId: string; kid: string; vaultUrl: string; lostAt: string }): Promise<void> {
  await incidents.service(log).recordDoor(
    { type: 'access-lost', severity: 'P1', description: `Keyturn lost access to the BYOK key of tenant ${input.tenantId}`, scope: { tenants: [input.tenantId] }, details: { tenantId: input.tenantId, vault: input.vaultUrl } },
    `access-lost:${input.tenantId}:${input.kid}@${input.lostAt}`,
    { event: 'tenant.access-lost', evidence: { tenantId: input.tenantId, kid: input.kid, lostAt: input.lostAt, door: 'BYOK access probe' } },
  );
}
