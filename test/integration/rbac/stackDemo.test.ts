/**
 * The whole stack as `npm start` runs it (both vaults, ARM, one CA): the README's
 * `npm run demo:rbac` script, run as a new user would, against it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { PROJECT_ROOT, startStack, type TestStack } from '../../helpers/stack';

describe('npm run demo:rbac against the local stack', () => {
  let stack: TestStack;
  beforeAll(async () => {
    stack = await startStack({ host: false });
  });
  afterAll(() => stack?.stop());

  it('the stack runs keyturn-local, contoso-byok and ARM', () => {
    expect(Object.keys(stack.vaults).sort()).toEqual(['contoso-byok', 'keyturn-local']);
    expect(stack.vaults['contoso-byok']!.url).not.toBe(stack.vaults['keyturn-local']!.url);
    expect(stack.arm.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('creates a key as contoso-admin, grants keyturn-app over ARM, unwraps, removes, then 403', () => {
    const run = spawnSync(process.execPath, [join(PROJECT_ROOT, 'dist', 'local', 'demoRbac.js')], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, KEYTURN_DEMO_CA_FILE: stack.caFile, KEYTURN_DEMO_BYOK_URL: stack.vaults['contoso-byok']!.url, KEYTURN_DEMO_ARM_URL: stack.arm.url },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/1\. contoso-admin created https:\/\/127\.0\.0\.1:\d+\/keys\/tenant-kek-/);
    expect(run.stdout).toContain('3. keyturn-app wrapped and unwrapped a data key: ok');
    expect(run.stdout).toContain('5. keyturn-app unwrap now answers 403 Forbidden');
  });

  it('the app identity has its seeded roles on keyturn-local and none on contoso-byok', async () => {
    await stack.vaults['keyturn-local']!.secretClient('keyturn-app').setSecret('seeded-check', 'v');
    await expect(stack.vaults['contoso-byok']!.secretClient('keyturn-app').setSecret('nope', 'v')).rejects.toMatchObject({ statusCode: 403 });
  });
});
