/**
 * Endpoint validation handshakes, as Azure does them before the first delivery:
 * - Event Grid schema: a SubscriptionValidationEvent POST; the endpoint must
 *   answer 200 with {"validationResponse": code} (202 does not count).
 * - CloudEvents schema: the CloudEvents webhook abuse-protection OPTIONS
 *   request; the endpoint must answer 200 and allow our origin.
 */
import { randomUUID } from 'node:crypto';
import type { OutboundClient } from './httpClient';
import type { EventGridEvent, Subscription } from './types';

export const VALIDATION_EVENT_TYPE = 'Microsoft.EventGrid.SubscriptionValidationEvent';
export const WEBHOOK_ORIGIN = 'eventgrid.azure.net';

export interface HandshakeResult {
  ok: boolean;
  /** Why it failed, for logs and the subscription's lastValidationError. */
  reason?: string;
  /** True when the endpoint answered at all (as opposed to refused/timed out). */
  answered: boolean;
}

/** The validation event Azure sends (one element array). Exported for tests. */
export function validationEvent(topic: string, code: string, validationUrl: string): EventGridEvent {
  return {
    id: randomUUID(),
    topic,
    subject: '',
    data: { validationCode: code, validationUrl },
    eventType: VALIDATION_EVENT_TYPE,
    eventTime: new Date().toISOString(),
    metadataVersion: '1',
    dataVersion: '2',
  };
}

/** Accepts `validationResponse` in any key casing, as Azure's JSON binder does. */
export function readValidationResponse(body: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  for (const [key, value] of Object.entries(parsed)) {
    if (key.toLowerCase() === 'validationresponse' && typeof value === 'string') return value;
  }
  return undefined;
}

export interface HandshakeContext {
  client: OutboundClient;
  timeoutMs: number;
  /** Topic id to put in the validation event ('*' subscriptions use the custom topic). */
  topic: string;
  /** One code per subscription (re)creation, reused across retries like Azure's. */
  code: string;
  /** Manual-validation URL for the code (a GET on it marks the subscription validated). */
  validationUrl: string;
}

export async function handshake(sub: Subscription, ctx: HandshakeContext): Promise<HandshakeResult> {
  try {
    return sub.schema === 'CloudEventSchemaV1_0' ? await optionsHandshake(sub, ctx) : await eventGridHandshake(sub, ctx);
  } catch (err) {
    return { ok: false, answered: false, reason: `endpoint not reachable: ${(err as Error).message}` };
  }
}

async function eventGridHandshake(sub: Subscription, ctx: HandshakeContext): Promise<HandshakeResult> {
  const { code } = ctx;
  const res = await ctx.client.send({
    method: 'POST',
    url: sub.endpoint,
    headers: {
      'Content-Type': 'application/json',
      'aeg-event-type': 'SubscriptionValidation',
      'aeg-subscription-name': sub.name.toUpperCase(),
      'aeg-delivery-count': '0',
      'aeg-metadata-version': '1',
      'aeg-data-version': '2',
    },
    body: JSON.stringify([validationEvent(ctx.topic, code, ctx.validationUrl)]),
    timeoutMs: ctx.timeoutMs,
  });
  if (res.status !== 200) {
    return { ok: false, answered: true, reason: `validation answered HTTP ${res.status} (needs 200 with {"validationResponse": code})` };
  }
  const answer = readValidationResponse(res.body);
  if (answer === undefined) return { ok: false, answered: true, reason: 'validation answered 200 without a validationResponse' };
  if (answer.toLowerCase() !== code.toLowerCase()) return { ok: false, answered: true, reason: 'validationResponse does not match the validationCode' };
  return { ok: true, answered: true };
}

async function optionsHandshake(sub: Subscription, ctx: HandshakeContext): Promise<HandshakeResult> {
  const res = await ctx.client.send({
    method: 'OPTIONS',
    url: sub.endpoint,
    headers: { 'WebHook-Request-Origin': WEBHOOK_ORIGIN },
    timeoutMs: ctx.timeoutMs,
  });
  if (res.status !== 200) return { ok: false, answered: true, reason: `OPTIONS handshake answered HTTP ${res.status} (needs 200)` };
  const allowed = res.headers['webhook-allowed-origin'];
  const origins = (Array.isArray(allowed) ? allowed.join(',') : (allowed ?? '')).split(',').map((o) => o.trim().toLowerCase());
  if (!origins.includes(WEBHOOK_ORIGIN) && !origins.includes('*')) {
    return { ok: false, answered: true, reason: `OPTIONS handshake answered 200 without WebHook-Allowed-Origin: ${WEBHOOK_ORIGIN}` };
  }
  return { ok: true, answered: true };
}
