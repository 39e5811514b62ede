/**
 * azure.yaml (what `azd up` reads) agrees with the Bicep and the package: the service is the
 * function app azd finds by its `azd-service-name` tag, the infra path and module exist at the
 * scope azd expects, and the post-deploy hook uses only outputs and parameters that exist.
 * Static text checks only; azd itself is not run.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { params, readBicep, resources } from './bicepText';

// js-yaml (a devDependency) reads the one small file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { load(text: string): unknown };

const repoRoot = join(__dirname, '..', '..', '..');
const read = (p: string) => readFileSync(join(repoRoot, p), 'utf8');

interface AzureYaml {
  name: string;
  infra: { provider: string; path: string; module: string };
  services: Record<string, { project: string; language: string; host: string }>;
  hooks?: Record<string, Record<'posix' | 'windows', { shell: string; run: string }>>;
}

const azd = yaml.load(read('azure.yaml')) as AzureYaml;
const main = readBicep(join(repoRoot, azd.infra.path, `${azd.infra.module}.bicep`), repoRoot);
const outputs = new Set([...main.code.matchAll(/^output\s+(\w+)\s/gm)].map((m) => m[1]!));

describe('azure.yaml', () => {
  test('provisions infra/main.bicep with Bicep at resource-group scope', () => {
    expect(azd.infra).toEqual({ provider: 'bicep', path: 'infra', module: 'main' });
    expect(main.code).toMatch(/^targetScope\s*=\s*'resourceGroup'/m);
    // azd passes AZURE_ENV_NAME and reads the parameters next to the module.
    expect(existsSync(join(repoRoot, 'infra', 'main.parameters.json'))).toBe(true);
    expect(params(main).map((p) => p.name)).toContain('environmentName');
    expect(main.code).toMatch(/'azd-env-name':\s*environmentName/);
  });

  test('deploys one TypeScript function app service, api, from the repo root', () => {
    expect(azd.services).toEqual({ api: { project: '.', language: 'ts', host: 'function' } });
    // azd runs `npm run build` and deploys the package whose main is the bundle that build writes.
    const pkg = JSON.parse(read('package.json')) as { main: string; scripts: Record<string, string> };
    expect(pkg.scripts.build).toContain('bundle');
    expect(pkg.main).toBe('dist/app/main.js');
  });

  test('each service is the resource tagged azd-service-name with its name (a Microsoft.Web/sites function app)', () => {
    const app = readBicep(join(repoRoot, 'infra', 'modules', 'functionApp.bicep'), repoRoot);
    for (const service of Object.keys(azd.services)) {
      const tagged = resources(app).filter((r) => new RegExp(`'azd-service-name':\\s*'${service}'`).test(r.body));
      expect(tagged.map((r) => r.type)).toEqual(['Microsoft.Web/sites']);
      expect(tagged[0]!.body).toMatch(/kind:\s*'functionapp/);
    }
  });

  test('the post-deploy hook uses only outputs of main.bicep and parameters of the file it deploys', () => {
    const hook = azd.hooks?.postdeploy;
    expect(hook && Object.keys(hook).sort()).toEqual(['posix', 'windows']);
    for (const { run } of Object.values(hook!)) {
      const used = [...run.matchAll(/\$(?:env:)?([A-Z][A-Z0-9_]+)/g)].map((m) => m[1]!);
      expect(used.length).toBeGreaterThan(0);
      for (const v of used) expect([v, outputs.has(v)]).toEqual([v, true]);
      const file = /-f\s+(\S+\.bicep)/.exec(run)?.[1];
      expect(file).toBe('infra/eventSubscriptions.bicep');
      const declared = new Set(params(readBicep(join(repoRoot, file!), repoRoot)).map((p) => p.name));
      const passed = [...run.matchAll(/(?:^|\s)(\w+)=/g)].map((m) => m[1]!);
      expect(passed.length).toBeGreaterThan(0);
      for (const p of passed) expect([p, declared.has(p)]).toEqual([p, true]);
    }
  });
});
