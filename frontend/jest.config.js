// Jest setup modelled on @grafana/create-plugin's scaffold: jsdom, swc transform, CSS stubbed.
process.env.TZ = 'UTC';

// Packages that only ship ES modules must be transformed before jest can load them.
const esModules = [
  '@grafana/schema',
  '@react-hookz',
  '@ver0',
  '@wojtekmaj/date-utils',
  'd3',
  'd3-color',
  'd3-force',
  'd3-interpolate',
  'd3-scale-chromatic',
  'get-user-locale',
  'marked',
  'memoize',
  'mimic-function',
  'ol',
  'react-calendar',
  'react-colorful',
  'rxjs',
  'uuid',
];

module.exports = {
  moduleNameMapper: {
    '\\.(css|scss|sass)$': 'identity-obj-proxy',
    'react-inlinesvg': '<rootDir>/.config/jest/react-inlinesvg.tsx',
  },
  modulePaths: ['<rootDir>/src'],
  setupFiles: ['<rootDir>/.config/jest/polyfills.js'],
  setupFilesAfterEnv: ['<rootDir>/jest-setup.ts'],
  testEnvironment: 'jest-environment-jsdom',
  testMatch: ['<rootDir>/src/**/*.test.{ts,tsx}'],
  // Grafana's UI components render slowly in jsdom; on a loaded 2-core machine the 5 s default
  // times out interaction-heavy editor tests that pass alone.
  testTimeout: 30000,
  transform: {
    '^.+\\.(m?js|jsx|ts|tsx)$': [
      '@swc/jest',
      {
        sourceMaps: 'inline',
        jsc: {
          parser: { syntax: 'typescript', tsx: true, decorators: false, dynamicImport: true },
          transform: { react: { runtime: 'automatic' } },
        },
      },
    ],
  },
  transformIgnorePatterns: [`node_modules/(?!.*(${esModules.join('|')})/.*)`],
  watchPathIgnorePatterns: ['<rootDir>/node_modules'],
};
