import { matchesFilter, parseSubscriptionInput, SubscriptionInputError, subscriptionsFromEnv } from '../../../local/eventgrid/subscriptions';

const TOPIC = '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv1';
const valid = { name: 'rotate-secrets', topic: TOPIC, endpoint: 'http://127.0.0.1:7071/runtime/webhooks/EventGrid?functionName=rotate' };

function fieldOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(SubscriptionInputError);
    return (err as SubscriptionInputError).field;
  }
  throw new Error('expected a SubscriptionInputError');
}

describe('parseSubscriptionInput', () => {
  it('accepts a minimal subscription and a wildcard topic', () => {
    expect(parseSubscriptionInput(valid)).toEqual(valid);
    expect(parseSubscriptionInput({ ...valid, topic: '*', schema: 'CloudEventSchemaV1_0', maxEventsPerBatch: 10 }).topic).toBe('*');
  });

  it.each([
    [{ ...valid, name: 'x' }, 'name'],
    [{ ...valid, endpoint: 'ftp://host/x' }, 'endpoint'],
    [{ ...valid, endpoint: 'not a url' }, 'endpoint'],
    [{ ...valid, topic: 'kv1' }, 'topic'],
    [{ ...valid, schema: 'CustomInputSchema' }, 'schema'],
    [{ ...valid, includedEventTypes: ['a', ''] }, 'includedEventTypes[1]'],
    [{ ...valid, maxEventsPerBatch: 0 }, 'maxEventsPerBatch'],
    [{ ...valid, subjectBeginWith: 'x' }, 'subjectBeginWith'],
    [{ topic: TOPIC, endpoint: valid.endpoint }, 'name'],
  ])('names the bad field (%#)', (input, field) => {
    expect(fieldOf(() => parseSubscriptionInput(input))).toBe(field);
  });

  it('puts the field name in the message', () => {
    expect(() => parseSubscriptionInput({ ...valid, endpoint: 'nope' })).toThrow(/'endpoint'/);
  });
});

describe('subscriptionsFromEnv', () => {
  it('returns [] when unset or blank', () => {
    expect(subscriptionsFromEnv({})).toEqual([]);
    expect(subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: '  ' })).toEqual([]);
  });

  it('parses a JSON array', () => {
    const subs = subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: JSON.stringify([valid, { ...valid, name: 'other' }]) });
    expect(subs.map((s) => s.name)).toEqual(['rotate-secrets', 'other']);
  });

  it('names the variable and the element field on errors', () => {
    expect(() => subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: '{nope' })).toThrow(/EVENTGRID_SUBSCRIPTIONS is not valid JSON/);
    expect(() => subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: '{}' })).toThrow(/must be a JSON array/);
    const bad = JSON.stringify([valid, { ...valid, name: 'second', endpoint: 'nope' }]);
    expect(fieldOf(() => subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: bad }))).toBe('EVENTGRID_SUBSCRIPTIONS[1].endpoint');
    expect(() => subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: bad })).toThrow(/EVENTGRID_SUBSCRIPTIONS field '\[1\]\.endpoint'/);
    const dup = JSON.stringify([valid, valid]);
    expect(fieldOf(() => subscriptionsFromEnv({ EVENTGRID_SUBSCRIPTIONS: dup }))).toBe('EVENTGRID_SUBSCRIPTIONS[1].name');
  });
});

describe('matchesFilter', () => {
  const event = { topic: TOPIC, eventType: 'Microsoft.KeyVault.SecretNearExpiry', subject: 'db-password' };

  it('matches topic exactly (case-insensitive) or by wildcard', () => {
    expect(matchesFilter({ topic: TOPIC }, event)).toBe(true);
    expect(matchesFilter({ topic: TOPIC.toUpperCase() }, event)).toBe(true);
    expect(matchesFilter({ topic: '*' }, event)).toBe(true);
    expect(matchesFilter({ topic: TOPIC.replace('kv1', 'kv2') }, event)).toBe(false);
  });

  it('filters on included event types, case-insensitively', () => {
    expect(matchesFilter({ topic: '*', includedEventTypes: ['Microsoft.KeyVault.SecretExpired'] }, event)).toBe(false);
    expect(matchesFilter({ topic: '*', includedEventTypes: ['microsoft.keyvault.secretnearexpiry'] }, event)).toBe(true);
    expect(matchesFilter({ topic: '*', includedEventTypes: [] }, event)).toBe(true);
  });

  it('filters on subject begins/ends with, case-insensitive by default', () => {
    expect(matchesFilter({ topic: '*', subjectBeginsWith: 'db-' }, event)).toBe(true);
    expect(matchesFilter({ topic: '*', subjectBeginsWith: 'DB-' }, event)).toBe(true);
    expect(matchesFilter({ topic: '*', subjectBeginsWith: 'DB-', isSubjectCaseSensitive: true }, event)).toBe(false);
    expect(matchesFilter({ topic: '*', subjectEndsWith: 'password' }, event)).toBe(true);
    expect(matchesFilter({ topic: '*', subjectEndsWith: 'key' }, event)).toBe(false);
    // The rotation samples pin one secret with begins = ends = name.
    expect(matchesFilter({ topic: '*', subjectBeginsWith: 'db-password', subjectEndsWith: 'db-password' }, event)).toBe(true);
    expect(matchesFilter({ topic: '*', subjectBeginsWith: 'db-password', subjectEndsWith: 'db-password' }, { ...event, subject: 'db-password-old' })).toBe(false);
  });
});
