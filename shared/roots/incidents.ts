/**
 * The incident record's part of the composition root: Cosmos DB stores (incidents,
 * entries, runs), checkpoints as secret versions in Keyturn's vault, the scope lookups
 * over the other life cycles' stores, one chain writer per process, the service, verify
 * and the run kind for the resume timer.
 */
import { leaseOwner } from './owner';
import type { Config } from '../config';
import type { CosmosHandle } from '../adapters/cosmos';
import type { KeyVaultClients } from '../adapters/keyVault/clients';
import { cosmosEntryStore, cosmosIncidentJobStore, cosmosIncidentStore, cosmosTenantLookup } from '../adapters/incidents/cosmosIncidents';
import { keyVaultCheckpointStore } from '../adapters/incidents/keyVaultCheckpoints';
import { cosmosIdempotencyStore } from '../adapters/renewal/cosmosRenewalStores';
import { keyVaultSecretStore } from '../adapters/renewal/keyVaultSecretStore';
import { cosmosKeySets } from '../adapters/signing/cosmosKeySets';
import { consoleLogger } from '../adapters/logger';
import type { Clock, FaultPoints, Logger, Notifier } from '../ports';
import { IncidentLog } from '../services/incidents/log';
import { incidentRunKind } from '../services/incidents/job';
import type { ScopeLookups } from '../services/incidents/ports';
import { IncidentService, type IncidentServiceDeps } from '../services/incidents/service';
import { type VerifyAllReport, type VerifyAnswer, verifyAll, verifyIncident, watchRecords } from '../services/incidents/verify';
import { StepRunner } from '../services/jobs/runner';
import { type ResumableKind, resumable } from '../services/jobs/registry';
import type { PlaybooksRoot } from './playbooks';

export interface IncidentsRoot {
  /** One per invocation (it logs to its context). */
  service(log: Logger): IncidentService;
  verify(log: Logger, incidentId: string): Promise<VerifyAnswer>;
  verifyAll(log: Logger): Promise<VerifyAllReport>;
  /** The daily timer: verify everything, open a log-tampering incident per finding. */
  watch(log: Logger): Promise<VerifyAllReport & { opened: string[] }>;
  /** Incident runs, for the resume timer. */
  resumable(log: Logger): ResumableKind;
  trustEasyAuthHeader: boolean;
  /** The local stack: dual-control identities may come from the body (`resolveIdentity`). */
  localStack: boolean;
}

export function buildIncidents(
  config: Config,
  deps: { keyVault: KeyVaultClients; cosmos: CosmosHandle; notifier: Notifier; clock: Clock; faults: FaultPoints; playbooks?: PlaybooksRoot },
): IncidentsRoot {
  const { cosmos, keyVault, clock, faults, notifier } = deps;
  const ready = () => cosmos.ensureSchema();
  const incidents = cosmosIncidentStore(() => cosmos.container('incidents'), ready);
  const entries = cosmosEntryStore(() => cosmos.container('incidentEntries'), ready);
  const jobs = cosmosIncidentJobStore(() => cosmos.container('incidentJobs'), ready);
  const checkpoints = keyVaultCheckpointStore(() => keyVault.secrets(config.incidents.vault));
  const tenants = cosmosTenantLookup(() => cosmos.container('tenants'), ready);
  const signingSets = cosmosKeySets(() => cosmos.container('signingKeys'), ready);
  const secrets = keyVaultSecretStore((vault) => keyVault.secrets(vault));
  const lookups: ScopeLookups = {
    tenants: (ids) => tenants.tenants(ids),
    tenantsByKid: (kids) => tenants.tenantsByKid(kids),
    signingKeys: async () => ((await signingSets.read(config.signing.issuer))?.set.keys ?? []).map((k) => ({ kid: k.kid, state: k.state })),
    credential: async (vault, name) => {
      const latest = await secrets.latest(vault, name);
      return latest ? { version: latest.version } : undefined;
    },
    vaults: () => [...Object.keys(config.vaults), ...Object.keys(config.customerVaults)],
    // Key sets (issue 13), with the playbooks; without them such scopes are a 400 SCOPE_KIND_UNSUPPORTED.
    ...(deps.playbooks?.keySetLookup ? { keySets: deps.playbooks.keySetLookup } : {}),
  };
  // One per process: its head and checkpoint hints are shared by every invocation here.
  const chain = new IncidentLog({ entries, checkpoints, clock, faults, log: consoleLogger, checkpointEvery: config.incidents.checkpointEvery });
  const idempotency = { store: cosmosIdempotencyStore(() => cosmos.container('idempotencyKeys'), ready), clock, leaseMs: config.renewal.leaseSeconds * 1000 };
  const owner = leaseOwner();
  const serviceDeps = (log: Logger): IncidentServiceDeps => ({
    incidents,
    entries,
    checkpoints,
    jobs,
    lookups,
    chain,
    notifier,
    clock,
    log,
    leaseMs: config.renewal.leaseSeconds * 1000,
    maxAttempts: config.renewal.maxAttempts,
    runner: new StepRunner({ clock, faults, log, owner: owner() }),
    idempotency,
    // Issue 15: the playbooks planned at open and the life cycles' actions their steps call.
    ...(deps.playbooks ? { playbooks: deps.playbooks.planning, playbookActions: deps.playbooks.actions(log) } : {}),
  });
  const service = (log: Logger) => new IncidentService(serviceDeps(log));
  return {
    service,
    verify: (log, incidentId) => verifyIncident(serviceDeps(log), incidentId),
    verifyAll: (log) => verifyAll(serviceDeps(log)),
    watch: (log) => watchRecords(serviceDeps(log), service(log), log),
    resumable(log) {
      const d = serviceDeps(log);
      return resumable(d.runner, incidentRunKind(d));
    },
    trustEasyAuthHeader: config.signing.trustEasyAuthHeader,
    localStack: config.localStack,
  };
}
