/**
 * Keyturn's layer rules (`npm run lint:layers`). Paths are relative to the directory
 * the cruise runs from: the repo root, or a fixture tree in test/fixtures/layers that
 * mirrors it (test/unit/layers.test.ts proves each rule fires).
 *
 * The depcruise CLI refuses Node 20 (a version check; the API runs fine), so this file
 * is also the runner: `node .dependency-cruiser.cjs [--base-dir DIR] [--json] [paths…]`
 * cruises `functions shared` by default and exits 1 on any violation. On Node 22+
 * `npx depcruise --config .dependency-cruiser.cjs functions shared` reads the same rules.
 *
 *   functions/       thin Azure Functions entry points: the composition root and services
 *   shared/services  use cases, talking to the outside only through ports
 *   shared/domain    pure rules and data (zod for validation is allowed)
 *   shared/adapters  SDK clients behind the ports
 */
const SDK = '(^|/)node_modules/@azure/|^@azure/';
const NODE_IO = '^(node:)?(fs|net|http|https|child_process|dgram|dns|tls)(/|$)';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'domain-no-sdk',
      comment: 'shared/domain is pure: no Azure SDK (talk to Azure through a port in a service).',
      severity: 'error',
      from: { path: '^shared/domain/' },
      to: { path: SDK },
    },
    {
      name: 'domain-no-node-io',
      comment: 'shared/domain is pure: no file, network or process I/O.',
      severity: 'error',
      from: { path: '^shared/domain/' },
      to: { dependencyTypes: ['core'], path: NODE_IO },
    },
    {
      name: 'domain-no-services-or-adapters',
      comment: 'shared/domain depends on nothing above it.',
      severity: 'error',
      from: { path: '^shared/domain/' },
      to: { path: '^shared/(services|adapters)/' },
    },
    {
      name: 'services-no-sdk',
      comment: 'shared/services use ports; SDK types stay in shared/adapters.',
      severity: 'error',
      from: { path: '^shared/services/' },
      to: { path: SDK },
    },
    {
      name: 'services-no-adapters',
      comment: 'shared/services see adapters only through their ports (the composition root wires them).',
      severity: 'error',
      from: { path: '^shared/services/' },
      to: { path: '^shared/adapters/' },
    },
    {
      name: 'services-no-config',
      comment: 'shared/services get their settings as arguments; reading Config is the composition root\'s job.',
      severity: 'error',
      from: { path: '^shared/services/' },
      to: { path: '^shared/config\\.ts$' },
    },
    {
      name: 'functions-no-adapters',
      comment: 'functions/ are thin: they get adapters from the composition root, never import them.',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: '^shared/adapters/' },
    },
    {
      name: 'app-no-local-test-bench',
      comment: 'What ships (functions/, shared/) never imports the local stack, tests or benchmarks.',
      severity: 'error',
      from: { path: '^(functions|shared)/' },
      to: { path: '^(local|test|bench)/' },
    },
    {
      name: 'no-cycles',
      comment: 'No import cycles (type-only imports count).',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    // Type-only imports are dependencies too: they couple the layers just the same.
    tsPreCompilationDeps: true,
    moduleSystems: ['es6', 'cjs'],
  },
};

async function main(argv) {
  const { cruise } = await import('dependency-cruiser');
  let baseDir = process.cwd();
  let json = false;
  const paths = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--base-dir') baseDir = require('node:path').resolve(argv[++i]);
    else if (argv[i] === '--json') json = true;
    else paths.push(argv[i]);
  }
  const { forbidden, options } = module.exports;
  const cwd = process.cwd();
  // depcruise resolves paths against the working directory; run it from the base dir.
  process.chdir(baseDir);
  try {
    const result = await cruise(paths.length ? paths : ['functions', 'shared'], {
      ...options,
      validate: true,
      ruleSet: { forbidden },
      outputType: json ? 'json' : 'err',
    });
    let failed = result.exitCode > 0;
    if (json) {
      const { summary } = JSON.parse(result.output);
      failed = summary.error > 0; // the json reporter leaves exitCode 0
      const violations = summary.violations.map((v) => ({ rule: v.rule.name, from: v.from, to: v.to, cycle: v.cycle?.map((c) => c.name) }));
      process.stdout.write(`${JSON.stringify({ violations, modules: summary.totalCruised })}\n`);
    } else {
      process.stdout.write(result.output || 'Layer rules: no violations.\n');
    }
    process.exitCode = failed ? 1 : 0;
  } finally {
    process.chdir(cwd);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((e) => {
    console.error(e);
    process.exitCode = 2;
  });
}
