/**
 * Subscription input validation and event filtering (pure). Filter semantics
 * follow Azure: includedEventTypes and the subject filters must all match,
 * event types compare case-insensitively, subjects too unless
 * isSubjectCaseSensitive is set.
 */
import { z } from 'zod';
import type { EventGridEvent, SubscriptionInput } from './types';

export class SubscriptionInputError extends Error {
  constructor(
    message: string,
    /** Dotted path of the offending field, e.g. `[1].endpoint`. */
    readonly field: string,
  ) {
    super(message);
    this.name = 'SubscriptionInputError';
  }
}

const httpUrl = z.string().refine(
  (value) => {
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:';
    } catch {
      return false;
    }
  },
  { message: 'must be an absolute http:// or https:// URL' },
);

const nonEmpty = z.string().min(1, 'must not be empty');

export const subscriptionInputSchema = z.strictObject({
  // Azure: 3-64 chars, letters, digits and hyphens.
  name: z.string().regex(/^[A-Za-z0-9-]{3,64}$/, 'must be 3-64 letters, digits or hyphens'),
  topic: z.string().refine((t) => t === '*' || /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/.+/i.test(t), {
    message: "must be a full topic resource id (/subscriptions/.../providers/...) or '*'",
  }),
  endpoint: httpUrl,
  schema: z.enum(['EventGridSchema', 'CloudEventSchemaV1_0']).optional(),
  includedEventTypes: z.array(nonEmpty).min(1, 'must list at least one event type (omit it for all)').optional(),
  subjectBeginsWith: z.string().optional(),
  subjectEndsWith: z.string().optional(),
  isSubjectCaseSensitive: z.boolean().optional(),
  maxEventsPerBatch: z.number().int().min(1).max(5000).optional(),
});

function fieldOf(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('');
}

function toError(error: z.ZodError, prefix: string): SubscriptionInputError {
  const issue = error.issues[0];
  if (!issue) return new SubscriptionInputError(`${prefix}invalid subscription`, prefix);
  // Unknown keys are reported on the object; name the key so a typo is obvious.
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [...issue.path, ...(keys.length === 1 ? keys : [])];
  const field = `${prefix}${fieldOf(path)}`.replace(/^\./, '') || '(root)';
  const message = issue.code === 'unrecognized_keys' ? `unknown field (not supported by the local Event Grid)` : issue.message;
  return new SubscriptionInputError(`subscription field '${field}': ${message}`, field);
}

/** Validates one subscription; throws SubscriptionInputError naming the field. */
export function parseSubscriptionInput(input: unknown, fieldPrefix = ''): SubscriptionInput {
  const result = subscriptionInputSchema.safeParse(input);
  if (!result.success) throw toError(result.error, fieldPrefix);
  return result.data;
}

/**
 * Reads `EVENTGRID_SUBSCRIPTIONS` (a JSON array of SubscriptionInput).
 * Missing or empty → []. Bad JSON or a bad field → Error naming it.
 */
export function subscriptionsFromEnv(env: Record<string, string | undefined> = process.env): SubscriptionInput[] {
  const raw = env['EVENTGRID_SUBSCRIPTIONS'];
  if (raw === undefined || raw.trim() === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (err) {
    throw new SubscriptionInputError(`EVENTGRID_SUBSCRIPTIONS is not valid JSON: ${(err as Error).message}`, 'EVENTGRID_SUBSCRIPTIONS');
  }
  if (!Array.isArray(parsed)) {
    throw new SubscriptionInputError('EVENTGRID_SUBSCRIPTIONS must be a JSON array of subscriptions', 'EVENTGRID_SUBSCRIPTIONS');
  }
  const subs = parsed.map((item, i) => {
    try {
      return parseSubscriptionInput(item, `[${i}]`);
    } catch (err) {
      const e = err as SubscriptionInputError;
      throw new SubscriptionInputError(`EVENTGRID_SUBSCRIPTIONS${e.message.replace(/^subscription field /, ' field ')}`, `EVENTGRID_SUBSCRIPTIONS${e.field}`);
    }
  });
  const seen = new Set<string>();
  subs.forEach((s, i) => {
    if (seen.has(s.name)) {
      throw new SubscriptionInputError(`EVENTGRID_SUBSCRIPTIONS field '[${i}].name': duplicate name '${s.name}'`, `EVENTGRID_SUBSCRIPTIONS[${i}].name`);
    }
    seen.add(s.name);
  });
  return subs;
}

/** The subset of a subscription that decides whether an event goes to it. */
export interface SubscriptionFilter {
  topic: string;
  includedEventTypes?: string[];
  subjectBeginsWith?: string;
  subjectEndsWith?: string;
  isSubjectCaseSensitive?: boolean;
}

/** Resource ids are case-insensitive in Azure. */
export function topicMatches(subscriptionTopic: string, eventTopic: string): boolean {
  return subscriptionTopic === '*' || subscriptionTopic.toLowerCase() === eventTopic.toLowerCase();
}

export function matchesFilter(filter: SubscriptionFilter, event: Pick<EventGridEvent, 'eventType' | 'subject'> & { topic: string }): boolean {
  if (!topicMatches(filter.topic, event.topic)) return false;
  if (filter.includedEventTypes && filter.includedEventTypes.length > 0) {
    const type = event.eventType.toLowerCase();
    if (!filter.includedEventTypes.some((t) => t.toLowerCase() === type)) return false;
  }
  const fold = (s: string): string => (filter.isSubjectCaseSensitive ? s : s.toLowerCase());
  const subject = fold(event.subject);
  if (filter.subjectBeginsWith && !subject.startsWith(fold(filter.subjectBeginsWith))) return false;
  if (filter.subjectEndsWith && !subject.endsWith(fold(filter.subjectEndsWith))) return false;
  return true;
}
