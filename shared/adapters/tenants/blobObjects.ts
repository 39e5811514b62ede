/**
 * The BlobObjects port on `@azure/storage-blob` (type import only; the client comes
 * from the root, built on first use). Containers are created on first write. Failures
 * become KeyturnErrors with fixed messages (`errors.ts` reads the SDK's error shape).
 */
import type { BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import { dependencyError, failureKind } from '../../errors';
import type { BlobObjects } from '../../services/tenants/opsPorts';

export function azureBlobObjects(client: () => BlobServiceClient): BlobObjects {
  const ready = new Map<string, Promise<ContainerClient>>();
  const container = (name: string): Promise<ContainerClient> => {
    let made = ready.get(name);
    if (!made) {
      const c = client().getContainerClient(name);
      made = c.createIfNotExists().then(() => c);
      made.catch(() => ready.delete(name));
      ready.set(name, made);
    }
    return made;
  };
  return {
    async putOnly(containerName, name, bytes, metadata = {}) {
      try {
        const c = await container(containerName);
        await c.getBlockBlobClient(name).upload(bytes, bytes.length, { metadata, conditions: { ifNoneMatch: '*' } });
        return true;
      } catch (e) {
        if (failureKind(e) === 'conflict') return false;
        throw dependencyError('Blob storage could not store a blob; retry later', e, { container: containerName });
      }
    },
    async get(containerName, name) {
      try {
        const blob = client().getContainerClient(containerName).getBlockBlobClient(name);
        const [bytes, properties] = await Promise.all([blob.downloadToBuffer(), blob.getProperties()]);
        return { bytes, metadata: { ...(properties.metadata ?? {}) } };
      } catch (e) {
        if (failureKind(e) === 'not-found') return undefined;
        throw dependencyError('Blob storage could not read a blob; retry later', e, { container: containerName });
      }
    },
    async delete(containerName, name) {
      try {
        await client().getContainerClient(containerName).getBlockBlobClient(name).deleteIfExists();
      } catch (e) {
        if (failureKind(e) === 'not-found') return;
        throw dependencyError('Blob storage could not delete a blob; retry later', e, { container: containerName });
      }
    },
  };
}
