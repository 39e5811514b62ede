/**
 * Cosmos DB: one client, the database and its containers (created idempotently at
 * start with the partition keys the design needs), and the ETag-guarded document
 * operations every state store is built from.
 */
import type { Container, CosmosClient, Database } from '@azure/cosmos';
import type { TokenCredential } from '@azure/identity';
import { ConcurrencyConflict } from '../errors';
import type { Versioned } from '../ports';
import { statusOf } from '../errors';
import { httpsAgent } from './tlsAgent';

export { ConcurrencyConflict };

/** Container id → partition key path. The one list of Keyturn's containers. */
export const CONTAINERS = {
  rotations: '/credentialId',
  deadLetters: '/source',
  signingKeys: '/issuer',
  idempotencyKeys: '/id',
  /** Tenant keys: one document per tenant (its versions inside), in the tenant's partition. */
  tenants: '/tenantId',
  /** Tenant-key jobs (rekeys, revokes, notices) on the step kernel, in the tenant's partition. */
  tenantJobs: '/tenantId',
  /** Tenant keys (BYOK): one create-only claim per customer key, so no two tenants hold one key. */
  tenantKeyClaims: '/id',
  /** The stored key policy (versioned documents). */
  keyPolicies: '/kind',
  // Incidents (issue 14): one document per incident; its entries (create-only, `{incidentId}:{seq}`) and its run, in its partition.
  incidents: '/incidentId',
  incidentEntries: '/incidentId',
  incidentJobs: '/incidentId',
  // Tenant keys part 2: backup records, restore jobs, export jobs (TTL per document).
  tenantBackups: '/tenantId',
  tenantRestores: '/tenantId',
  tenantExports: '/tenantId',
  // Encryption key sets (issue 13).
  /** Key sets: the set document (`set`) and its data keys (`key:{keyId}`, uses reserved on them), in the set's partition. */
  keySets: '/setId',
  /** Key-set items (ciphertexts only), in their set's partition. */
  keySetItems: '/setId',
  /** Queue-driven batch jobs (re-encryption, abandon): the job and the cursor of its next batch. */
  batchJobs: '/id',
} as const;

/** Containers with TTL on (`-1`: each document says when it expires, in its `ttl`). */
export const CONTAINER_DEFAULT_TTL: Partial<Record<ContainerName, number>> = { idempotencyKeys: -1, tenantExports: -1 };

export type ContainerName = keyof typeof CONTAINERS;

/** A container, or how to get it on first use (so building a store needs no client yet). */
export type ContainerRef = Container | (() => Container);

export interface CosmosHandle {
  /** Built on first use: module load pulls no SDK (cold start). */
  readonly client: CosmosClient;
  readonly database: Database;
  container(name: ContainerName): Container;
  /** Creates the database and containers if missing; safe to call on every start. */
  ensureSchema(): Promise<void>;
}

export function createCosmos(options: {
  endpoint: string;
  key?: string;
  database: string;
  ca?: string;
  /** The managed identity, used when there is no key (Azure). */
  credential?: () => TokenCredential;
}): CosmosHandle {
  if (!options.key && !options.credential) throw new Error('Cosmos DB needs a key or a credential');
  let built: { client: CosmosClient; database: Database } | undefined;
  const sdk = () => {
    if (built) return built;
    // Required here, not imported: the SDK loads on first use, not at cold start.
    const { CosmosClient } = require('@azure/cosmos') as typeof import('@azure/cosmos');
    const client = new CosmosClient({
      endpoint: options.endpoint,
      ...(options.key ? { key: options.key } : { aadCredentials: options.credential!() }),
      agent: httpsAgent(options.ca)(),
      // The local server and the emulator have one region; discovery would rewrite the endpoint.
      connectionPolicy: { enableEndpointDiscovery: false },
    });
    built = { client, database: client.database(options.database) };
    return built;
  };
  let schema: Promise<void> | undefined;
  return {
    get client() {
      return sdk().client;
    },
    get database() {
      return sdk().database;
    },
    container: (name) => sdk().database.container(name),
    ensureSchema() {
      // One listing at start-up instead of a read per container (28 round trips the first
      // request waited for at every cold start); only what is missing is created, in parallel.
      schema ??= (async () => {
        const { client, database } = sdk();
        let existing: Set<string>;
        try {
          existing = new Set((await database.containers.readAll().fetchAll()).resources.map((c) => c.id));
        } catch (e) {
          if (statusOf(e) !== 404) throw e;
          await client.databases.createIfNotExists({ id: options.database });
          existing = new Set();
        }
        await Promise.all(
          Object.entries(CONTAINERS)
            .filter(([id]) => !existing.has(id))
            .map(([id, path]) => {
              const ttl = CONTAINER_DEFAULT_TTL[id as ContainerName];
              return database.containers.createIfNotExists({ id, partitionKey: { paths: [path] }, ...(ttl !== undefined ? { defaultTtl: ttl } : {}) });
            }),
        );
      })().catch((e) => {
        schema = undefined; // a later call retries (e.g. Cosmos started after the app)
        throw e;
      });
      return schema;
    },
  };
}


/** What a create-only write did: created it (with its ETag), or found the id taken. */
export type CreateOutcome<T> = { created: true; value: Versioned<T> } | { created: false };

/** A query parameter (`@name`). */
export type QueryParam = { name: string; value: string | number | boolean | null };

