import { app } from '@azure/functions';
import { root } from '../shared/root';
import { checkHealth } from '../shared/services/health';

const { healthChecks } = root();

app.http('health', {
  route: 'health',
  methods: ['GET'],
  authLevel: 'anonymous',
  handler: async () => {
    const report = await checkHealth(healthChecks);
    return {
      status: report.status === 'ok' ? 200 : 503,
      headers: { 'cache-control': 'no-store' },
      jsonBody: report,
    };
  },
});
