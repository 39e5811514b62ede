/**
 * Encryption key sets in Cosmos DB: the set and its data keys in `keySets`, items in
 * `keySetItems`, both partitioned by set id. Not the signing key set (`../signing`).
 */
import type { DataKey, Item, KeySet, KeySetExport } from '../../domain/keySet';
import type { Versioned } from '../../ports';
import type { KeySetStore } from '../../services/keySets/ports';
import { type ContainerRef, DocumentStore, type QueryParam, type Ready } from '../cosmos';

const top = (n: number) => Math.max(1, Math.min(1001, Math.floor(n)));

export function cosmosEncryptionKeySetStore(sets: ContainerRef, items: ContainerRef, ready: Ready): KeySetStore {
  const setDocs = new DocumentStore<KeySet>(sets, (s) => s.setId, ready);
  const keyDocs = new DocumentStore<DataKey>(sets, (k) => k.setId, ready);
  const exportDocs = new DocumentStore<KeySetExport>(sets, (e) => e.setId, ready);
  const itemDocs = new DocumentStore<Item>(items, (i) => i.setId, ready);
  const page = (where: string, params: QueryParam[], setId: string, p: { after?: string; top: number }) =>
    itemDocs.query(`SELECT TOP ${top(p.top)} * FROM c WHERE c.setId = @setId AND c.id > @after${where} ORDER BY c.id`, [
      { name: '@setId', value: setId },
      { name: '@after', value: p.after ?? '' },
      ...params,
    ]);
  return {
    readSet: (setId) => setDocs.read('set', setId),
    createSet: (set) => setDocs.createOnly(set),
    replaceSet: (set, etag) => setDocs.replace(set, etag),
    setsByKek: (kekName) => setDocs.query("SELECT * FROM c WHERE c.id = 'set' AND c.kek.name = @name", [{ name: '@name', value: kekName }]),
    listSets: (p) => setDocs.queryPage("SELECT * FROM c WHERE c.id = 'set' ORDER BY c.setId", [], p),
    readExport: (setId, exportId) => exportDocs.read(`export:${exportId}`, setId),
    createExport: (e) => exportDocs.create(e),
    replaceExport: (e, etag) => exportDocs.replace(e, etag),
    readKey: (setId, keyId) => keyDocs.read(`key:${keyId}`, setId),
    listKeys: (setId) => keyDocs.query("SELECT * FROM c WHERE c.setId = @setId AND STARTSWITH(c.id, 'key:')", [{ name: '@setId', value: setId }]),
    createKey: (key) => keyDocs.createOnly(key),
    replaceKey: (key, etag) => keyDocs.replace(key, etag),
    readItem: (setId, itemId) => itemDocs.read(itemId, setId),
    writeItem: (item, etag): Promise<Versioned<Item>> => (etag === undefined ? itemDocs.create(item) : itemDocs.replace(item, etag)),
    deleteItem: (setId, itemId) => itemDocs.delete(itemId, setId),
    listItems: (setId, p) => page('', [], setId, p),
    itemsNotOnKey: (setId, keyId, p) => page(" AND c.state = 'ok' AND c.keyId != @keyId", [{ name: '@keyId', value: keyId }], setId, p),
    itemsBeforeGeneration: (setId, generation, p) => page(' AND c.generation < @generation', [{ name: '@generation', value: generation }], setId, p),
    async nextReentryOwner(setId, generation, afterOwner) {
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
    countBeforeGeneration: (setId, generation) =>
      itemDocs.count('SELECT VALUE COUNT(1) FROM c WHERE c.setId = @setId AND c.generation < @generation', [
        { name: '@setId', value: setId },
        { name: '@generation', value: generation },
      ]),
  };
}
