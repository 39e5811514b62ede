/**
 * The incident record in Cosmos DB: incidents (ETag-guarded), their entries (create-only,
 * so a seq is taken exactly once: the server's 409 decides a race) and their runs on the
 * step kernel, each in the incident's partition. Tenants are read for the scope check.
 */
import type { Incident } from '../../domain/incident';
import type { EntryDoc } from '../../domain/incidentChain';
import type { IncidentJob } from '../../domain/incidentPlaybook';
import type { Tenant } from '../../domain/tenantKeys';
import type { EntryStore, IncidentJobStore, IncidentStore, TenantSummary } from '../../services/incidents/ports';
import { type ContainerRef, DocumentStore } from '../cosmos';

type Param = { name: string; value: string | number | boolean | null };

export function cosmosIncidentStore(container: ContainerRef, ready: () => Promise<void>): IncidentStore {
  const docs = new DocumentStore<Incident>(container, (i) => i.incidentId);
  return {
    async read(incidentId) {
      await ready();
      return docs.read(incidentId, incidentId);
    },
    async createOnly(incident) {
      await ready();
      return (await docs.createOnly(incident)).created;
    },
    async replace(incident, etag) {
      await ready();
      return docs.replace(incident, etag);
    },
    async list(filter, page) {
      await ready();
      const where: string[] = [];
      const params: Param[] = [];
      if (filter.state) {
        where.push('c.state = @state');
        params.push({ name: '@state', value: filter.state });
      }
      if (filter.type) {
        where.push('c.type = @type');
        params.push({ name: '@type', value: filter.type });
      }
      const query = `SELECT * FROM c${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY c.openedAt DESC`;
      const result = await docs.queryPage(query, params, page);
      return { items: result.items.map((i) => i.doc), ...(result.continuation ? { continuation: result.continuation } : {}) };
    },
    async ids() {
      await ready();
      const rows = await docs.query('SELECT c.id, c.incidentId FROM c');
      return rows.map((r) => r.doc.incidentId);
    },
  };
}

export function cosmosEntryStore(container: ContainerRef, ready: () => Promise<void>): EntryStore {
  const docs = new DocumentStore<EntryDoc>(container, (e) => e.incidentId);
  return {
    async read(incidentId, seq) {
      await ready();
      return (await docs.read(`${incidentId}:${seq}`, incidentId))?.doc;
    },
    async createOnly(entry) {
      await ready();
      return (await docs.createOnly(entry)).created;
    },
    async all(incidentId) {
      await ready();
      return (await docs.query('SELECT * FROM c WHERE c.incidentId = @id', [{ name: '@id', value: incidentId }])).map((r) => r.doc);
    },
    async byRef(incidentId, ref) {
      await ready();
      const rows = await docs.query('SELECT * FROM c WHERE c.incidentId = @id AND c.evidence.ref = @ref', [
        { name: '@id', value: incidentId },
        { name: '@ref', value: ref },
      ]);
      return rows[0]?.doc;
    },
  };
}

export function cosmosIncidentJobStore(container: ContainerRef, ready: () => Promise<void>): IncidentJobStore {
  const docs = new DocumentStore<IncidentJob>(container, (j) => j.incidentId);
  return {
    async read(id) {
      await ready();
      return docs.read(id, id); // a run's id is its incident's
    },
    async replace(job, etag) {
      await ready();
      return docs.replace(job, etag);
    },
    async createOnly(job) {
      await ready();
      return (await docs.createOnly(job)).created;
    },
    async due(now, limit) {
      await ready();
      const page = await docs.queryPage('SELECT * FROM c WHERE c.dueAt <= @now ORDER BY c.dueAt', [{ name: '@now', value: now.toISOString() }], { maxItems: limit });
      return page.items.map((i) => i.doc);
    },
  };
}

const summary = (t: Tenant): TenantSummary => ({
  tenantId: t.tenantId,
  topology: t.topology,
  state: t.state,
  ...(t.activeKid ? { activeKid: t.activeKid } : {}),
  adminContacts: t.adminContacts ?? [],
  versions: t.versions.map((v) => ({ kid: v.kid, state: v.state })),
});

/** Tenants for the scope check: point reads by id; a scan for kids and `all` (one document per tenant). */
export function cosmosTenantLookup(container: ContainerRef, ready: () => Promise<void>) {
  const docs = new DocumentStore<Tenant>(container, (t) => t.tenantId);
  const every = async () => (await docs.query('SELECT * FROM c')).map((r) => summary(r.doc));
  return {
    async tenants(ids?: string[]): Promise<TenantSummary[]> {
      await ready();
      if (!ids) return every();
      const found = await Promise.all(ids.map((id) => docs.read(id, id)));
      return found.flatMap((f) => (f ? [summary(f.doc)] : []));
    },
    async tenantsByKid(kids: string[]): Promise<TenantSummary[]> {
      await ready();
      const wanted = new Set(kids);
      return (await every()).filter((t) => t.versions.some((v) => wanted.has(v.kid)));
    },
  };
}
