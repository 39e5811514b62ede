/**
 * Life cycles 2 and 3: tenant keys (service-managed and BYOK), the key policy, their
 * jobs (create, rekey, revoke, notices) and the BYOK access probes, built once per process by
 * the composition root (`shared/root.ts`). Services are cheap: one per invocation so
 * they log to its context.
 */
import { leaseOwner } from './owner';
import type { Config } from '../config';
import type { CosmosHandle } from '../adapters/cosmos';
import { type KeyVaultClients, LOCAL_APP_PRINCIPAL } from '../adapters/keyVault/clients';
import { vaultKeys } from '../adapters/keyVault/vaultKeys';
import { cosmosCreateStore, cosmosKeyClaimStore, cosmosNoticeStore, cosmosRekeyStore, cosmosRevokeStore, cosmosTenantStore } from '../adapters/tenants/cosmosTenants';
import type { Tenant } from '../domain/tenantKeys';
import type { Clock, FaultPoints, Logger, Notifier, RoleAssignments, VaultKeys } from '../ports';
import type { KeyVaultEventHandler } from '../services/events/ports';
import { type ResumableKind, resumable } from '../services/jobs/registry';
import { StepRunner } from '../services/jobs/runner';
import { type ProbeReport, probeByokTenants } from '../services/tenants/accessProbes';
import type { ByokDeps } from '../services/tenants/byok';
import { createJob, tenantCreator } from '../services/tenants/createJob';
import { tenantKeyEventHandler } from '../services/tenants/keyEvents';
import { noticeJob, noticeSink } from '../services/tenants/notices';
import { type RekeyAgeReport, applyRekeyAge } from '../services/tenants/rekeyAge';
import type { KeyPolicyStore } from '../services/tenants/ports';
import { rekeyJob } from '../services/tenants/rekeyJob';
import { RekeyService } from '../services/tenants/rekeyService';
import { type SelfUnassign, revokeJob } from '../services/tenants/revokeJob';
import { type RevokeRequest, revokeTenantKeys } from '../services/tenants/revokeService';
import { type TenantDeps, TenantService } from '../services/tenants/tenantService';
import type { TenantKeyEscrow } from '../services/tenants/opsPorts';

export interface TenantsRoot {
  /** One per invocation (it logs to its context). */
  service(log: Logger): TenantService;
  rekeys(log: Logger): RekeyService;
  revoke(log: Logger, tenantId: string, request: RevokeRequest): Promise<{ tenant: Tenant; complete: boolean; remaining: string[] }>;
  /** The BYOK access probes (the probe timer). */
  probe(log: Logger): Promise<ProbeReport>;
  /** The rekey-after-days policy (the same timer); undefined when KEYTURN_TENANT_REKEY_AFTER_DAYS is unset. */
  rekeyAge?: (log: Logger) => Promise<RekeyAgeReport>;
  /** The rekey job kind, for the resume timer (archives due changeovers). */
  resumable(log: Logger): ResumableKind;
  /** Revokes (verification retries, retention deletes) and unsent notices, for the resume timer. */
  revokeResumable(log: Logger): ResumableKind;
  noticeResumable(log: Logger): ResumableKind;
  /** Tenant creations (a crash between steps resumes with one key), for the resume timer. */
  createResumable(log: Logger): ResumableKind;
  /** KeyNearExpiry of a service-managed version → rekey; of a BYOK version → RekeyNeeded. */
  eventHandler: KeyVaultEventHandler;
  policies: KeyPolicyStore;
  keysMaxAgeSeconds: number;
  trustEasyAuthHeader: boolean;
}

export interface TenantsRootDeps {
  keyVault: KeyVaultClients;
  keys: VaultKeys;
  cosmos: CosmosHandle;
  clock: Clock;
  faults: FaultPoints;
  notifier: Notifier;
  /** The key policy every creation consults (one store, built in the composition root). */
  policies: KeyPolicyStore;
  roleAssignments: () => RoleAssignments;
  /** Tenant keys part 2: the escrow copy of each generated key (`roots/tenantOps.ts`). */
  escrow?: TenantKeyEscrow;
  /** Breach playbooks (issue 15): a BYOK tenant's lost access opens an `access-lost` incident (bound once incidents are built). */
  accessLost?: (log: Logger, input: { tenantId: string; kid: string; vaultUrl: string; lostAt: string }) => Promise<void>;
}

