import type { EventGridPublisherClient } from '@azure/eventgrid';
import type { TokenCredential } from '@azure/identity';
import { randomUUID } from 'node:crypto';
import type { Notifier } from '../ports';

/** Publishes Keyturn's notifications to its Event Grid custom topic (never secret values). */
export function eventGridNotifier(options: { endpoint: string; key?: string; ca?: string; credential: () => TokenCredential }): Notifier {
  let client: EventGridPublisherClient<'EventGrid'> | undefined;
  // Built on the first publish: the SDK is required then, not at module load (cold start).
  const publisher = (): EventGridPublisherClient<'EventGrid'> => {
    if (client) return client;
    const { AzureKeyCredential, EventGridPublisherClient } = require('@azure/eventgrid') as typeof import('@azure/eventgrid');
    const credential = options.key ? new AzureKeyCredential(options.key) : options.credential();
    client = new EventGridPublisherClient(options.endpoint, 'EventGrid', credential, {
      ...(options.ca ? { tlsOptions: { ca: options.ca } } : {}),
    });
    return client;
  };
  return {
    async publish(event) {
      await publisher().send([
        {
          id: event.id ?? randomUUID(),
          eventType: event.eventType,
          subject: event.subject,
          dataVersion: '1.0',
          eventTime: new Date(),
          data: event.data,
        },
      ]);
    },
  };
}
