/**
 * Ports of the incident record. Adapters: Cosmos DB (`shared/adapters/incidents/
 * cosmosIncidents.ts`) for incidents, entries and runs; Key Vault secret versions
 * (`keyVaultCheckpoints.ts`) for checkpoints. Unit tests hand in plain objects.
 */
import type { Incident, IncidentState, IncidentType } from '../../domain/incident';
import type { Checkpoint, EntryDoc } from '../../domain/incidentChain';
import type { DeletedCheckpoints } from '../../domain/incidentLedger';
import type { IncidentJob } from '../../domain/incidentPlaybook';
import type { Versioned } from '../../ports';
import type { JobStore } from '../jobs/runner';

export interface IncidentStore {
  read(incidentId: string): Promise<Versioned<Incident> | undefined>;
  /** False when the id is taken (a duplicate open). */
  createOnly(incident: Incident): Promise<boolean>;
  /** ETag-guarded; ConcurrencyConflict('changed') when another writer came first. */
  replace(incident: Incident, etag: string): Promise<Versioned<Incident>>;
  /** Newest first; the continuation is the store's own (a changed one is a 400). */
  list(filter: { state?: IncidentState; type?: IncidentType }, page: { maxItems: number; continuation?: string }): Promise<{ items: Incident[]; continuation?: string }>;
  /** Every incident's id (verify everything). */
  ids(): Promise<string[]>;
}

/** Entries `{incidentId}:{seq}` in the incident's partition: created, never replaced. */
export interface EntryStore {
  read(incidentId: string, seq: number): Promise<EntryDoc | undefined>;
  /** False when that seq is taken: the caller re-reads the head and tries the next. */
  createOnly(entry: EntryDoc): Promise<boolean>;
  all(incidentId: string): Promise<EntryDoc[]>;
  /** The entry carrying `evidence.ref` (what makes a retried append a no-op). */
  byRef(incidentId: string, ref: string): Promise<EntryDoc | undefined>;
}

/** Checkpoints outside Cosmos DB: append-only versions, one series per incident (and the ledger). */
export interface CheckpointStore {
  latest(subject: string): Promise<Checkpoint | undefined>;
  all(subject: string): Promise<Checkpoint[]>;
  /** CHECKPOINT_DELETED when the subject's secret is soft-deleted (Key Vault refuses a new version until it is recovered). */
  append(checkpoint: Checkpoint): Promise<void>;
  /** Every subject with checkpoints, whether or not its documents still exist. */
  subjects(): Promise<string[]>;
  /** The subject's checkpoint secret when it is soft-deleted (recoverable); undefined when it is not deleted. ACCESS_DENIED without `deletedSecrets/read`. */
  deleted(subject: string): Promise<DeletedCheckpoints | undefined>;
  /** Every subject whose checkpoint secret is soft-deleted (found by its tag, as `subjects`). ACCESS_DENIED without `deletedSecrets/read`. */
  deletedSubjects(): Promise<string[]>;
}

export interface IncidentJobStore extends JobStore<IncidentJob> {
  createOnly(job: IncidentJob): Promise<boolean>;
}

/** A tenant as the scope check and the snapshot see it. */
export interface TenantSummary {
  tenantId: string;
  topology: string;
  state: string;
  activeKid?: string;
  adminContacts: string[];
  versions: { kid: string; state: string }[];
}

/** Key sets (another life cycle's): without its lookup wired in, such scopes are refused. */
export interface KeySetLookup {
  /** The named sets that exist; every set when `ids` is undefined (`all: true`). */
  sets(ids?: string[]): Promise<string[]>;
  /** The named keys that exist. */
  keys(refs: { set: string; keyId: string }[]): Promise<{ set: string; keyId: string }[]>;
}

/** Where the scope's ids are looked up. */
export interface ScopeLookups {
  /** The tenants with these ids; every tenant when `ids` is undefined (`all: true`). */
  tenants(ids?: string[]): Promise<TenantSummary[]>;
  /** The tenants holding any of these kids. */
  tenantsByKid(kids: string[]): Promise<TenantSummary[]>;
  signingKeys(): Promise<{ kid: string; state: string }[]>;
  /** A managed credential's current version, or undefined when the secret does not exist. */
  credential(vault: string, name: string): Promise<{ version: string } | undefined>;
  /** Vault names Keyturn knows (settings vaults and customer vaults). */
  vaults(): string[];
  keySets?: KeySetLookup;
}
