import { type EventGridEvent, type InvocationContext, app } from '@azure/functions';
import { type EventsRoot, root, contextLogger } from '../shared/root';

/**
 * Key Vault events (Event Grid or CloudEvents schema) into the one intake. Validation is
 * the normaliser's (zod): malformed, oversized or spoofed events are acknowledged and
 * recorded as dead letters; the rest go to the life cycles' handlers. Only a dependency
 * failure throws, so Event Grid retries.
 */
export function makeKeyVaultEventsHandler(events: Pick<EventsRoot, 'intake'>) {
  return async (event: EventGridEvent | unknown, context: InvocationContext): Promise<void> => {
    await events.intake(contextLogger(context)).receive(event);
  };
}

app.eventGrid('keyVaultEvents', { handler: makeKeyVaultEventsHandler(root().events) });
