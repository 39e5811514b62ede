import { AzureKeyCredential, EventGridPublisherClient } from '@azure/eventgrid';
import type { TokenCredential } from '@azure/identity';
import { randomUUID } from 'node:crypto';
import type { Notifier } from '../ports';

/** Publishes Keyturn's notifications to its Event Grid custom topic (never secret values). */
export function eventGridNotifier(options: { endpoint: string; key?: string; ca?: string; credential: () => TokenCredential }): Notifier {
  const credential = options.key ? new AzureKeyCredential(options.key) : options.credential();
  const client = new EventGridPublisherClient(options.endpoint, 'EventGrid', credential, {
    ...(options.ca ? { tlsOptions: { ca: options.ca } } : {}),
  });
  return {
    async publish(event) {
      await client.send([
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
