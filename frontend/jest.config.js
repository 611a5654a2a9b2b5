// create-plugin's jest configuration (.config/), extended: jsdom stubs this plugin's editors need
// and a longer timeout for Grafana's UI components on a loaded 2-core machine.
const { grafanaESModules, nodeModulesToTransform } = require('./.config/jest/utils');

const base = require('./.config/jest.config');

module.exports = {
  ...base,
  moduleNameMapper: {
    ...base.moduleNameMapper,
    // Keeps the icon's props (tabIndex, title), so tests can focus an info icon to open its tooltip.
    'react-inlinesvg': '<rootDir>/src/test/react-inlinesvg.tsx',
  },
  testMatch: ['<rootDir>/src/**/*.test.{ts,tsx}'],
  // Grafana's UI components render slowly in jsdom; on a loaded 2-core machine the 5 s default
  // times out interaction-heavy editor tests that pass alone.
  testTimeout: 60000,
  transformIgnorePatterns: [nodeModulesToTransform([...grafanaESModules, '@react-hookz', '@ver0'])],
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
};
