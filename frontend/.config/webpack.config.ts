// Production/development bundle of the plugin frontend, following @grafana/create-plugin's layout:
// an AMD module (Grafana's loader expects AMD) with Grafana's shared libraries left external.
import CopyWebpackPlugin from 'copy-webpack-plugin';
import fs from 'fs';
import path from 'path';
import TerserPlugin from 'terser-webpack-plugin';
import type { Configuration, ExternalItemFunctionData } from 'webpack';

const FRONTEND_DIR = path.resolve(__dirname, '..');
const SOURCE_DIR = path.join(FRONTEND_DIR, 'src');
const REPO_DIR = path.resolve(FRONTEND_DIR, '..');
// Shared with the backend executable that the Makefile builds into the same folder, so the build
// must never clean it.
const DIST_DIR = path.join(REPO_DIR, 'dist');
const PLUGIN_JSON = path.join(REPO_DIR, 'plugin.json');

type Env = Record<string, string | boolean | undefined>;

interface PluginJson {
  id: string;
  info?: { version?: string; logos?: { small?: string; large?: string } };
}

const pluginJson: PluginJson = JSON.parse(fs.readFileSync(PLUGIN_JSON, 'utf8'));

// Libraries that Grafana provides to plugins at runtime; bundling them would load a second copy.
const externals: Configuration['externals'] = [
  'lodash',
  'jquery',
  'moment',
  'slate',
  'emotion',
  '@emotion/react',
  '@emotion/css',
  'prismjs',
  'slate-plain-serializer',
  '@grafana/slate-react',
  'react',
  'react/jsx-runtime',
  'react/jsx-dev-runtime',
  'react-dom',
  'react-redux',
  'redux',
  'rxjs',
  'i18next',
  'react-router',
  'react-router-dom',
  'd3',
  'angular',
  /^@grafana\/ui/i,
  /^@grafana\/runtime/i,
  /^@grafana\/data/i,
  /^@grafana\/schema/i,
  /^@grafana\/i18n/i,
  ({ request }: ExternalItemFunctionData, callback: (error?: Error, result?: string) => void) => {
    // Legacy SDK imports such as `grafana/app/...` are resolved by Grafana without the prefix.
    const prefix = 'grafana/';
    if (request && request.startsWith(prefix)) {
      return callback(undefined, request.slice(prefix.length));
    }
    callback();
  },
];

const stamp = (content: Buffer): Buffer =>
  Buffer.from(
    content
      .toString()
      .replace(/%VERSION%/g, pluginJson.info?.version ?? '0.0.0')
      .replace(/%TODAY%/g, new Date().toISOString().substring(0, 10))
      .replace(/%PLUGIN_ID%/g, pluginJson.id)
  );

const logoPaths = Array.from(new Set([pluginJson.info?.logos?.small, pluginJson.info?.logos?.large])).filter(
  (p): p is string => Boolean(p)
);

const config = (env: Env): Configuration => ({
  context: SOURCE_DIR,
  devtool: env.production ? 'source-map' : 'eval-source-map',
  entry: { module: './module.ts' },
  externals,
  mode: env.production ? 'production' : 'development',
  module: {
    rules: [
      {
        exclude: /node_modules/,
        test: /\.[tj]sx?$/,
        use: {
          loader: 'swc-loader',
          options: {
            jsc: {
              baseUrl: SOURCE_DIR,
              target: 'es2018',
              loose: false,
              parser: { syntax: 'typescript', tsx: true, decorators: false, dynamicImport: true },
              transform: { react: { runtime: 'automatic' } },
            },
          },
        },
      },
      {
        test: /\.(png|jpe?g|gif|svg)$/,
        type: 'asset/resource',
        generator: { filename: env.production ? '[hash][ext]' : '[file]' },
      },
    ],
  },
  optimization: {
    minimize: Boolean(env.production),
    minimizer: [
      new TerserPlugin({
        terserOptions: { format: { comments: false }, compress: { drop_console: ['log', 'info'] } },
        extractComments: false,
      }),
    ],
  },
  output: {
    filename: '[name].js',
    chunkFilename: env.production ? '[name].js?_cache=[contenthash]' : '[name].js',
    library: { type: 'amd' },
    path: DIST_DIR,
    publicPath: `public/plugins/${pluginJson.id}/`,
    uniqueName: pluginJson.id,
  },
  performance: { hints: false },
  plugins: [
    new CopyWebpackPlugin({
      patterns: [
        { from: PLUGIN_JSON, to: '.', transform: stamp },
        { from: path.join(REPO_DIR, 'README.md'), to: '.', noErrorOnMissing: true, transform: stamp },
        { from: path.join(REPO_DIR, 'LICENSE'), to: '.', noErrorOnMissing: true },
        { from: path.join(REPO_DIR, 'CHANGELOG.md'), to: '.', noErrorOnMissing: true },
        ...logoPaths.map((logo) => ({ from: logo, to: logo })),
      ],
    }),
  ],
  resolve: {
    extensions: ['.js', '.jsx', '.ts', '.tsx'],
    modules: [SOURCE_DIR, 'node_modules'],
  },
});

export default config;
