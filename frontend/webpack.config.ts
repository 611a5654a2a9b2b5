// create-plugin's webpack configuration (.config/webpack), extended for this repository's layout:
// plugin.json, README.md and the output folder live at the repository root, beside the backend
// executable that the Makefile builds into the same dist/ (so the build must never clean it).
import CopyWebpackPlugin from 'copy-webpack-plugin';
import path from 'path';
import type { Configuration } from 'webpack';
import { merge } from 'webpack-merge';

import grafanaConfig, { type Env } from './.config/webpack/webpack.config';
import { getPluginJson } from './.config/bundler/utils';

const REPO_DIR = path.resolve(__dirname, '..');
const DIST_DIR = path.join(REPO_DIR, 'dist');

interface PluginJson {
  id: string;
  info?: { version?: string; logos?: { small?: string; large?: string }; screenshots?: Array<{ path: string }> };
}

const stamp = (pluginJson: PluginJson) => (content: Buffer) =>
  Buffer.from(
    content
      .toString()
      .replace(/%VERSION%/g, pluginJson.info?.version ?? '0.0.0')
      .replace(/%TODAY%/g, new Date().toISOString().substring(0, 10))
      .replace(/%PLUGIN_ID%/g, pluginJson.id)
  );

const config = async (env: Env): Promise<Configuration> => {
  const base = await grafanaConfig(env);
  const pluginJson: PluginJson = getPluginJson();
  const assets = [
    pluginJson.info?.logos?.small,
    pluginJson.info?.logos?.large,
    ...(pluginJson.info?.screenshots ?? []).map((s) => s.path),
  ];
  // The scaffolded copy and placeholder plugins expect plugin.json, README.md and LICENSE next to
  // src/ and a dist/ inside frontend/: replaced by one copy step that reads them from the root.
  // Components use the automatic JSX runtime (no React import); Grafana shares `react/jsx-runtime`
  // with plugins since 12.3, the floor of grafanaDependency, so it stays external.
  for (const rule of base.module?.rules ?? []) {
    const use = rule && typeof rule === 'object' ? rule.use : undefined;
    if (use && typeof use === 'object' && !Array.isArray(use) && use.loader === 'swc-loader') {
      const options = use.options as { jsc: Record<string, unknown> };
      options.jsc.transform = { react: { runtime: 'automatic' } };
    }
  }
  base.plugins = (base.plugins ?? []).filter(
    (plugin) => !(plugin instanceof CopyWebpackPlugin) && plugin?.constructor.name !== 'ReplaceInFilePlugin'
  );
  return merge(base, {
    output: { path: DIST_DIR, clean: false },
    plugins: [
      new CopyWebpackPlugin({
        patterns: [
          { from: path.join(REPO_DIR, 'plugin.json'), to: '.', transform: stamp(pluginJson) },
          { from: path.join(REPO_DIR, 'README.md'), to: '.', noErrorOnMissing: true, transform: stamp(pluginJson) },
          { from: path.join(REPO_DIR, 'LICENSE'), to: '.', noErrorOnMissing: true },
          { from: path.join(REPO_DIR, 'CHANGELOG.md'), to: '.', noErrorOnMissing: true },
          ...Array.from(new Set(assets))
            .filter((asset): asset is string => Boolean(asset))
            .map((asset) => ({ from: asset, to: asset })),
        ],
      }),
    ],
  });
};

export default config;
