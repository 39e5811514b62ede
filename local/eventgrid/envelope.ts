/**
 * Validation of published event envelopes (pure). Returns the first problem
 * with the field path, so the 400 names it like Azure does.
 */
import { valueExceedsDepth } from '../../shared/domain/jsonDepth';
import type { CloudEventV1, EventGridEvent } from './types';

export class EnvelopeError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

/** An accepted event: the Event Grid form (topic stamped) and, if it came in as one, the original CloudEvent. */
export interface StoredEvent {
  event: EventGridEvent;
  cloudEvent?: CloudEventV1;
}

/**
 * The grid clones and serialises events recursively, so it refuses nesting that would
 * overflow the stack. The limit is well above the app's MAX_JSON_DEPTH (64): a too-deep
 * event still reaches the subscriber, which dead-letters it, as it would from Azure.
 */
export const MAX_EVENT_JSON_DEPTH = 256;

function checkDepth(raw: unknown, path: string): void {
  // Value walk without recursion; a cyclic in-process event counts as too deep.
  if (valueExceedsDepth(raw, MAX_EVENT_JSON_DEPTH)) {
    throw new EnvelopeError(`${path}: the event nests deeper than ${MAX_EVENT_JSON_DEPTH} levels`, path);
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function requireString(obj: Record<string, unknown>, key: string, path: string, allowEmpty = false): string {
  const value = obj[key];
  if (value === undefined || value === null) throw new EnvelopeError(`${path}.${key}: required property '${key}' was not set`, `${path}.${key}`);
  if (typeof value !== 'string') throw new EnvelopeError(`${path}.${key}: must be a string`, `${path}.${key}`);
  if (!allowEmpty && value === '') throw new EnvelopeError(`${path}.${key}: must not be empty`, `${path}.${key}`);
  return value;
}

function requireTime(value: unknown, field: string): string {
  const text = value instanceof Date ? value.toISOString() : value;
  if (typeof text !== 'string' || Number.isNaN(Date.parse(text))) {
    throw new EnvelopeError(`${field}: must be an ISO-8601 date-time`, field);
  }
  return text;
}

/**
 * Event Grid schema event. `topic` is stamped by the grid; a publisher may
 * send it only if it equals the topic (Azure rejects a different one).
 */
export function parseEventGridEvent(raw: unknown, topic: string, path: string): EventGridEvent {
  if (!isRecord(raw)) throw new EnvelopeError(`${path}: each event must be a JSON object`, path);
  checkDepth(raw, path);
  const id = requireString(raw, 'id', path);
  const subject = requireString(raw, 'subject', path, true);
  const eventType = requireString(raw, 'eventType', path);
  if (raw['eventTime'] === undefined || raw['eventTime'] === null) {
    throw new EnvelopeError(`${path}.eventTime: required property 'eventTime' was not set`, `${path}.eventTime`);
  }
  const eventTime = requireTime(raw['eventTime'], `${path}.eventTime`);
  const givenTopic = raw['topic'];
  if (givenTopic !== undefined && givenTopic !== null && givenTopic !== '') {
    if (typeof givenTopic !== 'string' || givenTopic.toLowerCase() !== topic.toLowerCase()) {
      throw new EnvelopeError(`${path}.topic: must be omitted or equal to '${topic}'`, `${path}.topic`);
    }
  }
  const dataVersion = raw['dataVersion'];
  if (dataVersion !== undefined && dataVersion !== null && typeof dataVersion !== 'string') {
    throw new EnvelopeError(`${path}.dataVersion: must be a string`, `${path}.dataVersion`);
  }
  const metadataVersion = raw['metadataVersion'];
  if (metadataVersion !== undefined && metadataVersion !== null && metadataVersion !== '1') {
    throw new EnvelopeError(`${path}.metadataVersion: must be omitted or '1'`, `${path}.metadataVersion`);
  }
  const event: EventGridEvent = {
    id,
    topic,
    subject,
    eventType,
    eventTime,
    dataVersion: typeof dataVersion === 'string' ? dataVersion : '',
    metadataVersion: '1',
  };
  if (raw['data'] !== undefined) event.data = raw['data'];
  return event;
}

const CE_ATTRIBUTE = /^[a-z0-9]+$/;

/** CloudEvents 1.0 JSON event. Extension attributes are kept. */
export function parseCloudEvent(raw: unknown, path: string): CloudEventV1 {
  if (!isRecord(raw)) throw new EnvelopeError(`${path}: each event must be a JSON object`, path);
  checkDepth(raw, path);
  const id = requireString(raw, 'id', path);
  const source = requireString(raw, 'source', path);
  const type = requireString(raw, 'type', path);
  const specversion = requireString(raw, 'specversion', path);
  if (specversion !== '1.0') throw new EnvelopeError(`${path}.specversion: must be '1.0'`, `${path}.specversion`);
  if (raw['data'] !== undefined && raw['data_base64'] !== undefined) {
    throw new EnvelopeError(`${path}.data_base64: 'data' and 'data_base64' are mutually exclusive`, `${path}.data_base64`);
  }
  for (const key of ['subject', 'datacontenttype', 'dataschema', 'data_base64']) {
    const value = raw[key];
    if (value !== undefined && value !== null && typeof value !== 'string') {
      throw new EnvelopeError(`${path}.${key}: must be a string`, `${path}.${key}`);
    }
  }
  for (const key of Object.keys(raw)) {
    if (key !== 'data_base64' && !CE_ATTRIBUTE.test(key)) {
      throw new EnvelopeError(`${path}.${key}: attribute names must be lower-case letters and digits`, `${path}.${key}`);
    }
  }
  const ce: CloudEventV1 = { ...raw, id, source, type, specversion: '1.0' };
  if (raw['time'] !== undefined && raw['time'] !== null) ce.time = requireTime(raw['time'], `${path}.time`);
  else ce.time = new Date().toISOString();
  return ce;
}

export function parseEventGridBatch(body: unknown, topic: string): EventGridEvent[] {
  if (!Array.isArray(body)) throw new EnvelopeError('body: must be a JSON array of events', 'body');
  return body.map((raw, i) => parseEventGridEvent(raw, topic, `[${i}]`));
}

/** A CloudEvents batch is an array; `application/cloudevents+json` is a single object. */
export function parseCloudEventBatch(body: unknown): CloudEventV1[] {
  if (Array.isArray(body)) return body.map((raw, i) => parseCloudEvent(raw, `[${i}]`));
  return [parseCloudEvent(body, '[0]')];
}