/** Runs before a store's first use, e.g. the idempotent schema creation (`ensureSchema`). */
export type Ready = () => Promise<void>;

const alreadyReady: Ready = async () => {};

/**
 * ETag-guarded CRUD over one container; documents are plain JSON with `id` and the
 * partition key. Every operation awaits `ready` first (the schema exists before any
 * request), so the stores built on it need not repeat it.
 */
export class DocumentStore<T extends { id: string }> {
  private readonly ref: ContainerRef;

  constructor(
    container: ContainerRef,
    private readonly partitionKeyOf: (doc: T) => string,
    private readonly ready: Ready = alreadyReady,
  ) {
    this.ref = container;
  }

  /** The container, once `ready` has run (resolved on first use: no client is built before). */
  private async open(): Promise<Container> {
    await this.ready();
    return typeof this.ref === 'function' ? this.ref() : this.ref;
  }

  async read(id: string, partitionKey: string): Promise<Versioned<T> | undefined> {
    const container = await this.open(); // outside the try: a failed `ready` is not a 404
    try {
      const { resource, etag, statusCode } = await container.item(id, partitionKey).read<T>();
      if (statusCode === 404 || !resource) return undefined;
      return { doc: strip(resource), etag: etag as string };
    } catch (e) {
      if (statusOf(e) === 404) return undefined;
      throw e;
    }
  }

  /** Creates the document; throws ConcurrencyConflict('exists') if the id is taken (409). */
  async create(doc: T): Promise<Versioned<T>> {
    const container = await this.open();
    try {
      const { resource, etag } = await container.items.create<T>(doc);
      return { doc: strip(resource as T), etag: etag as string };
    } catch (e) {
      if (statusOf(e) === 409) throw new ConcurrencyConflict('exists', doc.id);
      throw e;
    }
  }

  /**
   * Creates the document only if its id is free, for append patterns (one record per
   * event, claim or step). "Already exists" is an outcome, not an error: the caller
   * that lost the race reads what is there. The server decides (409), so two
   * concurrent calls for one id create it exactly once. Append one document per call:
   * the local Cosmos DB server does not roll back transactional batches, so never rely
   * on batch atomicity for "all or nothing".
   */
  async createOnly(doc: T): Promise<CreateOutcome<T>> {
    const container = await this.open();
    try {
      const { resource, etag } = await container.items.create<T>(doc);
      return { created: true, value: { doc: strip(resource as T), etag: etag as string } };
    } catch (e) {
      if (statusOf(e) === 409) return { created: false };
      throw e;
    }
  }

  /** Replaces the document if its ETag still matches; throws ConcurrencyConflict('changed') on 412. */
  async replace(doc: T, etag: string): Promise<Versioned<T>> {
    const container = await this.open();
    try {
      const { resource, etag: next } = await container
        .item(doc.id, this.partitionKeyOf(doc))
        .replace<T>(doc, { accessCondition: { type: 'IfMatch', condition: etag } });
      return { doc: strip(resource as T), etag: next as string };
    } catch (e) {
      if (statusOf(e) === 412) throw new ConcurrencyConflict('changed', doc.id);
      throw e;
    }
  }

  /** Deletes the document; false when there was none (404). */
  async delete(id: string, partitionKey: string): Promise<boolean> {
    const container = await this.open();
    try {
      await container.item(id, partitionKey).delete();
      return true;
    } catch (e) {
      if (statusOf(e) === 404) return false;
      throw e;
    }
  }

  /** A `SELECT VALUE COUNT(1) …` query's number (0 when it answers nothing). */
  async count(query: string, parameters: QueryParam[] = []): Promise<number> {
    const { resources } = await (await this.open()).items.query<number>({ query, parameters }).fetchAll();
    return resources.reduce((sum, n) => sum + (typeof n === 'number' ? n : 0), 0);
  }

  async query(query: string, parameters: QueryParam[] = []): Promise<Versioned<T>[]> {
    const { resources } = await (await this.open()).items
      .query<T & { _etag: string }>({ query, parameters })
      .fetchAll();
    return resources.map((r) => ({ doc: strip(r), etag: r._etag }));
  }

  /**
   * One page of a query, paged by Cosmos DB itself: at most `maxItems` documents and the
   * continuation token of the next page (absent after the last). With `ORDER BY` the
   * order holds across pages; nothing is sorted or collected in memory here.
   */
  async queryPage(
    query: string,
    parameters: QueryParam[],
    page: { maxItems: number; continuation?: string },
  ): Promise<{ items: Versioned<T>[]; continuation?: string }> {
    const response = await (await this.open()).items
      .query<T & { _etag: string }>({ query, parameters }, { maxItemCount: page.maxItems, ...(page.continuation ? { continuationToken: page.continuation } : {}) })
      .fetchNext();
    const items = response.resources.map((r) => ({ doc: strip(r), etag: r._etag }));
    return { items, ...(response.hasMoreResults && response.continuationToken ? { continuation: response.continuationToken } : {}) };
  }
}

/** Drops Cosmos system properties so documents round-trip as plain domain data. */
function strip<T>(resource: T): T {
  const { _rid, _self, _etag, _attachments, _ts, ...rest } = resource as Record<string, unknown>;
  void _rid; void _self; void _etag; void _attachments; void _ts;
  return rest as T;
}
