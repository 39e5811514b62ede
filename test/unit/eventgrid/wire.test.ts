import { AzureKeyCredential, generateSharedAccessSignature } from '@azure/eventgrid';
import { authenticate, parseServiceTime, verifySasToken } from '../../../local/eventgrid/auth';
import { fromCloudEvent, toCloudEvent } from '../../../local/eventgrid/cloudEvents';
import { deliveryOutcome, isSuccess, payloadFor, retryDelay } from '../../../local/eventgrid/delivery';
import { EnvelopeError, parseCloudEventBatch, parseEventGridBatch } from '../../../local/eventgrid/envelope';
import type { EventGridEvent } from '../../../local/eventgrid/types';
import { readValidationResponse, validationEvent } from '../../../local/eventgrid/validation';

const TOPIC = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/topics/t';
const egEvent: EventGridEvent = {
  id: 'e1',
  topic: TOPIC,
  subject: 'secrets/db',
  eventType: 'Keyturn.RotationCompleted',
  eventTime: '2025-01-02T03:04:05.000Z',
  data: { a: 1 },
  dataVersion: '1.0',
  metadataVersion: '1',
};

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(EnvelopeError);
    return (err as EnvelopeError).field;
  }
  throw new Error('expected an EnvelopeError');
}

describe('CloudEvents conversion', () => {
  it('maps Event Grid schema to CloudEvents 1.0', () => {
    expect(toCloudEvent(egEvent)).toEqual({
      id: 'e1',
      source: TOPIC,
      subject: 'secrets/db',
      type: 'Keyturn.RotationCompleted',
      time: '2025-01-02T03:04:05.000Z',
      data: { a: 1 },
      specversion: '1.0',
      datacontenttype: 'application/json',
    });
    expect(toCloudEvent({ ...egEvent, subject: '' })).not.toHaveProperty('subject');
  });

  it('maps a published CloudEvent to the Event Grid schema of its topic', () => {
    const ce = { id: 'c1', source: '/keyturn', type: 'T', specversion: '1.0' as const, time: '2025-01-01T00:00:00Z', data: { b: 2 } };
    expect(fromCloudEvent(ce, TOPIC)).toEqual({
      id: 'c1',
      topic: TOPIC,
      subject: '',
      eventType: 'T',
      eventTime: '2025-01-01T00:00:00Z',
      data: { b: 2 },
      dataVersion: '',
      metadataVersion: '1',
    });
  });

  it('delivers the original CloudEvent to CloudEvents subscribers, a converted one otherwise', () => {
    const cloudEvent = { id: 'c1', source: '/keyturn', type: 'T', specversion: '1.0' as const };
    const stored = [{ event: fromCloudEvent(cloudEvent, TOPIC), cloudEvent }, { event: egEvent }];
    const ce = payloadFor('CloudEventSchemaV1_0', stored);
    expect(ce[0]).toBe(cloudEvent);
    expect((ce[1] as { source: string }).source).toBe(TOPIC);
    expect(payloadFor('EventGridSchema', stored)[1]).toBe(egEvent);
  });
});

describe('envelope validation', () => {
  const raw = { id: 'x', subject: 's', eventType: 't', eventTime: '2025-01-01T00:00:00Z', data: {}, dataVersion: '1' };

  it('stamps topic and metadataVersion', () => {
    const [e] = parseEventGridBatch([raw], TOPIC);
    expect(e).toEqual({ ...raw, topic: TOPIC, metadataVersion: '1' });
  });

  it('defaults dataVersion to empty', () => {
    const { dataVersion: _omit, ...noVersion } = raw;
    expect(parseEventGridBatch([noVersion], TOPIC)[0]?.dataVersion).toBe('');
  });

  it.each([
    [{}, 'body'],
    [[{ ...raw, id: undefined }], '[0].id'],
    [[raw, { ...raw, eventType: '' }], '[1].eventType'],
    [[{ ...raw, eventTime: 'yesterday' }], '[0].eventTime'],
    [[{ ...raw, subject: 5 }], '[0].subject'],
    [[{ ...raw, topic: '/other' }], '[0].topic'],
    [[{ ...raw, metadataVersion: '2' }], '[0].metadataVersion'],
    [['nope'], '[0]'],
  ])('rejects Event Grid events naming the field (%#)', (body, field) => {
    expect(fieldOf(() => parseEventGridBatch(body, TOPIC))).toBe(field);
  });

  it('accepts a topic equal to the topic id', () => {
    expect(parseEventGridBatch([{ ...raw, topic: TOPIC.toLowerCase() }], TOPIC)[0]?.topic).toBe(TOPIC);
  });

  it('validates CloudEvents (batch or single)', () => {
    const ce = { id: 'c', source: '/s', type: 't', specversion: '1.0', comexampleext: 'v' };
    expect(parseCloudEventBatch(ce)).toHaveLength(1);
    expect(parseCloudEventBatch([ce])[0]).toMatchObject({ comexampleext: 'v' });
    expect(fieldOf(() => parseCloudEventBatch([{ ...ce, specversion: '0.3' }]))).toBe('[0].specversion');
    expect(fieldOf(() => parseCloudEventBatch([{ ...ce, source: undefined }]))).toBe('[0].source');
    expect(fieldOf(() => parseCloudEventBatch([{ ...ce, data: 1, data_base64: 'AA==' }]))).toBe('[0].data_base64');
    expect(fieldOf(() => parseCloudEventBatch([{ ...ce, BadName: 1 }]))).toBe('[0].BadName');
  });
});

