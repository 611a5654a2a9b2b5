// Browser tests of the four editors (config, query, annotation, variable): Debian's Chromium (/usr/bin/chromium, or $CHROMIUM) driven by
// playwright-core, against browser/page.tsx built with esbuild. They use the editors as a person
// does, check what the editors emit against the README's settings and query model, that no secret
// is ever on the page after a paste, that no control overlaps another at 1280 and 960 px, and that
// the console stays free of errors; they also take the README's screenshots.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { build, serve } from './serve.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
// The README's and plugin.json's screenshots are rewritten with UPDATE_SCREENSHOTS=1 (or when
// missing); other runs write them to browser/.build/screenshots, so `make test` leaves the tree
// clean (pixels vary slightly from run to run, e.g. with a menu's fade-in).
const COMMITTED_SCREENSHOTS = path.join(HERE, '..', 'src', 'img', 'screenshots');
const SCRATCH_SCREENSHOTS = path.join(HERE, '.build', 'screenshots');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

const SECRET = 'C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=';
const CLIENT_TOKEN = 'akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj';
const ACCESS_TOKEN = 'akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij';
const HOST = 'akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net';
const EDGERC = `[default]
client_secret = ${SECRET}
host = https://${HOST}
access_token = ${ACCESS_TOKEN}
client_token = ${CLIENT_TOKEN}
`;
// Pieces long enough to identify each secret, wherever it might be cut.
const SECRET_PARTS = [SECRET, CLIENT_TOKEN, ACCESS_TOKEN].flatMap((s) => [
  s.slice(0, 12),
  s.slice(12, 24),
  s.slice(-12),
]);

