/**
 * `POST /runtime/webhooks/EventGrid?functionName={name}` with the Event Grid extension's
 * rules (HttpRequestProcessor): `aeg-event-type` SubscriptionValidation / Notification /
 * Unsubscribe, one invocation per event in parallel, and the CloudEvents OPTIONS handshake.
 */

export interface WebhookRequest {
  method: string;
  /** Lower-cased header names. */
  headers: Record<string, string | undefined>;
  functionName: string | null;
  body: Buffer;
}

export interface WebhookResponse {
  status: number;
  headers?: Record<string, string>;
  text?: string;
  json?: unknown;
}

export interface WebhookTarget {
  /** Exact-name lookup of an enabled Event Grid function. */
  has(functionName: string): boolean;
  /** Runs the function for one event; resolves to an error message or null on success. */
  deliver(functionName: string, event: unknown): Promise<string | null>;
}

export const EVENT_GRID_WEBHOOK_PATH = '/runtime/webhooks/eventgrid';

/** Event Grid's own delivery limits: a batch holds at most 5,000 events and 1 MB. */
export const MAX_DELIVERY_EVENTS = 5000;
export const MAX_DELIVERY_BYTES = 1024 * 1024;

function parseEvents(body: Buffer): unknown[] | null {
  try {
    const parsed: unknown = JSON.parse(body.toString('utf8'));
    if (Array.isArray(parsed)) return parsed;
    if (typeof parsed === 'object' && parsed !== null) return [parsed];
    return null;
  } catch {
    return null;
  }
}

export async function handleEventGridWebhook(req: WebhookRequest, target: WebhookTarget): Promise<WebhookResponse> {
  const method = req.method.toUpperCase();
  if (method === 'OPTIONS') {
    // CloudEvents abuse-protection handshake.
    return { status: 200, headers: { 'WebHook-Allowed-Origin': req.headers['webhook-request-origin'] ?? 'eventgrid.azure.net' } };
  }
  if (method !== 'POST') return { status: 404 };

  const name = req.functionName ?? '';
  if (!name || !target.has(name)) return { status: 404, text: `cannot find function: '${name}'` };

  // Larger than Event Grid ever sends: refused whole (it dead-letters a 413), never half-processed.
  if (req.body.length > MAX_DELIVERY_BYTES) return { status: 413, text: `A delivery is at most ${MAX_DELIVERY_BYTES} bytes.` };
  const eventType = req.headers['aeg-event-type'];
  const events = parseEvents(req.body);

  if (eventType === 'SubscriptionValidation') {
    const first = events?.[0] as { data?: { validationCode?: unknown } } | undefined;
    const code = first?.data?.validationCode;
    if (typeof code !== 'string') return { status: 400, text: 'The validation event has no data.validationCode.' };
    return { status: 200, json: { validationResponse: code } };
  }
  if (eventType === 'Unsubscribe') return { status: 202 };

  if (eventType !== 'Notification') {
    return { status: 400, text: eventType === undefined ? 'Missing aeg-event-type header.' : `Unknown aeg-event-type '${eventType}'.` };
  }
  if (events === null) return { status: 400, text: 'The request body must be a JSON event or an array of events.' };
  if (events.length > MAX_DELIVERY_EVENTS) return { status: 413, text: `A delivery is at most ${MAX_DELIVERY_EVENTS} events.` };

  const failures = (await Promise.all(events.map((event) => target.deliver(name, event)))).filter((m): m is string => m !== null);
  if (failures.length > 0) return { status: 500, text: failures.join(', ') };
  return { status: 202 };
}
