import { defineConfig } from 'eslint/config';
import grafanaConfig from '@grafana/eslint-config';

export default defineConfig([
  {
    ignores: ['**/node_modules/', '**/coverage/', '**/dist/', '.eslintcache', '*.config.js', '.prettierrc.js'],
  },
  ...grafanaConfig,
  {
    rules: {
      'react/prop-types': 'off',
      // The automatic JSX runtime (tsconfig `react-jsx`) needs no React import.
      'react/react-in-jsx-scope': 'off',
    },
  },
  {
    files: ['src/**/*.{ts,tsx}', '.config/**/*.ts', 'jest-setup.ts'],
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
