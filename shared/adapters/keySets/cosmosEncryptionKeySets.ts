/**
 * Encryption key sets in Cosmos DB: the set and its data keys in `keySets`, items in
 * `keySetItems`, both partitioned by set id. Not the signing key set (`../signing`).
 */
import type { DataKey, Item, KeySet, KeySetExport } from '../../domain/keySet';
import type { Versioned } from '../../ports';
import type { KeySetStore } from '../../services/keySets/ports';
import { type ContainerRef, DocumentStore } from '../cosmos';

const top = (n: number) => Math.max(1, Math.min(1001, Math.floor(n)));

export function cosmosEncryptionKeySetStore(sets: ContainerRef, items: ContainerRef, ready: () => Promise<void>): KeySetStore {
  const setDocs = new DocumentStore<KeySet>(sets, (s) => s.setId);
  const keyDocs = new DocumentStore<DataKey>(sets, (k) => k.setId);
  const exportDocs = new DocumentStore<KeySetExport>(sets, (e) => e.setId);
  const itemDocs = new DocumentStore<Item>(items, (i) => i.setId);
  const page = async (where: string, params: { name: string; value: string | number }[], setId: string, p: { after?: string; top: number }) => {
    await ready();
    return itemDocs.query(`SELECT TOP ${top(p.top)} * FROM c WHERE c.setId = @setId AND c.id > @after${where} ORDER BY c.id`, [
      { name: '@setId', value: setId },
      { name: '@after', value: p.after ?? '' },
      ...params,
    ]);
  };
  return {
    async readSet(setId) {
      await ready();
      return setDocs.read('set', setId);
    },
    async createSet(set) {
      await ready();
      return setDocs.createOnly(set);
    },
    async replaceSet(set, etag) {
      await ready();
      return setDocs.replace(set, etag);
    },
    async setsByKek(kekName) {
      await ready();
      return setDocs.query("SELECT * FROM c WHERE c.id = 'set' AND c.kek.name = @name", [{ name: '@name', value: kekName }]);
    },
    async listSets(p) {
      await ready();
      return setDocs.queryPage("SELECT * FROM c WHERE c.id = 'set' ORDER BY c.setId", [], p);
    },
    async readExport(setId, exportId) {
      await ready();
      return exportDocs.read(`export:${exportId}`, setId);
    },
    async createExport(e) {
      await ready();
      return exportDocs.create(e);
    },
    async replaceExport(e, etag) {
      await ready();
      return exportDocs.replace(e, etag);
    },
    async readKey(setId, keyId) {
      await ready();
      return keyDocs.read(`key:${keyId}`, setId);
    },
    async listKeys(setId) {
      await ready();
      return keyDocs.query("SELECT * FROM c WHERE c.setId = @setId AND STARTSWITH(c.id, 'key:')", [{ name: '@setId', value: setId }]);
    },
    async createKey(key) {
      await ready();
      return keyDocs.createOnly(key);
    },
    async replaceKey(key, etag) {
      await ready();
      return keyDocs.replace(key, etag);
    },
    async readItem(setId, itemId) {
      await ready();
      return itemDocs.read(itemId, setId);
    },
    async writeItem(item, etag): Promise<Versioned<Item>> {
      await ready();
      return etag === undefined ? itemDocs.create(item) : itemDocs.replace(item, etag);
    },
    async deleteItem(setId, itemId) {
      await ready();
      return itemDocs.delete(itemId, setId);
    },
    listItems: (setId, p) => page('', [], setId, p),
    itemsNotOnKey: (setId, keyId, p) => page(" AND c.state = 'ok' AND c.keyId != @keyId", [{ name: '@keyId', value: keyId }], setId, p),
    itemsBeforeGeneration: (setId, generation, p) => page(' AND c.generation < @generation', [{ name: '@generation', value: generation }], setId, p),
    async nextReentryOwner(setId, generation, afterOwner) {
      await ready();
      // One ORDER BY property (no composite index needed); the owner's items are then paged by id.
      const [next] = await itemDocs.query(
        "SELECT TOP 1 * FROM c WHERE c.setId = @setId AND c.state = 'needs-reentry' AND c.generation < @generation AND c.owner > @after ORDER BY c.owner",
        [
          { name: '@setId', value: setId },
          { name: '@generation', value: generation },
          { name: '@after', value: afterOwner },
        ],
      );
      return next?.doc.owner;
    },
    reentryItemsOfOwner: (setId, generation, owner, p) =>
      page(" AND c.state = 'needs-reentry' AND c.generation < @generation AND c.owner = @owner", [{ name: '@generation', value: generation }, { name: '@owner', value: owner }], setId, p),
    async oneItemOnKey(setId, keyId) {
      return (await page(" AND c.state = 'ok' AND c.keyId = @keyId", [{ name: '@keyId', value: keyId }], setId, { top: 1 }))[0];
    },
    async countByKey(setId) {
      await ready();
      const keys = await keyDocs.query("SELECT * FROM c WHERE c.setId = @setId AND STARTSWITH(c.id, 'key:')", [{ name: '@setId', value: setId }]);
      const counts: Record<string, number> = {};
      await Promise.all(
        keys.map(async ({ doc }) => {
          counts[doc.keyId] = await itemDocs.count("SELECT VALUE COUNT(1) FROM c WHERE c.setId = @setId AND c.keyId = @keyId AND c.state = 'ok'", [
            { name: '@setId', value: setId },
            { name: '@keyId', value: doc.keyId },
          ]);
        }),
      );
      return counts;
    },
    async countBeforeGeneration(setId, generation) {
      await ready();
      return itemDocs.count('SELECT VALUE COUNT(1) FROM c WHERE c.setId = @setId AND c.generation < @generation', [
        { name: '@setId', value: setId },
        { name: '@generation', value: generation },
      ]);
    },
  };
}
