/**
 * Key Vault's error envelope. Client errors are always 4xx: the SDK retries 5xx
 * for several seconds, which would turn every mistake into a slow test.
 */
export class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly innerCode?: string,
  ) {
    super(message);
  }

  body(): { error: { code: string; message: string; innererror?: { code: string } } } {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.innerCode ? { innererror: { code: this.innerCode } } : {}),
      },
    };
  }
}

export const badParameter = (message: string): KvError => new KvError(400, 'BadParameter', message);

export const notImplemented = (operation: string): KvError =>
  new KvError(501, 'NotImplemented', `Operation '${operation}' is not implemented by the Keyturn Key Vault emulator.`);

export function notFound(kind: 'Key' | 'Secret', name: string, deleted = false): KvError {
  const message = deleted
    ? `Deleted ${kind} not found: ${name}`
    : `A ${kind.toLowerCase()} with (name/id) ${name} was not found in this key vault. If you recently deleted this ${kind.toLowerCase()} you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`;
  return new KvError(404, `${kind}NotFound`, message);
}

export function deletedButRecoverable(kind: 'Key' | 'Secret', name: string): KvError {
  return new KvError(
    409,
    'Conflict',
    `${kind} ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the ${kind.toLowerCase()} can only be recovered or purged.`,
    'ObjectIsDeletedButRecoverable',
  );
}

export function conflict(message: string): KvError {
  return new KvError(409, 'Conflict', message);
}

export function forbidden(message: string, innerCode?: string): KvError {
  return new KvError(403, 'Forbidden', message, innerCode);
}

/** Key Vault's answer when RBAC denies a data action (the shape the real service sends). */
export function forbiddenByRbac(dataAction: string, resource: string, callerOid: string, vaultName: string): KvError {
  return forbidden(
    `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: oid=${callerOid}\r\nAction: '${dataAction}'\r\nResource: '${resource.toLowerCase()}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${vaultName};location=local\r\n`,
    'ForbiddenByRbac',
  );
}

export function purgeProtected(kind: 'Key' | 'Secret', name: string, vaultName: string): KvError {
  return forbidden(
    `Operation "purge" is not allowed because purge protection is enabled for this vault. Key Vault service will automatically purge it after the retention period has passed.\r\nVault: ${vaultName};location=local\r\n${kind}: ${name}`,
    'PurgeProtectionEnabled',
  );
}
