/**
 * The local servers' (functions host, Key Vault emulator, Event Grid, ARM) one way to
 * read a request body and send a JSON answer. Each server keeps its own error shape:
 * `tooLarge` builds the error its clients expect for a body over the limit.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The whole body, or `tooLarge()` as soon as it passes `limitBytes` (a declared
 * Content-Length over the limit is refused before reading). The rest is drained, not
 * buffered, so the server can still answer 413 on the same connection.
 */
export function readBody(req: IncomingMessage, limitBytes: number, tooLarge: (size: number) => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > limitBytes) {
      req.resume();
      reject(tooLarge(declared));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (settled) return;
      if (size > limitBytes) {
        settled = true;
        chunks.length = 0;
        reject(tooLarge(size));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!settled) resolve(Buffer.concat(chunks));
      settled = true;
    });
    req.on('error', (err) => {
      if (!settled) reject(err);
      settled = true;
    });
  });
}

/** A JSON answer (no body when `payload` is undefined) with an exact Content-Length; `headers` may add or override. */
export function sendJson(res: ServerResponse, status: number, payload?: unknown, headers: Record<string, string> = {}): void {
  const body = payload === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(payload));
  res.writeHead(status, {
    ...(payload === undefined ? {} : { 'content-type': 'application/json; charset=utf-8' }),
    'content-length': String(body.length),
    ...headers,
  });
  res.end(body);
}
