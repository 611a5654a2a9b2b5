#!/usr/bin/env node
// Compatibility checks with the oldest Grafana that plugin.json's grafanaDependency admits (the
// floor) and the newest release, so a change that breaks an older or newer Grafana fails `make test`.
//
//   node compat/check.mjs types   typecheck src/ against the floor's @grafana/* packages and React 18
//                                 types, installed into node_modules/.cache/compat-floor
//   node compat/check.mjs api     @grafana/levitate is-compatible: every @grafana/* export the plugin
//                                 imports exists, with a compatible signature, in the floor and latest
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const FRONTEND = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PLUGIN_JSON = path.join(FRONTEND, '..', 'plugin.json');
const PACKAGES = ['@grafana/data', '@grafana/runtime', '@grafana/ui', '@grafana/schema'];
// The packages Grafana hands to plugins at runtime and whose API the plugin calls.
const RUNTIME_PACKAGES = ['@grafana/data', '@grafana/runtime', '@grafana/ui'];

/** The floor version, read from the one place it is written: `>=12.3.0-0` gives 12.3.0. */
export function floorVersion(range) {
  const match = /^>=\s*(\d+\.\d+\.\d+)(?:-0)?$/.exec(range.trim());
  if (!match) {
    throw new Error(`plugin.json grafanaDependency "${range}" is not of the form ">=X.Y.Z-0"`);
  }
  return match[1];
}

const pluginJson = JSON.parse(fs.readFileSync(PLUGIN_JSON, 'utf8'));
const floor = floorVersion(pluginJson.dependencies.grafanaDependency);
const ownPackage = JSON.parse(fs.readFileSync(path.join(FRONTEND, 'package.json'), 'utf8'));

function run(command, args, cwd) {
  console.log(`$ ${command} ${args.join(' ')}`);
  try {
    execFileSync(command, args, { cwd, stdio: 'inherit' });
  } catch (error) {
    console.error(`compatibility check failed: ${path.basename(command)} exited with ${error.status ?? error.signal}`);
    process.exit(1);
  }
}

function checkTypes() {
  const dir = path.join(FRONTEND, 'node_modules', '.cache', 'compat-floor');
  const manifest = {
    name: 'compat-floor',
    private: true,
    dependencies: {
      ...Object.fromEntries(PACKAGES.map((name) => [name, floor])),
      '@emotion/css': ownPackage.dependencies['@emotion/css'],
      react: '18.3.1',
      'react-dom': '18.3.1',
      '@types/react': '18.3.x',
      '@types/react-dom': '18.3.x',
      rxjs: ownPackage.dependencies.rxjs,
    },
    // Same reason as in package.json: older @grafana/ui names a GitHub commit of its grid fork.
    overrides: ownPackage.overrides,
  };
  const manifestText = JSON.stringify(manifest, null, 2);
  const manifestPath = path.join(dir, 'package.json');
  const installed = fs.existsSync(path.join(dir, 'node_modules', '.package-lock.json'));
  if (!installed || !fs.existsSync(manifestPath) || fs.readFileSync(manifestPath, 'utf8') !== manifestText) {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(manifestPath, manifestText);
    run('npm', ['install', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], dir);
  }
  const modules = path.join(dir, 'node_modules');
  const mapped = [...PACKAGES, '@emotion/css', 'rxjs', 'react', 'react-dom'];
  const paths = Object.fromEntries(
    mapped.flatMap((name) => {
      const target = name.startsWith('react') ? path.join(modules, '@types', name) : path.join(modules, name);
      return [
        [name, [target]],
        [`${name}/*`, [`${target}/*`]],
      ];
    })
  );
  const tsconfig = {
    extends: path.join(FRONTEND, 'tsconfig.json'),
    compilerOptions: {
      baseUrl: path.join(FRONTEND, 'src'),
      rootDir: FRONTEND,
      noEmit: true,
      paths,
      typeRoots: [path.join(modules, '@types')],
      types: [],
    },
    // What ships: the tests run under jest with the build's own versions.
    include: [path.join(FRONTEND, 'src'), path.join(FRONTEND, '.config', 'types', 'bundler-rules.d.ts')],
    exclude: [
      path.join(FRONTEND, 'src', '**', '*.test.ts'),
      path.join(FRONTEND, 'src', '**', '*.test.tsx'),
      path.join(FRONTEND, 'src', 'test'),
    ],
  };
  const tsconfigPath = path.join(dir, 'tsconfig.json');
  fs.writeFileSync(tsconfigPath, JSON.stringify(tsconfig, null, 2));
  const versions = PACKAGES.map((name) => {
    const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
    return `${name}@${pkg.version}`;
  });
  console.log(`typechecking src/ against ${versions.join(', ')} and @types/react 18.3`);
  run(path.join(FRONTEND, 'node_modules', '.bin', 'tsc'), ['-p', tsconfigPath], FRONTEND);
}

/** Both versions at once: levitate spends most of its time downloading packages. */
async function checkApi() {
  const levitate = path.join(FRONTEND, 'node_modules', '.bin', 'levitate');
  const results = await Promise.all(
    [floor, 'latest'].map(
      (version) =>
        new Promise((resolve) => {
          const targets = RUNTIME_PACKAGES.map((name) => `${name}@${version}`).join(',');
          const args = ['is-compatible', '--path', 'src/module.ts', '--target', targets];
          console.log(`$ levitate ${args.join(' ')}`);
          const child = spawn(levitate, args, { cwd: FRONTEND, stdio: ['ignore', 'pipe', 'pipe'] });
          let output = '';
          child.stdout.on('data', (chunk) => (output += chunk));
          child.stderr.on('data', (chunk) => (output += chunk));
          child.on('close', (code) => resolve({ version, code, output }));
        })
    )
  );
  for (const { version, code, output } of results) {
    console.log(`--- levitate against @grafana/*@${version}: exit ${code}\n${output}`);
  }
  if (results.some((r) => r.code !== 0)) {
    console.error('compatibility check failed: levitate found an incompatibility (above)');
    process.exit(1);
  }
}

const command = process.argv[2];
if (command === 'types') {
  checkTypes();
} else if (command === 'api') {
  await checkApi();
} else {
  console.error('usage: node compat/check.mjs types|api');
  process.exit(2);
}
