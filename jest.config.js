/** Jest runs TypeScript tests through ts-jest (transpile only; `npm run build` type-checks).
 *  jose, @noble and canonicalize are ESM-only, so they are transformed too. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.[tj]s$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json', diagnostics: false }],
  },
  transformIgnorePatterns: ['/node_modules/(?!(jose|@noble|canonicalize)/)'],
  testTimeout: 120000,
  maxWorkers: 2,
};
