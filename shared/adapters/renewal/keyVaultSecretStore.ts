/**
 * The SecretStore port on Key Vault (`@azure/keyvault-secrets`). Values are wrapped
 * in SecretValue at once and never leave this file in the clear except into setSecret.
 */
import type { SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import { type SecretListing, type SecretListingPage, type SecretProps, SecretValue, type SecretStore, newestVersion } from '../../services/renewal/ports';
import { ValidationError, statusOf } from '../../errors';
import { withSendCount } from '../keyVault/clients';

/** A listed secret as the generated client returns it (`SecretItem`). */
interface SecretItem {
  id?: string;
  attributes?: { enabled?: boolean; expires?: Date; created?: Date };
  tags?: Record<string, string>;
  contentType?: string;
}
interface ItemPage extends Array<SecretItem> {
  continuationToken?: string;
}
interface GeneratedClient {
  getSecrets(options: { maxresults?: number }): { byPage(settings: { continuationToken?: string }): AsyncIterableIterator<ItemPage> };
}

/**
 * One page of `GET /secrets` with its nextLink. SecretClient's own `byPage` maps each page
 * to a new array and so drops `continuationToken` (4.11.2), so this asks the generated
 * client it wraps, the same pipeline and credential.
 */
async function secretItemPage(client: SecretClient, maxItems: number, continuation: string | undefined): Promise<ItemPage> {
  const generated = (client as unknown as { client?: GeneratedClient }).client;
  if (typeof generated?.getSecrets !== 'function') throw new Error('SecretClient has no generated client to page secrets with');
  const pages = generated.getSecrets({ maxresults: maxItems }).byPage(continuation ? { continuationToken: continuation } : {});
  const first = await pages.next();
  return first.done ? [] : first.value;
}

function listing(item: SecretItem): SecretListing | undefined {
  if (!item.id) return undefined;
  // Required here, not imported: module load pulls no SDK (cold start); by now a client exists, so it is loaded.
  const { parseKeyVaultSecretIdentifier } = require('@azure/keyvault-secrets') as typeof import('@azure/keyvault-secrets');
  const { name } = parseKeyVaultSecretIdentifier(item.id);
  const a = item.attributes ?? {};
  return {
    name,
    enabled: a.enabled !== false,
    tags: { ...(item.tags ?? {}) },
    ...(a.expires ? { expiresOn: a.expires } : {}),
    ...(a.created ? { createdOn: a.created } : {}),
    ...(item.contentType ? { contentType: item.contentType } : {}),
  };
}

/** A continuation is the service's absolute nextLink: only ever followed on the vault's own `/secrets`. */
function ownNextLink(client: SecretClient, link: string): boolean {
  try {
    const url = new URL(link);
    const vault = new URL(client.vaultUrl);
    return url.origin === vault.origin && url.pathname.replace(/\/+$/, '') === `${vault.pathname.replace(/\/+$/, '')}/secrets`;
  } catch {
    return false;
  }
}

function props(p: SecretProperties): SecretProps {
  return {
    name: p.name,
    version: p.version ?? '',
    enabled: p.enabled !== false,
    tags: { ...(p.tags ?? {}) },
    ...(p.expiresOn ? { expiresOn: p.expiresOn } : {}),
    ...(p.createdOn ? { createdOn: p.createdOn } : {}),
    ...(p.contentType ? { contentType: p.contentType } : {}),
  };
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

export function keyVaultSecretStore(clientOf: (vault: string) => SecretClient): SecretStore {
  const versions = async (vault: string, name: string): Promise<SecretProps[]> => {
    try {
      return (await collect(clientOf(vault).listPropertiesOfSecretVersions(name))).map(props);
    } catch (e) {
      if (statusOf(e) === 404) return [];
      throw e;
    }
  };
  return {
    async latest(vault, name) {
      try {
        const secret = await clientOf(vault).getSecret(name);
        return props(secret.properties); // the value is dropped here
      } catch (e) {
        const status = statusOf(e);
        if (status === 404) return undefined;
        if (status !== 403) throw e;
        // 403: the latest version is disabled; its properties are still listed.
        return newestVersion(await versions(vault, name));
      }
    },
    versions,
    async list(vault) {
      return (await collect(clientOf(vault).listPropertiesOfSecrets())).map((p) => ({ name: p.name, tags: { ...(p.tags ?? {}) } }));
    },
    async listPage(vault, page): Promise<SecretListingPage> {
      const client = clientOf(vault);
      if (page.continuation !== undefined && !ownNextLink(client, page.continuation)) {
        throw new ValidationError('query.continuationToken', 'query.continuationToken: not a continuation of this vault\'s listing');
      }
      const items = await secretItemPage(client, Math.max(1, Math.min(page.maxItems, 25)), page.continuation);
      const out = items.map(listing).filter((l): l is SecretListing => l !== undefined);
      return { items: out, ...(items.continuationToken ? { continuation: items.continuationToken } : {}) };
    },
    async read(vault, name, version) {
      const secret = await clientOf(vault).getSecret(name, { version });
      if (secret.value === undefined) throw new Error(`Secret ${name}/${version} has no value`);
      return new SecretValue(secret.value);
    },
    async write(vault, name, value, options) {
      const client = clientOf(vault);
      // Counted per call: the caller skips looking for duplicate versions only after a write sent once.
      const { result: secret, sends } = await withSendCount((headers) =>
        client.setSecret(name, value.reveal(), {
          tags: options.tags,
          ...(options.expiresOn ? { expiresOn: options.expiresOn } : {}),
          ...(options.contentType ? { contentType: options.contentType } : {}),
          requestOptions: { headers },
        }),
      );
      return { ...props(secret.properties), ...(sends !== undefined ? { attempts: sends } : {}) };
    },
    async update(vault, name, version, changes) {
      await clientOf(vault).updateSecretProperties(name, version, {
        ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}),
        ...(changes.tags ? { tags: changes.tags } : {}),
      });
    },
  };
}