/** The keys of a README table in a section: rows that start with backticked keys. */
function readmeKeys(section) {
  const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');
  const start = readme.indexOf(`\n## ${section}\n`);
  assert.ok(start >= 0, `README has a "## ${section}" section`);
  const body = readme.slice(start + 1).split(/\n## /)[0] ?? '';
  const keys = new Set();
  for (const line of body.split('\n')) {
    const cell = /^\| ((?:`[A-Za-z]+`(?:, )?)+) \|/.exec(line)?.[1];
    for (const key of cell?.match(/`([A-Za-z]+)`/g) ?? []) {
      keys.add(key.slice(1, -1));
    }
  }
  return keys;
}
const SETTINGS_KEYS = readmeKeys('Configuration');
const QUERY_KEYS = readmeKeys('Queries');
const contract = JSON.parse(fs.readFileSync(path.join(HERE, '..', 'src', 'generated', 'contract.json'), 'utf8'));

/** A query as the README's query model allows it: known keys, values from the backend's lists. */
function assertQueryModel(query) {
  for (const key of Object.keys(query)) {
    assert.ok(key === 'refId' || QUERY_KEYS.has(key), `query key "${key}" is in the README's query model`);
  }
  for (const key of ['queryType', 'targetType', 'delivery', 'side', 'groupBy']) {
    if (query[key] !== undefined) {
      assert.ok(contract.query[key].values.includes(query[key]), `${key} ${query[key]} is one the backend takes`);
    }
  }
  if (query.metric !== undefined) {
    const groupBy = query.groupBy ?? contract.query.groupBy.default;
    assert.ok(contract.query.metric[groupBy].values.includes(query.metric), `metric ${query.metric} fits ${groupBy}`);
  }
}

/** Settings as the README describes them: known keys, whole numbers, no secret in jsonData. */
function assertSettingsModel(settings) {
  for (const [key, value] of Object.entries(settings.jsonData)) {
    assert.ok(SETTINGS_KEYS.has(key), `jsonData key "${key}" is in the README's settings`);
    if (typeof value === 'number') {
      assert.ok(Number.isInteger(value), `${key} ${value} is a whole number`);
    }
    if (typeof value === 'string') {
      assert.equal(value, value.trim(), `${key} is trimmed`);
    }
  }
  for (const entry of settings.jsonData.watch ?? []) {
    const keys = Object.keys(entry).filter((k) => k !== 'delivery');
    assert.equal(keys.length, 1, `a watch entry has a CP code or a URL: ${JSON.stringify(entry)}`);
    if (entry.cpCode !== undefined) {
      assert.match(String(entry.cpCode), /^\d+$/, `watch cpCode ${entry.cpCode} is digits`);
    } else {
      assert.match(entry.url, /^https?:\/\/[^/\s]+/, `watch url ${entry.url} is absolute`);
    }
  }
  const visible = JSON.stringify(settings.jsonData);
  for (const part of SECRET_PARTS) {
    assert.ok(!visible.includes(part), 'no secret in jsonData');
  }
}

let browser;
let server;
let current;

before(async () => {
  await build();
  server = await serve();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--font-render-hinting=none'] });
});

after(async () => {
  await browser?.close();
  server?.close();
});

afterEach(async () => {
  const { errors, page } = current ?? {};
  current = undefined;
  await page?.context().close();
  assert.deepEqual(errors ?? [], [], 'the browser console has no errors');
  assert.deepEqual(server.missing, [], 'every request the page made was answered');
});

/** Opens an editor; console errors, page errors and failed requests are collected for afterEach. */
async function open(editor, { theme = 'dark', width = 1280, targets = 'ok', state } = {}) {
  const context = await browser.newContext({ viewport: { width, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const errors = [];
  page.on('console', (message) => {
    if (message.type() === 'error') {
      errors.push(message.text());
    }
  });
  page.on('pageerror', (error) => errors.push(String(error)));
  current = { page, errors };
  const query = new URLSearchParams({ editor, theme, targets, ...(state ? { state: JSON.stringify(state) } : {}) });
  await page.goto(`${server.url}?${query}`);
  await page.locator('#editor').waitFor();
  await page.evaluate(() => document.fonts.ready);
  return page;
}

const emitted = (page) => page.evaluate(() => window.emitted);
const lastEmitted = async (page) => (await emitted(page)).filter((e) => e !== 'run').at(-1);

/** Pairs of visible controls whose boxes intersect (a control and its own parts excepted). */
function overlaps(page) {
  return page.evaluate(() => {
    const selector = 'input, textarea, button, label, [role="combobox"], [role="alert"], h3, table';
    const visible = [...document.querySelectorAll(`#editor :is(${selector})`)].filter((el) => {
      const r = el.getBoundingClientRect();
      const style = getComputedStyle(el);
      return r.width > 2 && r.height > 2 && style.visibility !== 'hidden' && Number(style.opacity) > 0;
    });
    const name = (el) =>
      `${el.tagName.toLowerCase()}[${(el.getAttribute('aria-label') ?? el.textContent ?? '').trim().slice(0, 40)}]`;
    const found = [];
    for (let i = 0; i < visible.length; i++) {
      for (let j = i + 1; j < visible.length; j++) {
        const a = visible[i];
        const b = visible[j];
        if (a.contains(b) || b.contains(a)) {
          continue;
        }
        // A field's own adornment (the paste box's reveal button) is placed over it by design.
        const adorns = (x, y) => getComputedStyle(x).position === 'absolute' && x.parentElement?.contains(y);
        if (adorns(a, b) || adorns(b, a)) {
          continue;
        }
        const ra = a.getBoundingClientRect();
        const rb = b.getBoundingClientRect();
        const w = Math.min(ra.right, rb.right) - Math.max(ra.left, rb.left);
        const h = Math.min(ra.bottom, rb.bottom) - Math.max(ra.top, rb.top);
        if (w > 1 && h > 1) {
          found.push(`${name(a)} overlaps ${name(b)} by ${Math.round(w)}x${Math.round(h)} px`);
        }
      }
    }
    return found;
  });
}

async function assertNoOverlap(page, label) {
  for (const width of [1280, 960]) {
    await page.setViewportSize({ width, height: 900 });
    await page.waitForTimeout(100);
    assert.deepEqual(await overlaps(page), [], `${label} at ${width} px: no control overlaps another`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

/** Neither the page's text nor any field's value holds a secret; secret inputs are password fields. */
async function assertNoSecretOnPage(page) {
  const { text, values } = await page.evaluate(() => ({
    text: document.body.innerText,
    values: [...document.querySelectorAll('input, textarea')].map((el) => ({
      type: el.type,
      masked: el.type === 'password' || getComputedStyle(el).webkitTextSecurity === 'disc',
      value: el.value,
    })),
  }));
  for (const part of SECRET_PARTS) {
    assert.ok(!text.includes(part), `no secret text on the page (${part.slice(0, 4)}…)`);
    for (const { type, masked, value } of values) {
      assert.ok(masked || !value.includes(part), `no secret in a visible ${type} field`);
    }
  }
}

/** A screenshot for the README and plugin.json: the editor, or the top of the page (with an open menu). */
async function screenshot(page, name, { height, from } = {}) {
  const committed = path.join(COMMITTED_SCREENSHOTS, `${name}.png`);
  const dir =
    process.env.UPDATE_SCREENSHOTS === '1' || !fs.existsSync(committed) ? COMMITTED_SCREENSHOTS : SCRATCH_SCREENSHOTS;
  fs.mkdirSync(dir, { recursive: true });
  await page.mouse.move(0, 0);
  const file = path.join(dir, `${name}.png`);
  if (from) {
    // From a heading to the end of the editor: one section of a long page.
    await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
    // Page coordinates (a full-page clip), not the viewport's.
    const top = Math.max(0, (await from.evaluate((el) => el.getBoundingClientRect().top + window.scrollY)) - 16);
    const bottom = await page.locator('#editor').evaluate((el) => el.getBoundingClientRect().bottom + window.scrollY);
    await page.screenshot({
      path: file,
      fullPage: true,
      clip: { x: 0, y: top, width: 1280, height: bottom - top },
      animations: 'disabled',
    });
    return;
  }
  if (height) {
    await page.screenshot({ path: file, clip: { x: 0, y: 0, width: 1280, height }, animations: 'disabled' });
    return;
  }
  await page.evaluate(() => document.activeElement instanceof HTMLElement && document.activeElement.blur());
  await page.locator('#editor').screenshot({ path: file, animations: 'disabled' });
}

// A RadioButton's input lies over its label (as in Grafana): clicks go to the input.
const radio = (page, group, option) =>
  page.getByRole('radiogroup', { name: group }).getByRole('radio', { name: option, exact: true });

describe('config editor', () => {
  it('fills credentials from a masked .edgerc paste and never shows a secret, even after errors', async () => {
    const page = await open('config');
    const box = page.getByLabel('Paste .edgerc section');
    await box.fill(EDGERC);
    assert.equal(await box.evaluate((el) => getComputedStyle(el).webkitTextSecurity), 'disc', 'the paste is masked');
    await assertNoSecretOnPage(page);
    await page.getByRole('button', { name: 'Fill in host and secrets' }).click();

    const settings = await lastEmitted(page);
    assert.deepEqual(settings.secureJsonData, {
      clientToken: CLIENT_TOKEN,
      clientSecret: SECRET,
      accessToken: ACCESS_TOKEN,
    });
    assert.equal(settings.jsonData.host, HOST);
    assertSettingsModel(settings);
    assert.equal(await box.inputValue(), '', 'the box is emptied');
    await page.getByText(/The scheme was removed from "host"/).waitFor();
    await assertNoSecretOnPage(page);

    // client_secret wrapped onto its own line: refused, the box emptied, no stale note, nothing quoted.
    const before = (await emitted(page)).length;
    await box.fill(
      EDGERC.replace(`client_secret = ${SECRET.slice(0, 14)}`, `client_secret = ${SECRET.slice(0, 14)}\n`)
    );
    await page.getByRole('button', { name: 'Fill in host and secrets' }).click();
    await page.getByText('Nothing was filled in').waitFor();
    assert.equal((await emitted(page)).length, before, 'a refused paste changes nothing');
    assert.equal(await box.inputValue(), '');
    assert.equal(await page.getByText(/The scheme was removed/).count(), 0, 'no stale note after a failed paste');
    await page
      .getByText(/wrapped onto its own line/)
      .first()
      .waitFor();
    await assertNoSecretOnPage(page);
    await assertNoOverlap(page, 'config after a failed paste');
  });

  it('edits the watch list as a table: errors under the row after leaving it, only valid rows saved', async () => {
    const page = await open('config', {
      state: { jsonData: { watch: [{ cpCode: 1209788, delivery: 'STANDARD_TLS' }] } },
    });
    await page.getByRole('button', { name: 'Add CP code' }).click();
    assert.equal(await page.getByRole('alert').count(), 0, 'a new empty row shows no error');
    const cp = page.getByLabel('Watched target 2 CP code');
    await cp.fill('12ab');
    assert.equal(await page.getByRole('alert').count(), 0, 'no error while typing');
    await cp.blur();
    await page.getByRole('alert').getByText('A CP code has digits only').waitFor();
    const rowBox = await page.getByLabel('Watched target 2 CP code').boundingBox();
    const errorBox = await page.getByRole('alert').boundingBox();
    assert.ok(errorBox.y >= rowBox.y + rowBox.height, 'the error is under the row');
    assert.deepEqual(await emitted(page), [], 'nothing to save yet: "" and "12ab" are never emitted');

    await cp.fill('555');
    await page.getByRole('button', { name: 'Add URL' }).click();
    const url = 'https://downloads.example-media-company.com/releases/2026/11/installer-full-x86_64.tar.gz';
    await page.getByLabel('Watched target 3 URL').fill(url);
    await radio(page, 'Watched target 3 delivery', 'Enhanced TLS').click();
    // Switching the URL row to CP code keeps its text (flagged) instead of dropping it.
    await radio(page, 'Watched target 3 type', 'CP code').click();
    assert.equal(await page.getByLabel('Watched target 3 CP code').inputValue(), url);
    await radio(page, 'Watched target 3 type', 'URL').click();

    const settings = await lastEmitted(page);
    assert.deepEqual(settings.jsonData.watch, [
      { cpCode: 1209788, delivery: 'STANDARD_TLS' },
      { cpCode: 555 },
      { url, delivery: 'ENHANCED_TLS' },
    ]);
    for (const each of await emitted(page)) {
      assertSettingsModel(each);
    }
    await assertNoOverlap(page, 'config with a watch list');
  });

  it('checks settings against the backend rules and hides credentials with the simulator on', async () => {
    const page = await open('config');
    await page.getByLabel(/^Host/).fill('http://localhost:8080');
    await page.getByLabel(/^Host/).blur();
    assert.equal(await page.getByText(/Use https/).count(), 0, 'http on a loopback host is accepted');
    await page.getByLabel(/^\.edgerc path/).fill('  /etc/grafana/.edgerc  ');
    await page.getByRole('button', { name: /Additional settings/ }).click();
    const poll = page.getByLabel(/^Poll interval/);
    await poll.fill('2.5');
    await poll.blur();
    await page.getByText('Poll interval must be a whole number of seconds').waitFor();
    await poll.fill('5000');
    await page.getByText('Poll interval must be at most 3600 seconds').waitFor();
    let settings = await lastEmitted(page);
    assert.equal(settings.jsonData.pollIntervalSeconds, undefined, 'a bad poll interval is never emitted');
    assert.equal(settings.jsonData.edgercPath, '/etc/grafana/.edgerc');
    await poll.fill('1');
    await page.getByLabel(/^Rate limit/).fill('6000');
    settings = await lastEmitted(page);
    assert.equal(settings.jsonData.pollIntervalSeconds, 1, 'loopback hosts may poll every second');
    assert.equal(settings.jsonData.rateLimitPerMinute, 6000, 'and call up to 6000 times a minute');
    assertSettingsModel(settings);
    await screenshot(page, 'config-additional-settings');

    await page.getByLabel(/^Host/).fill('');
    // Grafana's Switch draws its toggle as the label next to the (hidden) checkbox.
    await page.locator('#estats-config-simulate + label').click();
    await page.getByText('The simulator needs no credentials').waitFor();
    for (const label of ['Paste .edgerc section', /^Client secret/, /^Host/]) {
      assert.equal(await page.getByLabel(label).count(), 0, `${label} is hidden with the simulator on`);
    }
    assert.equal((await lastEmitted(page)).jsonData.simulate, true);
    await assertNoOverlap(page, 'config with the simulator');
  });

  it('offers the shared history database, keeps its password off the page and out of jsonData', async () => {
    const page = await open('config');
    await page.getByRole('button', { name: /Additional settings/ }).click();
    const database = page.getByLabel(/^History database/);
    assert.equal(await page.getByLabel(/^Database password/).count(), 0, 'no password field without a database');
    const url = 'postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full';
    // A password typed into the URL is refused, pointed at the password field, and never emitted.
    await database.fill(url.replace('grafana@', `grafana:${SECRET}@`));
    await database.blur();
    await page.getByText(/Remove the password from the URL/).waitFor();
    assert.equal(await page.getByLabel(/^Database password/).count(), 1, 'the password field the message names');
    for (const each of await emitted(page)) {
      assert.equal(each.jsonData.historyDatabase, undefined, 'a URL with a password is never emitted');
      assertSettingsModel(each);
    }
    await database.fill(`  ${url.replace('verify-full', 'prefer')}`);
    await page.getByText('sslmode must be one of disable, require, verify-full').waitFor();
    await database.fill(`  ${url} `);
    await database.blur();
    const password = page.getByLabel(/^Database password/);
    assert.equal(await password.getAttribute('type'), 'password', 'the database password is a password field');
    await password.fill(SECRET);
    const schema = page.getByLabel(/^Database schema/);
    await schema.fill('Estats');
    await schema.blur();
    await page.getByText(/Use lower-case letters, digits and _/).waitFor();
    await schema.fill('estats');
    await page.getByText(/Ignored while a shared history database is set/).waitFor();
    const settings = await lastEmitted(page);
    assert.deepEqual(settings.jsonData, { historyDatabase: url, historyDatabaseSchema: 'estats' });
    assert.equal(settings.secureJsonData.historyDatabasePassword, SECRET);
    assertSettingsModel(settings);
    await assertNoSecretOnPage(page);
    await assertNoOverlap(page, 'config with a shared history database');
    await screenshot(page, 'config-shared-history', { from: page.getByText('Shared history (high availability)') });
  });

  for (const theme of ['dark', 'light']) {
    it(`renders the whole page in the ${theme} theme`, async () => {
      const page = await open('config', {
        theme,
        state: {
          jsonData: {
            host: HOST,
            watch: [{ cpCode: 1209788, delivery: 'STANDARD_TLS' }, { url: 'https://www.example.com/' }],
          },
          secureJsonFields: { clientToken: true, clientSecret: true, accessToken: true },
        },
      });
      await assertNoOverlap(page, `config, ${theme}`);
      await screenshot(page, `config-${theme}`);
    });
  }
});

describe('query editor', () => {
  it('shows the metric wherever it applies and resets it when it stops fitting', async () => {
    const page = await open('query', { state: { refId: 'A', cpCode: '1209788' } });
    await radio(page, 'Query type', 'Time series').click();
    await radio(page, 'Group by', 'Total').click();
    let query = await lastEmitted(page);
    assert.equal(query.metric, contract.query.metric.total.default, "Total takes the backend's default metric");
    assert.equal(await page.locator('[role="tooltip"]').count(), 0, 'no tooltip after clicking an option');

    await radio(page, 'Query type', 'Distribution').click();
    query = await lastEmitted(page);
    assert.deepEqual([query.groupBy, query.metric], ['total', 'hits'], 'a distribution total has hits only');
    assertQueryModel(query);

    await radio(page, 'Query type', 'Summary').click();
    await radio(page, 'Side', 'Edge').click();
    await radio(page, 'Metric', 'Hits').click();
    query = await lastEmitted(page);
    // The README's "traffic collapsed" alert query.
    for (const [key, value] of Object.entries({
      queryType: 'summary',
      cpCode: '1209788',
      side: 'edge',
      metric: 'hits',
    })) {
      assert.equal(query[key], value, key);
    }
    assertQueryModel(query);
    assert.ok((await emitted(page)).includes('run'), 'a complete query runs');
    await assertNoOverlap(page, 'query editor, summary');
  });

  it('picks $target for "$tar" + Enter, flags unknown variables and offers only fitting ones', async () => {
    const page = await open('query', { state: { refId: 'A', queryType: 'timeseries' } });
    const target = page.getByRole('combobox', { name: 'CP code' });
    await target.click();
    await page.getByRole('option', { name: /\$target/ }).waitFor();
    assert.equal(await page.getByRole('option', { name: /\$status/ }).count(), 0, '$status holds no CP code');
    await target.pressSequentially('$tar');
    // Options follow the typed text after a debounce: wait for the list of the whole text.
    await page.getByRole('option').filter({ hasText: '$tarUse this CP code' }).waitFor();
    await page.keyboard.press('Enter');
    let query = await lastEmitted(page);
    assert.equal(query.cpCode, '$target');
    assertQueryModel(query);

    await target.click();
    await target.press('Control+a');
    await target.pressSequentially('$nope');
    await page.getByRole('option').filter({ hasText: '$nopeUse this CP code' }).waitFor();
    await page.keyboard.press('Enter');
    await page.getByText('Unknown dashboard variable $nope').waitFor();
    query = await lastEmitted(page);
    assert.equal(query.cpCode, '$nope');
    assert.equal(await page.getByText('Query incomplete').count(), 0, 'one message, not two');
    await page.keyboard.press('Escape');
    await assertNoOverlap(page, 'query editor with an error');
  });

  it('adds long URLs with their delivery network to the list, in both themes', async () => {
    const long = 'https://downloads.example-media-company.com/releases/2026/11/installer-full-x86_64.tar.gz';
    for (const theme of ['dark', 'light']) {
      const page = await open('query', {
        theme,
        state: { refId: 'A', queryType: 'timeseries', targetType: 'url', groupBy: 'class', statusFilter: '5xx' },
      });
      const add = page.getByRole('combobox', { name: 'Add' });
      await add.click();
      const option = page.getByRole('option').filter({ hasText: 'installer-full' });
      await option.waitFor();
      assert.match(await option.innerText(), /ENHANCED_TLS/, 'the delivery network is visible');
      if (theme === 'dark') {
        await screenshot(page, 'query-targets-dark', { height: 420 });
      }
      await option.click();
      let query = await lastEmitted(page);
      assert.equal(query.url, long);
      assert.equal(query.delivery, 'ENHANCED_TLS');
      assertQueryModel(query);

      // A second URL typed on its own line, applied when the field is left.
      const urls = page.getByLabel('URLs');
      await urls.click();
      await urls.press('End');
      await urls.press('Control+End');
      await urls.pressSequentially('\nhttps://www.example.com/a,b');
      await urls.blur();
      query = await lastEmitted(page);
      assert.equal(query.url, `${long}\nhttps://www.example.com/a,b`);
      assertQueryModel(query);
      const fits = await urls.evaluate((el) => el.scrollWidth <= el.clientWidth + 1);
      const box = await urls.boundingBox();
      assert.ok(fits && box.width > 500, 'the whole URL is visible in the box');
      await assertNoOverlap(page, `query editor, ${theme}`);
      await screenshot(page, `query-${theme}`);
      await page.context().close();
      assert.deepEqual(current.errors, []);
    }
  });

  it('takes a CP code list or * for every watched CP code, and flags * with others', async () => {
    const page = await open('query', {
      state: { refId: 'A', queryType: 'distribution', groupBy: 'class', statusFilter: '5xx' },
    });
    await page.getByText('1209788, 1209789 or * for every watched CP code', { exact: false }).first().waitFor();
    const target = page.getByRole('combobox', { name: 'CP code' });
    await target.click();
    await target.pressSequentially('1209788, 1209789');
    await page.getByRole('option').filter({ hasText: '1209788, 1209789Use this CP code' }).waitFor();
    await page.keyboard.press('Enter');
    let query = await lastEmitted(page);
    assert.equal(query.cpCode, '1209788, 1209789');
    assertQueryModel(query);
    assert.equal((await emitted(page)).filter((e) => e === 'run').length, 1, 'a list runs');
    await assertNoOverlap(page, 'query editor with a CP code list');
    await screenshot(page, 'query-multi-dark');
    assert.equal((await lastEmitted(page)).cpCode, '1209788, 1209789', 'the list stays');

    await target.click();
    await page.getByRole('option', { name: /Every watched CP code/ }).click();
    query = await lastEmitted(page);
    assert.equal(query.cpCode, '*');

    await target.click();
    await target.press('Control+a');
    await target.pressSequentially('*, 1209788');
    await page.getByRole('option').filter({ hasText: '*, 1209788Use this CP code' }).waitFor();
    await page.keyboard.press('Enter');
    await page.getByText('* stands for every watched CP code: remove the other CP codes, or the *').waitFor();
    assert.equal((await emitted(page)).filter((e) => e === 'run').length, 2, '* with others does not run');
    await page.keyboard.press('Escape');
  });

  it('says why known targets are missing, and shows that they load', async () => {
    let page = await open('query', { targets: 'fail', state: { refId: 'A' } });
    await page
      .getByText(/Known targets could not be loaded \(plugin unavailable: the backend process is not running\)/)
      .waitFor();
    await page.context().close();
    page = await open('query', { targets: 'slow', state: { refId: 'A' } });
    await page.getByRole('combobox', { name: 'CP code' }).waitFor();
    const spinner = '/public/build/img/icons/unicons/spinner.svg';
    for (let i = 0; i < 50 && !server.served.includes(spinner); i++) {
      await page.waitForTimeout(100);
    }
    assert.ok(server.served.includes(spinner), 'a spinner shows while targets load');
  });
});

describe('annotation editor', () => {
  it('starts on every watched CP code and edits targets, side, filter and threshold as an events query', async () => {
    const page = await open('annotation');
    let query = await lastEmitted(page);
    assert.deepEqual(query, { refId: 'Anno', queryType: 'events', targetType: 'cpCode', cpCode: '*', side: 'both' });
    const targets = page.getByLabel('CP codes');
    assert.equal(await targets.inputValue(), '*');
    await targets.fill('1209788, 1209789');
    await targets.press('Enter');
    await radio(page, 'Side', 'Edge').click();
    await page.getByLabel('Status filter').fill('5xx');
    await page.getByLabel('Status filter').blur();
    const threshold = page.getByLabel('Threshold (%)');
    await threshold.fill('150');
    await threshold.blur();
    await page.getByText('The threshold is a percentage above 0 and at most 100, e.g. 2').waitFor();
    assert.equal((await lastEmitted(page)).threshold, undefined, 'a bad threshold is never emitted');
    await threshold.fill('2');
    await threshold.blur();
    query = await lastEmitted(page);
    assert.deepEqual(query, {
      refId: 'Anno',
      queryType: 'events',
      targetType: 'cpCode',
      cpCode: '1209788, 1209789',
      side: 'edge',
      statusFilter: '5xx',
      threshold: 2,
    });
    // The keys are the README's; `events` itself is checked above, as contract.json lists it only
    // once the backend's annotations are merged.
    for (const each of (await emitted(page)).filter((e) => e !== 'run')) {
      assert.equal(each.queryType, 'events');
      assertQueryModel({ ...each, queryType: undefined });
    }
    await assertNoOverlap(page, 'annotation editor');
    await screenshot(page, 'annotation-dark');
  });

  it('takes URLs one a line', async () => {
    const page = await open('annotation', {
      theme: 'light',
      state: { refId: 'Anno', queryType: 'events', cpCode: '*' },
    });
    await radio(page, 'Target', 'URL').click();
    const urls = page.getByLabel('URLs');
    await urls.fill('https://www.example.com/\nwww.example.org');
    await urls.blur();
    await page.getByText('"www.example.org" is not an absolute http(s) URL: start it with https://').waitFor();
    await urls.fill('https://www.example.com/\nhttps://www.example.org/');
    await urls.blur();
    const query = await lastEmitted(page);
    assert.equal(query.url, 'https://www.example.com/\nhttps://www.example.org/');
    assert.equal(query.targetType, 'url');
    await assertNoOverlap(page, 'annotation editor with URLs');
  });
});

describe('variable editor', () => {
  it('offers dashboard variables that hold a target', async () => {
    const page = await open('variable', { state: { refId: 'v', kind: 'statusCodes', target: '' } });
    const target = page.getByRole('combobox', { name: 'Target' });
    await target.click();
    await page.getByRole('option', { name: /\$cpcode/ }).waitFor();
    assert.equal(await page.getByRole('option', { name: /\$status/ }).count(), 0, '$status is no target');
    await page.getByRole('option', { name: /\$cpcode/ }).click();
    assert.deepEqual(await lastEmitted(page), { refId: 'v', kind: 'statusCodes', target: '$cpcode' });
    await assertNoOverlap(page, 'variable editor');
    await screenshot(page, 'variable-dark');
  });
});
