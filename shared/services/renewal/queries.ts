/** What HTTP reads of renewal: the managed credentials (a page at a time) and one rotation. */
import { ValidationError, notFound } from '../../errors';
import { isPendingSecretName, readCredentialTags } from '../../domain/managedCredential';
import { ROTATION_ID, type Rotation } from '../../domain/rotation';
import { type RenewalContext, tagDefaults } from './context';
import { type ListingCursor, decodeCursor, encodeCursor } from './listingCursor';
import type { SecretListing } from './ports';
import { credentialView, rotationView } from './views';

export const LISTING_TOP = { min: 1, max: 500, default: 100 } as const;
/** Key Vault's own page size (its maximum). */
const KV_PAGE = 25;
/** Secrets read at once for their current version (Key Vault's listing has none). */
const READS_AT_ONCE = 16;

export interface CredentialsPage {
  credentials: ReturnType<typeof credentialView>[];
  /** Present when there is more: pass it back as `continuationToken`. */
  continuationToken?: string;
}

/** Runs `fn` over `items` with at most `limit` calls in flight, results in order. */
async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/**
 * One page of managed (or invalidly tagged) credentials, in vault order then Key Vault's
 * listing order. Built from Key Vault's paged listing (tags say what is managed), one
 * read per listed managed secret for its current version, and ONE Cosmos DB query for the
 * page's rotations. A page may hold fewer than `top` (a stretch of unmanaged secrets ends
 * it early, to bound the work of one request); only an absent token means the end.
 */
export async function listCredentialsPage(c: RenewalContext, page: { top: number; continuationToken?: string }): Promise<CredentialsPage> {
  const { secrets, rotations, settings, clock } = c.deps;
  const vaults = Object.keys(settings.vaults);
  let cursor: ListingCursor | undefined = page.continuationToken ? decodeCursor(page.continuationToken) : vaults[0] !== undefined ? { vault: vaults[0], skip: 0 } : undefined;
  if (cursor && !vaults.includes(cursor.vault)) throw new ValidationError('query.continuationToken', 'query.continuationToken: not a token this listing issued');

  const defaults = tagDefaults(settings);
  const picked: { vault: string; item: SecretListing }[] = [];
  // Bounds one request's Key Vault listing calls, however many unmanaged secrets there are.
  let listCalls = Math.ceil(page.top / KV_PAGE) * 2 + 2;
  while (cursor && picked.length < page.top && listCalls-- > 0) {
    const at: ListingCursor = cursor;
    const listed = await secrets.listPage(at.vault, { maxItems: KV_PAGE, ...(at.kv ? { continuation: at.kv } : {}) });
    const nextPage: ListingCursor | undefined = listed.continuation ? { vault: at.vault, kv: listed.continuation, skip: 0 } : nextVault(vaults, at.vault);
    let i = at.skip;
    for (; i < listed.items.length && picked.length < page.top; i++) {
      const item = listed.items[i]!;
      if (isPendingSecretName(item.name)) continue;
      if (readCredentialTags(item.tags, defaults, item.name).kind === 'unmanaged') continue;
      picked.push({ vault: at.vault, item });
    }
    cursor = i < listed.items.length ? { ...at, skip: i } : nextPage;
  }

  const now = await clock.now();
  const latestRotations = await latestRotationsOf(c, picked);
  const views = await mapLimited(picked, READS_AT_ONCE, async ({ vault, item }) => {
    const latest = await secrets.latest(vault, item.name);
    if (!latest) return undefined; // deleted since it was listed
    const reading = readCredentialTags(latest.tags, defaults, latest.name);
    if (reading.kind === 'unmanaged') return undefined;
    return credentialView(vault, latest, reading, latestRotations.get(`${vault}\n${item.name.toLowerCase()}`), now);
  });
  return {
    credentials: views.filter((v): v is NonNullable<typeof v> => v !== undefined),
    ...(cursor ? { continuationToken: encodeCursor(cursor) } : {}),
  };
}

const nextVault = (vaults: string[], vault: string): ListingCursor | undefined => {
  const next = vaults[vaults.indexOf(vault) + 1];
  return next === undefined ? undefined : { vault: next, skip: 0 };
};

/** The latest rotation of each picked credential: one query per vault on the page (one in all, mostly). */
async function latestRotationsOf(c: RenewalContext, picked: { vault: string; item: SecretListing }[]): Promise<Map<string, Rotation>> {
  const byVault = new Map<string, string[]>();
  for (const { vault, item } of picked) byVault.set(vault, [...(byVault.get(vault) ?? []), item.name]);
  const latest = new Map<string, Rotation>();
  for (const [vault, names] of byVault) {
    for (const r of await c.deps.rotations.forCredentials(vault, names)) {
      const key = `${vault}\n${r.name.toLowerCase()}`;
      const seen = latest.get(key);
      if (!seen || seen.createdAt.localeCompare(r.createdAt) < 0) latest.set(key, r);
    }
  }
  return latest;
}

/** Every managed credential: the pages walked to the end. */
export async function listCredentials(c: RenewalContext) {
  const out: CredentialsPage['credentials'] = [];
  let continuationToken: string | undefined;
  do {
    const page = await listCredentialsPage(c, { top: LISTING_TOP.max, ...(continuationToken ? { continuationToken } : {}) });
    out.push(...page.credentials);
    continuationToken = page.continuationToken;
  } while (continuationToken);
  return out;
}

export async function getRotation(c: RenewalContext, id: string) {
  if (!ROTATION_ID.test(id)) throw notFound(`Rotation '${id}'`);
  const stored = await c.deps.rotations.read(id);
  if (!stored) throw notFound(`Rotation '${id}'`, { rotationId: id });
  return rotationView(stored.doc, await c.deps.clock.now());
}
