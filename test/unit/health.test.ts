import { checkHealth } from '../../shared/services/health';

describe('checkHealth', () => {
  test('reports each dependency with its latency, and error when any check fails', async () => {
    const logged: string[] = [];
    const report = await checkHealth(
      [
        { name: 'storage', check: async () => {} },
        {
          name: 'cosmos',
          check: async () => {
            throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:8081 AccountKey=secret'), { code: 'ECONNREFUSED' });
          },
        },
        {
          name: 'keyvault:main',
          check: async () => {
            throw Object.assign(new Error('Forbidden: caller oid 1234 lacks permission'), { name: 'RestError', statusCode: 403 });
          },
        },
      ],
      (m) => logged.push(m),
    );
    expect(report.status).toBe('error');
    expect(report.dependencies.storage).toMatchObject({ status: 'ok' });
    expect(report.dependencies.cosmos).toMatchObject({ status: 'error', error: 'unreachable' });
    expect(report.dependencies['keyvault:main']).toMatchObject({ status: 'error', error: 'status 403' });
    for (const d of Object.values(report.dependencies)) expect(typeof d.latencyMs).toBe('number');
    // The anonymous report says what kind of failure; the details only reach the log.
    expect(JSON.stringify(report)).not.toMatch(/AccountKey|oid 1234/);
    expect(logged.join('\n')).toContain('cosmos');
  });

  test('all ok is ok', async () => {
    expect((await checkHealth([{ name: 'a', check: async () => {} }])).status).toBe('ok');
  });

  test('a check that is not required is reported but never fails the report', async () => {
    const report = await checkHealth([
      { name: 'storage', check: async () => {} },
      { name: 'keyvault:contoso-byok', required: false, check: async () => Promise.reject(Object.assign(new Error('down'), { code: 'ECONNREFUSED' })) },
    ]);
    expect(report.status).toBe('ok');
    expect(report.dependencies['keyvault:contoso-byok']).toMatchObject({ status: 'error', error: 'unreachable', required: false });
    expect(report.dependencies.storage).not.toHaveProperty('required');
  });
});
