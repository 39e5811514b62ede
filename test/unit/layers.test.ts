/**
 * The layer rules bite: dependency-cruiser, with the repo's own `.dependency-cruiser.cjs`,
 * run on a planted tree (test/fixtures/layers) where each file breaks one rule.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const ROOT = join(__dirname, '..', '..');
const RUNNER = join(ROOT, '.dependency-cruiser.cjs');

interface Violation {
  rule: string;
  from: string;
  to: string;
  cycle?: string[];
}

async function cruise(args: string[]): Promise<{ code: number; violations: Violation[] }> {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, '--json', ...args], { cwd: ROOT });
    return { code: 0, violations: JSON.parse(stdout).violations };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    if (err.code !== 1) throw new Error(`dependency-cruiser failed (${err.code}): ${err.stderr}`);
    return { code: 1, violations: JSON.parse(err.stdout ?? '').violations };
  }
}

describe('Layer rules (.dependency-cruiser.cjs)', () => {
  let result: { code: number; violations: Violation[] };
  beforeAll(async () => {
    result = await cruise(['--base-dir', 'test/fixtures/layers', 'functions', 'shared']);
  });

  const planted: [rule: string, from: string, to: RegExp][] = [
    ['domain-no-sdk', 'shared/domain/usesSdk.ts', /node_modules\/@azure\/keyvault-keys\//],
    ['domain-no-node-io', 'shared/domain/readsFiles.ts', /^fs$/],
    ['domain-no-node-io', 'shared/domain/usesNet.ts', /^dns\/promises$/],
    ['domain-no-services-or-adapters', 'shared/domain/usesService.ts', /^shared\/services\/cleanService\.ts$/],
    ['services-no-sdk', 'shared/services/usesSdk.ts', /node_modules\/@azure\/cosmos\//],
    ['services-no-adapters', 'shared/services/usesAdapter.ts', /^shared\/adapters\/store\.ts$/],
    ['services-no-config', 'shared/services/readsConfig.ts', /^shared\/config\.ts$/],
    ['functions-no-adapters', 'functions/usesAdapter.ts', /^shared\/adapters\/store\.ts$/],
    ['app-no-local-test-bench', 'functions/usesTest.ts', /^test\/helper\.ts$/],
    ['app-no-local-test-bench', 'shared/adapters/usesLocal.ts', /^local\/stack\.ts$/],
  ];

  test.each(planted)('%s flags %s', (rule, from, to) => {
    const hits = result.violations.filter((v) => v.rule === rule && v.from === from);
    expect(hits).toHaveLength(1);
    expect(hits[0]!.to).toMatch(to);
  });

  test('no-cycles flags a cycle made of type-only imports', () => {
    const cycles = result.violations.filter((v) => v.rule === 'no-cycles');
    expect(cycles.length).toBeGreaterThanOrEqual(1);
    for (const c of cycles) expect([c.from, c.to].sort()).toEqual(['shared/cycleA.ts', 'shared/cycleB.ts']);
  });

  test('the clean files break no rule, and the run fails (exit 1)', () => {
    const flagged = new Set(result.violations.map((v) => v.from));
    for (const clean of ['shared/domain/pure.ts', 'shared/domain/helper.ts', 'shared/services/cleanService.ts', 'shared/adapters/store.ts', 'functions/clean.ts']) {
      expect(flagged.has(clean)).toBe(false);
    }
    // Nothing beyond the planted violations: each rule is as narrow as it says.
    expect(result.violations.filter((v) => v.rule !== 'no-cycles')).toHaveLength(planted.length);
    expect(result.code).toBe(1);
  });

  test('a tree without violations passes (exit 0)', async () => {
    const clean = await cruise(['--base-dir', 'test/fixtures/layers', 'shared/domain/pure.ts', 'functions/clean.ts']);
    expect(clean).toEqual({ code: 0, violations: [] });
  });
});
