import { type HttpRequest, type InvocationContext, app } from '@azure/functions';
import { httpHandler } from '../shared/http/problem';
import { root } from '../shared/root';
import { checkHealth } from '../shared/services/health';

const { healthChecks } = root();

app.http('health', {
  route: 'health',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: httpHandler(async (_request: HttpRequest, context: InvocationContext) => {
    const report = await checkHealth(healthChecks, (m) => context.warn(m));
    return {
      status: report.status === 'ok' ? 200 : 503,
      headers: { 'cache-control': 'no-store' },
      jsonBody: report,
    };
  }),
});
