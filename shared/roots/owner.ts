/**
 * A lease holder's name for one wiring of a life cycle in this process (host, pid, a
 * random suffix), made on first use: `node:os` is not loaded at cold start.
 */
import { randomUUID } from 'node:crypto';

export function leaseOwner(): () => string {
  let owner: string | undefined;
  return () => (owner ??= `${(require('node:os') as typeof import('node:os')).hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`);
}