describe('retry policy helpers', () => {
  it('walks the schedule and repeats its last entry', () => {
    const d = [10, 30, 60];
    expect([1, 2, 3, 4, 10].map((n) => retryDelay(d, n))).toEqual([10, 30, 60, 60, 60]);
    expect(retryDelay([], 3)).toBe(0);
  });

  it('counts only 200-204 as success', () => {
    expect([200, 202, 204].every(isSuccess)).toBe(true);
    expect([undefined, 199, 205, 302, 400, 500].some(isSuccess)).toBe(false);
  });

  it('describes the last outcome like Azure', () => {
    const base = { attempt: 1, at: '', endpoint: '', durationMs: 0 };
    expect(deliveryOutcome({ ...base, statusCode: 404 })).toBe('NotFound');
    expect(deliveryOutcome({ ...base, statusCode: 500 })).toBe('GenericError');
    expect(deliveryOutcome({ ...base, error: 'timed out after 5 ms' })).toBe('TimedOut');
    expect(deliveryOutcome(undefined)).toBeUndefined();
  });
});

describe('validation handshake pieces', () => {
  it('builds the SubscriptionValidationEvent Azure sends', () => {
    const e = validationEvent(TOPIC, 'code-1', 'https://x/validate?id=code-1');
    expect(e).toMatchObject({
      topic: TOPIC,
      subject: '',
      data: { validationCode: 'code-1', validationUrl: 'https://x/validate?id=code-1' },
      eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
      metadataVersion: '1',
      dataVersion: '2',
    });
    expect(Number.isNaN(Date.parse(e.eventTime))).toBe(false);
  });

  it('reads validationResponse in any casing', () => {
    expect(readValidationResponse('{"validationResponse":"a"}')).toBe('a');
    expect(readValidationResponse('{"ValidationResponse":"b"}')).toBe('b');
    expect(readValidationResponse('{"other":"c"}')).toBeUndefined();
    expect(readValidationResponse('not json')).toBeUndefined();
  });
});

describe('publisher authentication', () => {
  const key = 'bG9jYWwta2V5LWZvci10ZXN0cw==';

  it('checks aeg-sas-key', () => {
    expect(authenticate({ 'aeg-sas-key': key }, key).ok).toBe(true);
    expect(authenticate({ 'aeg-sas-key': 'wrong' }, key).ok).toBe(false);
    expect(authenticate({}, key)).toMatchObject({ ok: false, message: expect.stringMatching(/aeg-sas-key/) });
    expect(authenticate({ authorization: 'Bearer x' }, key)).toMatchObject({ ok: false, message: expect.stringMatching(/not implemented/) });
  });

  it('verifies tokens from the SDK generateSharedAccessSignature', async () => {
    const endpoint = 'https://127.0.0.1:8444/api/events';
    const token = await generateSharedAccessSignature(endpoint, new AzureKeyCredential(key), new Date(Date.now() + 3600_000));
    expect(verifySasToken(token, key)).toEqual({ ok: true });
    expect(authenticate({ 'aeg-sas-token': token }, key).ok).toBe(true);
    expect(verifySasToken(token, 'b3RoZXI=').ok).toBe(false);
    const expired = await generateSharedAccessSignature(endpoint, new AzureKeyCredential(key), new Date(Date.now() - 3600_000));
    expect(verifySasToken(expired, key)).toMatchObject({ ok: false, message: expect.stringMatching(/expired/) });
  });

  it('parses the .NET service time format', () => {
    expect(parseServiceTime('6/5/2020 12:09:03 PM')).toBe(Date.UTC(2020, 5, 5, 12, 9, 3));
    expect(parseServiceTime('6/5/2020 12:09:03 AM')).toBe(Date.UTC(2020, 5, 5, 0, 9, 3));
    expect(parseServiceTime('2020-06-05')).toBeUndefined();
  });
});
