/**
 * The SecretStore port on Key Vault (`@azure/keyvault-secrets`). Values are wrapped
 * in SecretValue at once and never leave this file in the clear except into setSecret.
 */
import type { SecretClient, SecretProperties } from '@azure/keyvault-secrets';
import { type SecretProps, SecretValue, type SecretStore, newestVersion } from '../../services/renewal/ports';
import { statusOf } from '../../errors';

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
    async read(vault, name, version) {
      const secret = await clientOf(vault).getSecret(name, { version });
      if (secret.value === undefined) throw new Error(`Secret ${name}/${version} has no value`);
      return new SecretValue(secret.value);
    },
    async write(vault, name, value, options) {
      const secret = await clientOf(vault).setSecret(name, value.reveal(), {
        tags: options.tags,
        ...(options.expiresOn ? { expiresOn: options.expiresOn } : {}),
        ...(options.contentType ? { contentType: options.contentType } : {}),
      });
      return props(secret.properties);
    },
    async update(vault, name, version, changes) {
      await clientOf(vault).updateSecretProperties(name, version, {
        ...(changes.enabled !== undefined ? { enabled: changes.enabled } : {}),
        ...(changes.tags ? { tags: changes.tags } : {}),
      });
    },
  };
}
