/**
 * The HTTP status of an Azure SDK error: `statusCode` (RestError: Key Vault, Event
 * Grid, Storage) or a numeric `code` (Cosmos DB's ErrorResponse, whose `code` is the
 * status). Undefined when the error carries neither.
 */
export function statusOf(e: unknown): number | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const { statusCode, code } = e as { statusCode?: unknown; code?: unknown };
  for (const candidate of [statusCode, code]) {
    if (typeof candidate === 'number' && Number.isInteger(candidate)) return candidate;
    if (typeof candidate === 'string' && /^\d{3}$/.test(candidate)) return Number(candidate);
  }
  return undefined;
}
