import { defineConfig } from 'eslint/config';

import baseConfig from './.config/eslint.config.mjs';

export default defineConfig([
  {
    ignores: [
      '**/node_modules/',
      '**/coverage/',
      '**/dist/',
      '.eslintcache',
      '.config/',
      '*.config.js',
      '.prettierrc.js',
      'jest-setup.js',
      'browser/.build/',
      'compat/.floor/',
    ],
  },
  ...baseConfig,
  {
    rules: {
      // The automatic JSX runtime (tsconfig `react-jsx`) needs no React import.
      'react/react-in-jsx-scope': 'off',
    },
  },
  {
    files: ['src/**/*.{ts,tsx}', 'browser/**/*.{ts,tsx}'],
    languageOptions: {
      parserOptions: {
        project: './tsconfig.json',
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      '@typescript-eslint/no-deprecated': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
    },
  },
]);
