// Unit tests of the DOM-free parts (store, requests, protocol, formatters): `jlpm test`.
// ts-jest compiles each file on its own (type checking is tsc's and ESLint's job).
/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/test/tsconfig.json' }]
  }
};
