/**
 * Minimal outbound HTTP(S) for deliveries and handshakes. Trust for https
 * endpoints is per agent (public roots + local CA + caForEndpoints); TLS checks
 * are never switched off.
 */
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';

export interface OutboundResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface OutboundRequest {
  method: 'POST' | 'OPTIONS' | 'GET';
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
}

/** Response bodies are only needed for the validation reply; cap what we buffer. */
const MAX_RESPONSE_BYTES = 64 * 1024;

export class OutboundClient {
  private readonly httpAgent = new http.Agent({ keepAlive: false });
  private readonly httpsAgent: https.Agent;
  private readonly inFlight = new Set<http.ClientRequest>();

  constructor(trustedCas: string[]) {
    this.httpsAgent = new https.Agent({ keepAlive: false, ca: [...rootCertificates, ...trustedCas] });
  }

  send(req: OutboundRequest): Promise<OutboundResponse> {
    return new Promise((resolve, reject) => {
      let url: URL;
      try {
        url = new URL(req.url);
      } catch {
        reject(new Error(`invalid endpoint URL ${req.url}`));
        return;
      }
      const isHttps = url.protocol === 'https:';
      const headers: Record<string, string> = { ...req.headers };
      if (req.body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(req.body));
      const request = (isHttps ? https : http).request(url, {
        method: req.method,
        headers,
        agent: isHttps ? this.httpsAgent : this.httpAgent,
      });
      this.inFlight.add(request);
      const timer = setTimeout(() => request.destroy(new Error(`timed out after ${req.timeoutMs} ms`)), req.timeoutMs);
      timer.unref();
      const done = (): void => {
        clearTimeout(timer);
        this.inFlight.delete(request);
      };
      request.on('error', (err) => {
        done();
        reject(err);
      });
      request.on('response', (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size <= MAX_RESPONSE_BYTES) chunks.push(chunk);
        });
        res.on('error', (err) => {
          done();
          reject(err);
        });
        res.on('end', () => {
          done();
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
        });
      });
      request.end(req.body);
    });
  }

  /** Aborts whatever is still in flight (close()). */
  destroy(): void {
    for (const request of this.inFlight) request.destroy(new Error('local Event Grid is closing'));
    this.inFlight.clear();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
