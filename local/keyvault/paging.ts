import { badParameter } from './errors';

/** The service caps a page at 25 items; `maxresults` only ever makes pages smaller. */
export const MAX_PAGE = 25;

export interface Page<T> {
  value: T[];
  nextLink: string | null;
}

/**
 * One page of `items`. The continuation is an absolute URL (the SDK fetches it
 * verbatim) carrying the request's own api-version and page size.
 */
export function pageOf<T>(items: T[], baseUrl: string, path: string, query: URLSearchParams): Page<T> {
  const rawMax = query.get('maxresults');
  let size = MAX_PAGE;
  if (rawMax !== null && rawMax !== '') {
    const n = Number(rawMax);
    if (!Number.isInteger(n) || n < 1 || n > MAX_PAGE) {
      throw badParameter(`Invalid maxresults '${rawMax}': it must be an integer from 1 to ${MAX_PAGE}.`);
    }
    size = n;
  }
  const token = query.get('$skiptoken');
  let start = 0;
  if (token) {
    start = Number(Buffer.from(token, 'base64url').toString('utf8'));
    if (!Number.isInteger(start) || start < 0) throw badParameter('Invalid $skiptoken.');
  }
  const value = items.slice(start, start + size);
  let nextLink: string | null = null;
  if (start + size < items.length) {
    const next = new URLSearchParams();
    const apiVersion = query.get('api-version');
    if (apiVersion) next.set('api-version', apiVersion);
    next.set('$skiptoken', Buffer.from(String(start + size), 'utf8').toString('base64url'));
    if (rawMax) next.set('maxresults', String(size));
    nextLink = `${baseUrl}${path}?${next.toString()}`;
  }
  return { value, nextLink };
}
