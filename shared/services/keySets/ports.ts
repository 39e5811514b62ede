/**
 * Ports of the encryption key sets (Cosmos DB adapters in `shared/adapters/keySets`;
 * unit tests hand in plain objects). Every write is ETag-guarded or create-only.
 */
import type { DataKey, Item, KeySet, KeySetExport } from '../../domain/keySet';
import type { Versioned } from '../../ports';

export interface KeySetStore {
  readSet(setId: string): Promise<Versioned<KeySet> | undefined>;
  createSet(set: KeySet): Promise<{ created: true; value: Versioned<KeySet> } | { created: false }>;
  /** ETag-guarded; ConcurrencyConflict('changed') when another writer came first. */
  replaceSet(set: KeySet, etag: string): Promise<Versioned<KeySet>>;

  /** Sets whose KEK has this Key Vault name (any vault; the caller compares the vault). */
  setsByKek(kekName: string): Promise<Versioned<KeySet>[]>;
  /** Every set, one page at a time in set-id order (a playbook's `all: true` scope); the continuation is the store's own. */
  listSets(page: { maxItems: number; continuation?: string }): Promise<{ items: Versioned<KeySet>[]; continuation?: string }>;

  readExport(setId: string, exportId: string): Promise<Versioned<KeySetExport> | undefined>;
  createExport(e: KeySetExport): Promise<Versioned<KeySetExport>>;
  replaceExport(e: KeySetExport, etag: string): Promise<Versioned<KeySetExport>>;

  readKey(setId: string, keyId: string): Promise<Versioned<DataKey> | undefined>;
  listKeys(setId: string): Promise<Versioned<DataKey>[]>;
  createKey(key: DataKey): Promise<{ created: true; value: Versioned<DataKey> } | { created: false }>;
  replaceKey(key: DataKey, etag: string): Promise<Versioned<DataKey>>;

  readItem(setId: string, itemId: string): Promise<Versioned<Item> | undefined>;
  /** Creates or replaces: `etag` guards a replace, `undefined` means create-only. */
  writeItem(item: Item, etag: string | undefined): Promise<Versioned<Item>>;
  /** Resolves whether it existed. */
  deleteItem(setId: string, itemId: string): Promise<boolean>;
  /** One page in item-id order, after `after` (exclusive). */
  listItems(setId: string, page: { after?: string; top: number }): Promise<Versioned<Item>[]>;
  /** Items in item-id order after `after` whose key is not `keyId` (re-encryption's batches). */
  itemsNotOnKey(setId: string, keyId: string, page: { after?: string; top: number }): Promise<Versioned<Item>[]>;
  /** Items in item-id order after `after` of a generation below `generation` (abandon's batches). */
  itemsBeforeGeneration(setId: string, generation: number, page: { after?: string; top: number }): Promise<Versioned<Item>[]>;
  /** The first owner after `afterOwner` (string order; '' for the first) with items that need re-entry of a generation below `generation`. */
  nextReentryOwner(setId: string, generation: number, afterOwner: string): Promise<string | undefined>;
  /** That owner's items needing re-entry (generation below `generation`), in item-id order after `after`. */
  reentryItemsOfOwner(setId: string, generation: number, owner: string, page: { after?: string; top: number }): Promise<Versioned<Item>[]>;
  /** One stored item sealed under `keyId` (an import checks the key opens it). */
  oneItemOnKey(setId: string, keyId: string): Promise<Versioned<Item> | undefined>;
  /** Items per key id (items with a ciphertext). */
  countByKey(setId: string): Promise<Record<string, number>>;
  countBeforeGeneration(setId: string, generation: number): Promise<number>;
}

/** Export files in Blob storage. */
export interface ExportFiles {
  /** Writes the blob (create only: an existing name is a CONFLICT). */
  write(container: string, name: string, content: Uint8Array): Promise<void>;
}
