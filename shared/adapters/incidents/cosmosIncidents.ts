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
import { type ContainerRef, DocumentStore, type QueryParam, type Ready } from '../cosmos';
import { cosmosJobStore } from '../cosmosJobStore';

export function cosmosIncidentStore(container: ContainerRef, ready: Ready): IncidentStore {
  const docs = new DocumentStore<Incident>(container, (i) => i.incidentId, ready);
  return {
    read: (incidentId) => docs.read(incidentId, incidentId),
    createOnly: async (incident) => (await docs.createOnly(incident)).created,
    replace: (incident, etag) => docs.replace(incident, etag),
    async list(filter, page) {
      const where: string[] = [];
      const params: QueryParam[] = [];
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
      const rows = await docs.query('SELECT c.id, c.incidentId FROM c');
      return rows.map((r) => r.doc.incidentId);
    },
  };
}

export function cosmosEntryStore(container: ContainerRef, ready: Ready): EntryStore {
  const docs = new DocumentStore<EntryDoc>(container, (e) => e.incidentId, ready);
  return {
    read: async (incidentId, seq) => (await docs.read(`${incidentId}:${seq}`, incidentId))?.doc,
    createOnly: async (entry) => (await docs.createOnly(entry)).created,
    async all(incidentId) {
      return (await docs.query('SELECT * FROM c WHERE c.incidentId = @id', [{ name: '@id', value: incidentId }])).map((r) => r.doc);
    },
    async byRef(incidentId, ref) {
      const rows = await docs.query('SELECT * FROM c WHERE c.incidentId = @id AND c.evidence.ref = @ref', [
        { name: '@id', value: incidentId },
        { name: '@ref', value: ref },
      ]);
      return rows[0]?.doc;
    },
  };
}

/** Runs on the step kernel; a run's id is its incident's (its partition). */
export function cosmosIncidentJobStore(container: ContainerRef, ready: Ready): IncidentJobStore {
  return cosmosJobStore<IncidentJob>(container, { partitionOf: (j) => j.incidentId, partitionOfId: (id) => id, ready });
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
export function cosmosTenantLookup(container: ContainerRef, ready: Ready) {
  const docs = new DocumentStore<Tenant>(container, (t) => t.tenantId, ready);
  const every = async () => (await docs.query('SELECT * FROM c')).map((r) => summary(r.doc));
  return {
    async tenants(ids?: string[]): Promise<TenantSummary[]> {
      if (!ids) return every();
      const found = await Promise.all(ids.map((id) => docs.read(id, id)));
      return found.flatMap((f) => (f ? [summary(f.doc)] : []));
    },
    async tenantsByKid(kids: string[]): Promise<TenantSummary[]> {
      const wanted = new Set(kids);
      return (await every()).filter((t) => t.versions.some((v) => wanted.has(v.kid)));
    },
  };
}
