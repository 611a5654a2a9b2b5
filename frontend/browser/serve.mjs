// Builds the editors' test page with esbuild and serves it, with Grafana's icons, on 127.0.0.1.
import esbuild from 'esbuild';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, '.build');
const MODULES = path.join(HERE, '..', 'node_modules');
const ICONS = path.join(MODULES, '@grafana', 'ui', 'dist', 'public', 'img', 'icons');
// Grafana serves Inter from public/fonts; the same font from npm stands in for it.
const FONTS = path.join(MODULES, '@fontsource', 'inter', 'files');
const FONT_FILES = {
  'Inter-Regular.woff2': 'inter-latin-400-normal.woff2',
  'Inter-Medium.woff2': 'inter-latin-500-normal.woff2',
  'Inter-Italic.woff2': 'inter-latin-400-italic.woff2',
  'Inter-MediumItalic.woff2': 'inter-latin-500-italic.woff2',
};

export async function build() {
  fs.rmSync(OUT, { recursive: true, force: true });
  await esbuild.build({
    entryPoints: [path.join(HERE, 'page.tsx')],
    bundle: true,
    outfile: path.join(OUT, 'page.js'),
    format: 'iife',
    platform: 'browser',
    target: 'es2020',
    jsx: 'automatic',
    // Production React and Grafana: their development warnings are not the editors' console errors.
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
    loader: { '.svg': 'file', '.png': 'file', '.woff': 'file', '.woff2': 'file', '.ttf': 'file' },
    logLevel: 'warning',
  });
  fs.copyFileSync(path.join(HERE, 'index.html'), path.join(OUT, 'index.html'));
  if (!fs.existsSync(path.join(OUT, 'page.css'))) {
    fs.writeFileSync(path.join(OUT, 'page.css'), '');
  }
}

const TYPES = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.svg': 'image/svg+xml',
  '.woff2': 'font/woff2',
};

// Grafana serves its spinner from its own public folder; @grafana/ui's npm package lacks it.
const SPINNER =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M12 2a10 10 0 1 0 10 10h-2a8 8 0 1 1-8-8z"/></svg>';

/** Serves the build; every request it cannot answer is recorded, so a test can fail on it. */
export function serve() {
  const missing = [];
  const served = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    served.push(url.pathname);
    if (url.pathname === '/public/build/img/icons/unicons/spinner.svg') {
      res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(SPINNER);
      return;
    }
    const font = url.pathname.startsWith('/public/fonts/inter/') ? FONT_FILES[path.basename(url.pathname)] : undefined;
    const file = font
      ? path.join(FONTS, font)
      : url.pathname.startsWith('/public/build/img/icons/')
        ? path.join(ICONS, url.pathname.slice('/public/build/img/icons/'.length))
        : path.join(OUT, url.pathname === '/' ? 'index.html' : url.pathname);
    const inside =
      file.startsWith(OUT + path.sep) || file.startsWith(ICONS + path.sep) || file.startsWith(FONTS + path.sep);
    if (!inside || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
      missing.push(url.pathname);
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[path.extname(file)] ?? 'application/octet-stream' });
    fs.createReadStream(file).pipe(res);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({ url: `http://127.0.0.1:${port}/`, missing, served, close: () => server.close() });
    });
  });
}
