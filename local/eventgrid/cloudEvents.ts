/**
 * Conversion between the Event Grid schema and CloudEvents 1.0 (pure).
 * Mapping is the one Azure documents for CloudEvents output on a topic:
 * source = topic, type = eventType, time = eventTime.
 */
import type { CloudEventV1, EventGridEvent } from './types';

/** Event Grid schema → CloudEvents 1.0 JSON, for CloudEventSchemaV1_0 subscriptions. */
export function toCloudEvent(event: EventGridEvent): CloudEventV1 {
  const ce: CloudEventV1 = {
    id: event.id,
    source: event.topic ?? '',
    type: event.eventType,
    specversion: '1.0',
    time: event.eventTime,
    datacontenttype: 'application/json',
  };
  // CloudEvents forbids an empty subject; Event Grid events often have one.
  if (event.subject !== '') ce.subject = event.subject;
  if (event.data !== undefined) ce.data = event.data;
  return ce;
}

/**
 * CloudEvent published to a topic → Event Grid schema, for EventGridSchema
 * subscriptions. The topic is the one it was published to; `source` is not kept.
 */
export function fromCloudEvent(ce: CloudEventV1, topic: string): EventGridEvent {
  return {
    id: ce.id,
    topic,
    subject: ce.subject ?? '',
    eventType: ce.type,
    eventTime: ce.time ?? new Date().toISOString(),
    data: ce.data !== undefined ? ce.data : ce.data_base64,
    dataVersion: '',
    metadataVersion: '1',
  };
}