export function buildTenants(config: Config, deps: TenantsRootDeps): TenantsRoot {
  const ready = () => deps.cosmos.ensureSchema();
  const tenants = cosmosTenantStore(() => deps.cosmos.container('tenants'), ready);
  const rekeyStore = cosmosRekeyStore(() => deps.cosmos.container('tenantJobs'), ready);
  const revokeStore = cosmosRevokeStore(() => deps.cosmos.container('tenantJobs'), ready);
  const noticeStore = cosmosNoticeStore(() => deps.cosmos.container('tenantJobs'), ready);
  const createStore = cosmosCreateStore(() => deps.cosmos.container('tenantJobs'), ready);
  const claims = cosmosKeyClaimStore(() => deps.cosmos.container('tenantKeyClaims'), ready);
  const policies = deps.policies;
  const owner = leaseOwner();
  const byokConfig = config.tenantsByok;
  const leaseMs = config.renewal.leaseSeconds * 1000;
  const settings = {
    vaultUrl: deps.keyVault.vaultUrl(config.tenants.vault),
    keyBits: config.tenants.keyBits,
    validityMs: config.tenants.validityDays * 86_400_000,
    changeoverMs: config.tenants.changeoverHours * 3_600_000,
  };
  // One VaultKeys per customer Entra tenant (the cross-tenant credential is selected per vault URL + tenant).
  const perTenant = new Map<string, VaultKeys>();
  const byok: ByokDeps = {
    claims,
    keysFor: (customerTenantId) => {
      if (!customerTenantId) return deps.keys;
      let k = perTenant.get(customerTenantId);
      if (!k) perTenant.set(customerTenantId, (k = vaultKeys(deps.keyVault, { customerTenantId })));
      return k;
    },
    ownVaultUrls: deps.keyVault.vaultAliases().map((a) => deps.keyVault.vaultUrl(a)),
    local: deps.keyVault.local,
  };
  const runner = (log: Logger) => new StepRunner({ clock: deps.clock, faults: deps.faults, log, owner: owner() });
  const notices = (log: Logger) => {
    const kind = noticeJob({ notices: noticeStore, notifier: deps.notifier, log, leaseMs });
    return { kind, sink: noticeSink({ notices: noticeStore, runner: runner(log), kind, clock: deps.clock, log }) };
  };
  const maxAttempts = config.renewal.maxAttempts;
  const tenantDeps = (log: Logger): TenantDeps => ({
    tenants,
    policies,
    keys: deps.keys,
    clock: deps.clock,
    log,
    settings,
    byok,
    notices: notices(log).sink,
    escrow: deps.escrow,
    creates: tenantCreator({ store: createStore, runner: runner(log), leaseMs, maxAttempts }),
  });
  const service = (log: Logger) => new TenantService(tenantDeps(log));
  const rekeyKind = (log: Logger) =>
    rekeyJob({ deps: tenantDeps(log), service: service(log), rekeys: rekeyStore, leaseMs, maxAttempts: config.renewal.maxAttempts });
  const rekeys = (log: Logger) =>
    new RekeyService({ tenants: service(log), rekeys: rekeyStore, runner: runner(log), kind: rekeyKind(log), clock: deps.clock, log, store: tenants });

  // Local stack: the emulator's directory names the app; in Azure the managed identity's object id.
  const customerVaultUrls = config.customerVaults;
  const selfUnassign: SelfUnassign | undefined = Object.keys(byokConfig.selfUnassign).length
    ? {
        roleAssignments: deps.roleAssignments,
        principalId: byokConfig.appPrincipalId ?? (deps.keyVault.local ? (config.localPrincipal ?? LOCAL_APP_PRINCIPAL) : ''),
        vaultScopeOf(vaultUrl) {
          const name = Object.entries(customerVaultUrls).find(([, url]) => url === vaultUrl.toLowerCase())?.[0] ?? /^https:\/\/([^.]+)\.vault\.azure\.net$/.exec(vaultUrl)?.[1];
          return name ? byokConfig.selfUnassign[name.toLowerCase()] : undefined;
        },
      }
    : undefined;
  const verifyMs = byokConfig.revokeVerifyHours * 3_600_000;
  const revokeKind = (log: Logger) =>
    revokeJob({
      deps: tenantDeps(log),
      service: service(log),
      revokes: revokeStore,
      leaseMs,
      settings: { verifyMs, retentionMs: byokConfig.revokedRetentionDays * 86_400_000 },
      ...(selfUnassign ? { selfUnassign } : {}),
    });
  // Settings vaults by alias, and customer vaults by name (their events reach the intake too).
  const vaultUrlOf = (alias: string) =>
    deps.keyVault.vaultAliases().includes(alias) ? deps.keyVault.vaultUrl(alias) : customerVaultUrls[alias.toLowerCase()];
  const afterDays = config.tenantRekeyAge?.afterDays;
  return {
    service,
    rekeys,
    revoke: (log, tenantId, request) =>
      revokeTenantKeys({ tenants, revokes: revokeStore, runner: runner(log), kind: revokeKind(log), clock: deps.clock, log, verifyMs }, tenantId, request),
    probe: (log) =>
      probeByokTenants({
        tenants,
        service: service(log),
        rekeys: rekeys(log),
        notices: notices(log).sink,
        clock: deps.clock,
        log,
        windowMs: byokConfig.accessLostMinutes * 60_000,
        ...(deps.accessLost ? { onAccessLost: (input) => deps.accessLost!(log, input) } : {}),
      }),
    ...(afterDays !== undefined
      ? { rekeyAge: (log: Logger) => applyRekeyAge({ tenants, rekeys: rekeys(log), notices: notices(log).sink, clock: deps.clock, log, afterDays }) }
      : {}),
    eventHandler: tenantKeyEventHandler({ tenants: service, rekeys, vaultUrlOf, claims, notices: (log) => notices(log).sink }),
    resumable: (log) => resumable(runner(log), rekeyKind(log)),
    revokeResumable: (log) => resumable(runner(log), revokeKind(log)),
    noticeResumable: (log) => resumable(runner(log), notices(log).kind),
    createResumable: (log) => resumable(runner(log), createJob({ deps: tenantDeps(log), service: service(log), creates: createStore, leaseMs, maxAttempts })),
    policies,
    keysMaxAgeSeconds: config.tenants.keysMaxAgeSeconds,
    trustEasyAuthHeader: config.signing.trustEasyAuthHeader,
  };
}
