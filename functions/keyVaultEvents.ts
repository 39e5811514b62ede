import { type EventGridEvent, type InvocationContext, app } from '@azure/functions';
import { contextLogger } from '../shared/adapters/logger';
import { type RenewalRoot, root } from '../shared/root';

/**
 * Key Vault events (Event Grid or CloudEvents schema). Validation is the normaliser's
 * (zod, in the service): malformed, oversized or spoofed events are acknowledged and
 * recorded as dead letters. Only a dependency failure throws, so Event Grid retries.
 */
export function makeKeyVaultEventsHandler(renewal: Pick<RenewalRoot, 'service'>) {
  return async (event: EventGridEvent | unknown, context: InvocationContext): Promise<void> => {
    await renewal.service(contextLogger(context)).handleEvent(event);
  };
}

app.eventGrid('keyVaultEvents', { handler: makeKeyVaultEventsHandler(root().renewal) });
