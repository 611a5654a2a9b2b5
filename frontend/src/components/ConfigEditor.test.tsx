import type { DataSourceSettings } from '@grafana/data';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';

import type { EStatsOptions, EStatsSecureJsonData } from '../types';
import { ConfigEditor } from './ConfigEditor';

type Settings = DataSourceSettings<EStatsOptions, EStatsSecureJsonData>;

// Still required by the settings type, though deprecated: kept out of the typed literal below.
const legacyFields = { database: '' };

function settings(patch: Partial<Settings> = {}): Settings {
  return {
    ...legacyFields,
    id: 1,
    uid: 'estats-uid',
    orgId: 1,
    name: 'Akamai eStats',
    typeLogoUrl: '',
    type: 'akamai-estats-datasource',
    typeName: 'Akamai eStats',
    access: 'proxy',
    url: '',
    user: '',
    basicAuth: false,
    basicAuthUser: '',
    isDefault: false,
    withCredentials: false,
    readOnly: false,
    jsonData: {},
    secureJsonFields: {},
    ...patch,
  };
}

/** Renders the editor the way Grafana does: every change comes back as new props. */
function setup(initial: Settings = settings()) {
  const changes: Settings[] = [];
  function Harness() {
    const [options, setOptions] = useState(initial);
    return (
      <ConfigEditor
        options={options}
        onOptionsChange={(next) => {
          changes.push(next);
          setOptions(next);
        }}
      />
    );
  }
  const user = userEvent.setup({ delay: null });
  render(<Harness />);
  const latest = () => changes[changes.length - 1] ?? initial;
  return { user, latest, changes };
}

const EDGERC = `[default]
client_secret = C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=
host = akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net
access_token = akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij
Client_token = akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj
`;

// A Field's label text is its label followed directly by its description (which starts with a capital).
const labelPattern = (name: string) => new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?=[A-Z]|$)`);
const byLabel = (name: string) => screen.getByLabelText(labelPattern(name));
const queryByLabel = (name: string) => screen.queryByLabelText(labelPattern(name));

async function openAdditional(user: ReturnType<typeof userEvent.setup>) {
  await user.click(screen.getByRole('button', { name: /Additional settings/ }));
}

describe('ConfigEditor', () => {
  it('labels every field, with polling and history under a collapsed "Additional settings"', async () => {
    const { user } = setup();
    for (const label of [
      'Simulator',
      'Host',
      'Account switch key',
      'Paste .edgerc section',
      'Section to read',
      'Client token',
      'Client secret',
      'Access token',
      '.edgerc path',
      '.edgerc section',
    ]) {
      expect(byLabel(label)).toBeInTheDocument();
    }
    expect(screen.getByRole('radiogroup', { name: 'Default delivery network' })).toBeInTheDocument();
    for (const section of ['Connection', 'Credentials', 'Watched targets']) {
      expect(screen.getByRole('region', { name: section })).toBeInTheDocument();
    }
    expect(queryByLabel('Poll interval (seconds)')).not.toBeInTheDocument();
    await openAdditional(user);
    for (const label of [
      'Poll interval (seconds)',
      'Request timeout (seconds)',
      'Rate limit (requests per minute)',
      'Retention (hours)',
      'History file',
    ]) {
      expect(byLabel(label)).toBeInTheDocument();
    }
  });

  it('keeps secrets in secureJsonData only', async () => {
    const { user, latest } = setup();
    await user.type(byLabel('Client token'), 'token-1');
    await user.type(byLabel('Client secret'), 'secret-2');
    await user.type(byLabel('Access token'), 'access-3');
    await user.type(byLabel('Host'), 'akab-x.luna.akamaiapis.net');

    expect(latest().secureJsonData).toEqual({
      clientToken: 'token-1',
      clientSecret: 'secret-2',
      accessToken: 'access-3',
    });
    expect(latest().jsonData).toEqual({ host: 'akab-x.luna.akamaiapis.net' });
    const visible = JSON.stringify({ ...latest(), secureJsonData: undefined });
    for (const secret of ['token-1', 'secret-2', 'access-3']) {
      expect(visible).not.toContain(secret);
    }
  });

  it('shows configured secrets and resets them', async () => {
    const { user, latest } = setup(
      settings({ secureJsonFields: { clientToken: true, clientSecret: true, accessToken: true } })
    );
    const secret = byLabel('Client secret');
    expect(secret).toHaveValue('configured');
    expect(secret).toBeDisabled();

    const resets = screen.getAllByRole('button', { name: 'Reset' });
    expect(resets).toHaveLength(3);
    await user.click(resets[1]!);

    expect(latest().secureJsonFields).toEqual({ clientToken: true, clientSecret: false, accessToken: true });
    expect(latest().secureJsonData).toEqual({ clientSecret: '' });
    const input = byLabel('Client secret');
    expect(input).toBeEnabled();
    expect(input).toHaveValue('');
    await user.type(input, 'new-secret');
    expect(latest().secureJsonData).toEqual({ clientSecret: 'new-secret' });
  });

  it('fills host and secrets from a masked .edgerc paste, then empties the box', async () => {
    const { user, latest } = setup(
      settings({ secureJsonFields: { clientToken: true, clientSecret: true, accessToken: true } })
    );
    const box = byLabel('Paste .edgerc section');
    await user.click(box);
    await user.paste(EDGERC);
    await user.click(screen.getByRole('button', { name: 'Fill in host and secrets' }));

    expect(latest().jsonData).toEqual({ host: 'akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net' });
    expect(latest().secureJsonData).toEqual({
      clientToken: 'akab-c113ntt0k3n4qtari252bfxxbsl-yvsdj',
      clientSecret: 'C113nt53KR3TN6N90yVuAgICxIRwsObLi0E67/N8eRN=',
      accessToken: 'akab-acc35t0k3nodujqunph3w7hzp7-gtm6ij',
    });
    expect(latest().secureJsonFields).toEqual({ clientToken: false, clientSecret: false, accessToken: false });
    expect(JSON.stringify(latest().jsonData)).not.toContain('akab-c113ntt0k3n');

    const notes = screen.getByRole('list', { name: '.edgerc notes' });
    expect(within(notes).getByText(/"Client_token" read as "client_token"/)).toBeInTheDocument();
    expect(byLabel('Paste .edgerc section')).toHaveValue('');
    expect(byLabel('Host')).toHaveValue('akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net');
  });

  it('after a failed paste: fills in nothing, empties the box, quotes no value and drops stale notes', async () => {
    const { user, changes } = setup();
    await user.click(byLabel('Paste .edgerc section'));
    await user.paste(EDGERC.replace('host = ', 'host = https://'));
    await user.click(screen.getByRole('button', { name: 'Fill in host and secrets' }));
    expect(screen.getByText(/The scheme was removed from "host"/)).toBeInTheDocument();
    const applied = changes.length;

    // client_secret's value wrapped onto its own line, as a mail client may do.
    const wrapped = EDGERC.replace('client_secret = C113nt53KR3TN6', 'client_secret = C113nt53KR3TN6\n');
    await user.click(byLabel('Paste .edgerc section'));
    await user.paste(wrapped.replace('host = ', 'host = https://'));
    await user.click(screen.getByRole('button', { name: 'Fill in host and secrets' }));

    expect(changes).toHaveLength(applied);
    expect(byLabel('Paste .edgerc section')).toHaveValue('');
    const problems = screen.getByRole('list', { name: '.edgerc problems' });
    expect(within(problems).getByText(/wrapped onto its own line/)).toBeVisible();
    expect(screen.queryByText(/The scheme was removed/)).not.toBeInTheDocument();
    expect(document.body.textContent).not.toContain('N90yVuAg');
  });

  it('reports a misspelt key with the key it means', async () => {
    const { user, changes } = setup();
    await user.click(byLabel('Paste .edgerc section'));
    await user.paste(EDGERC.replace('access_token', 'acess_token'));
    await user.click(screen.getByRole('button', { name: 'Fill in host and secrets' }));

    expect(changes).toHaveLength(0);
    const problems = screen.getByRole('list', { name: '.edgerc problems' });
    expect(within(problems).getByText('Line 4: unknown key; did you mean "access_token"?')).toBeVisible();
    expect(within(problems).getByText('"access_token" is missing from [default]')).toBeVisible();
  });

  it('edits the watch list and saves only complete rows', async () => {
    const { user, latest } = setup(settings({ jsonData: { watch: [{ cpCode: 1209788, delivery: 'STANDARD_TLS' }] } }));

    await user.click(screen.getByRole('button', { name: 'Add CP code' }));
    // A new empty row shows no error and is not saved.
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    expect(latest().jsonData.watch).toEqual([{ cpCode: 1209788, delivery: 'STANDARD_TLS' }]);
    await user.type(byLabel('Watched target 2 CP code'), '555');
    await user.click(screen.getByRole('button', { name: 'Add URL' }));
    await user.click(byLabel('Watched target 3 URL'));
    await user.paste('https://www.example.com/');
    const delivery = screen.getByRole('radiogroup', { name: 'Watched target 3 delivery' });
    await user.click(within(delivery).getByRole('radio', { name: 'Enhanced TLS' }));

    expect(latest().jsonData.watch).toEqual([
      { cpCode: 1209788, delivery: 'STANDARD_TLS' },
      { cpCode: 555 },
      { url: 'https://www.example.com/', delivery: 'ENHANCED_TLS' },
    ]);

    await user.click(screen.getByRole('button', { name: 'Remove watched target 1' }));
    expect(latest().jsonData.watch).toEqual([
      { cpCode: 555 },
      { url: 'https://www.example.com/', delivery: 'ENHANCED_TLS' },
    ]);

    // Switching a URL row to CP code keeps the text, flags it, and leaves it out until fixed.
    const type = screen.getByRole('radiogroup', { name: 'Watched target 2 type' });
    await user.click(within(type).getByRole('radio', { name: 'CP code' }));
    expect(byLabel('Watched target 2 CP code')).toHaveValue('https://www.example.com/');
    expect(screen.getByRole('alert')).toHaveTextContent('A CP code has digits only');
    expect(latest().jsonData.watch).toEqual([{ cpCode: 555 }]);
    await user.click(within(type).getByRole('radio', { name: 'URL' }));
    expect(latest().jsonData.watch).toEqual([
      { cpCode: 555 },
      { url: 'https://www.example.com/', delivery: 'ENHANCED_TLS' },
    ]);

    await user.click(screen.getByRole('button', { name: 'Remove watched target 1' }));
    await user.click(screen.getByRole('button', { name: 'Remove watched target 1' }));
    expect(latest().jsonData.watch).toBeUndefined();
  });

  it('flags bad CP codes after the field is left, and duplicates, never saving them', async () => {
    const { user, latest } = setup(settings({ jsonData: { watch: [{ cpCode: 555 }] } }));
    await user.click(screen.getByRole('button', { name: 'Add CP code' }));
    const input = byLabel('Watched target 2 CP code');
    await user.type(input, '12ab');
    expect(screen.queryByRole('alert')).not.toBeInTheDocument();
    await user.tab();
    expect(screen.getByRole('alert')).toHaveTextContent('A CP code has digits only');
    expect(latest().jsonData.watch).toEqual([{ cpCode: 555 }]);
    await user.clear(input);
    expect(screen.getByRole('alert')).toHaveTextContent('Enter a CP code, or remove this row');
    await user.type(input, '555');
    expect(screen.getByRole('alert')).toHaveTextContent('Same target as row 1');
    expect(latest().jsonData.watch).toEqual([{ cpCode: 555 }]);
  });

  it('accepts what the backend accepts for host, and flags the rest after the field is left', async () => {
    const { user, latest } = setup();
    const host = byLabel('Host');
    await user.type(host, 'https://akab-x.luna.akamaiapis.net');
    await user.tab();
    expect(latest().jsonData.host).toBe('https://akab-x.luna.akamaiapis.net');
    expect(screen.queryByText(/Use https/)).not.toBeInTheDocument();

    await user.clear(host);
    await user.type(host, 'http://localhost:8080');
    expect(latest().jsonData.host).toBe('http://localhost:8080');

    await user.clear(host);
    await user.type(host, 'http://example.com');
    await user.tab();
    expect(screen.getByText(/Use https:\/\/ \(or no scheme\)/)).toBeInTheDocument();
    expect(latest().jsonData).not.toHaveProperty('host');
  });

  it('checks numbers against the backend bounds and never saves a bad one', async () => {
    const { user, latest } = setup(settings({ jsonData: { pollIntervalSeconds: 60 } }));
    await openAdditional(user);
    const poll = byLabel('Poll interval (seconds)');

    await user.clear(poll);
    await user.type(poll, '2.5');
    await user.tab();
    expect(screen.getByText('Poll interval must be a whole number of seconds')).toBeInTheDocument();
    expect(latest().jsonData).not.toHaveProperty('pollIntervalSeconds');

    await user.clear(poll);
    await user.type(poll, '5000');
    expect(screen.getByText('Poll interval must be at most 3600 seconds')).toBeInTheDocument();
    await user.clear(poll);
    await user.type(poll, '90');
    expect(latest().jsonData.pollIntervalSeconds).toBe(90);
    expect(screen.queryByText(/Poll interval must/)).not.toBeInTheDocument();

    const rate = byLabel('Rate limit (requests per minute)');
    await user.type(rate, '100');
    await user.tab();
    expect(screen.getByText('Rate limit must be at most 40 requests per minute')).toBeInTheDocument();
    expect(latest().jsonData).not.toHaveProperty('rateLimitPerMinute');

    await user.type(byLabel('Retention (hours)'), '0');
    await user.tab();
    expect(screen.getByText('Retention must be at least 1 hour')).toBeInTheDocument();

    await user.clear(poll);
    expect(latest().jsonData).not.toHaveProperty('pollIntervalSeconds');
  });

  it('hides host and credentials with the simulator on, and lets it poll fast', async () => {
    const { user, latest } = setup(settings({ jsonData: { pollIntervalSeconds: 5 } }));
    await openAdditional(user);
    expect(screen.getByText('Poll interval must be at least 30 seconds')).toBeInTheDocument();

    await user.click(byLabel('Simulator'));
    expect(latest().jsonData.simulate).toBe(true);
    expect(screen.queryByText(/Poll interval must/)).not.toBeInTheDocument();
    for (const label of ['Host', 'Client secret', 'Paste .edgerc section', '.edgerc path']) {
      expect(queryByLabel(label)).not.toBeInTheDocument();
    }
    expect(screen.getByText('The simulator needs no credentials')).toBeInTheDocument();
    await user.type(byLabel('Rate limit (requests per minute)'), '6000');
    expect(latest().jsonData.rateLimitPerMinute).toBe(6000);

    await user.click(byLabel('Simulator'));
    expect(latest().jsonData).not.toHaveProperty('simulate');
    expect(byLabel('Client secret')).toBeInTheDocument();
  });

  it('sets the default delivery network, account switch key and .edgerc file, trimmed', async () => {
    const { user, latest } = setup();
    const group = screen.getByRole('radiogroup', { name: 'Default delivery network' });
    await user.click(within(group).getByRole('radio', { name: 'Enhanced TLS' }));
    expect(latest().jsonData.delivery).toBe('ENHANCED_TLS');
    await user.click(within(group).getByRole('radio', { name: 'None' }));
    expect(latest().jsonData).not.toHaveProperty('delivery');

    await user.type(byLabel('Account switch key'), '1-5C0YLB:1-8BYUX');
    await user.type(byLabel('.edgerc path'), ' /etc/grafana/.edgerc  ');
    await user.type(byLabel('.edgerc section'), 'estats');
    await openAdditional(user);
    await user.type(byLabel('History file'), '/var/lib/grafana/estats.db');
    expect(latest().jsonData).toEqual({
      accountSwitchKey: '1-5C0YLB:1-8BYUX',
      edgercPath: '/etc/grafana/.edgerc',
      edgercSection: 'estats',
      historyPath: '/var/lib/grafana/estats.db',
    });
  });

  describe('shared history (high availability)', () => {
    const URL = 'postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full';

    it('shows the password and schema only while a database URL is entered, and says the history file is ignored', async () => {
      const { user, latest } = setup(settings({ jsonData: { historyPath: '/var/lib/grafana/estats.db' } }));
      await openAdditional(user);
      expect(screen.getByRole('region', { name: 'Shared history (high availability)' })).toBeInTheDocument();
      const database = byLabel('History database');
      expect(database).toHaveAttribute('placeholder', URL);
      expect(queryByLabel('Database password')).not.toBeInTheDocument();
      expect(queryByLabel('Database schema')).not.toBeInTheDocument();
      expect(screen.queryByText(/Ignored while a shared history database is set/)).not.toBeInTheDocument();

      await user.type(database, ` ${URL} `);
      expect(latest().jsonData).toEqual({ historyPath: '/var/lib/grafana/estats.db', historyDatabase: URL });
      expect(byLabel('Database password')).toBeInTheDocument();
      expect(byLabel('Database schema')).toHaveAttribute('placeholder', 'akamai_estats');
      expect(screen.getByText(/Ignored while a shared history database is set/)).toBeInTheDocument();

      await user.clear(database);
      expect(latest().jsonData).toEqual({ historyPath: '/var/lib/grafana/estats.db' });
      expect(queryByLabel('Database password')).not.toBeInTheDocument();
      expect(queryByLabel('Database schema')).not.toBeInTheDocument();
    });

    it('flags a password in the URL, points at the password field, and never emits it', async () => {
      const { user, changes } = setup();
      await openAdditional(user);
      await user.type(byLabel('History database'), 'postgres://grafana:hunter2@db.example.com/grafana');
      expect(screen.queryByRole('alert')).not.toBeInTheDocument();
      await user.tab();
      expect(screen.getByRole('alert')).toHaveTextContent(
        /Remove the password from the URL.*"Database password" below/
      );
      // The field the message points at is there, even though the URL is not saved.
      expect(byLabel('Database password')).toBeInTheDocument();
      expect(JSON.stringify(changes)).not.toContain('hunter2');
      for (const change of changes) {
        expect(change.jsonData).not.toHaveProperty('historyDatabase');
      }
    });

    it('flags an unsupported sslmode and a bad schema after the field is left, saving neither', async () => {
      const { user, latest } = setup(settings({ jsonData: { historyDatabase: URL, historyDatabaseSchema: 'estats' } }));
      await openAdditional(user);
      const database = byLabel('History database');
      expect(database).toHaveValue(URL);
      await user.clear(database);
      await user.type(database, 'postgres://grafana@db.example.com/grafana?sslmode=prefer');
      await user.tab();
      expect(screen.getByRole('alert')).toHaveTextContent('sslmode must be one of disable, require, verify-full');
      expect(latest().jsonData).not.toHaveProperty('historyDatabase');
      await user.clear(database);
      await user.type(database, 'mysql://grafana@db/grafana');
      expect(screen.getByRole('alert')).toHaveTextContent(/Start the URL with postgres:\/\/ or postgresql:\/\//);
      await user.clear(database);
      await user.type(database, 'postgresql://grafana@db/grafana?sslmode=require');
      expect(screen.queryByRole('alert')).not.toBeInTheDocument();
      expect(latest().jsonData.historyDatabase).toBe('postgresql://grafana@db/grafana?sslmode=require');

      const schema = byLabel('Database schema');
      expect(schema).toHaveValue('estats');
      await user.clear(schema);
      await user.type(schema, 'Estats-1');
      await user.tab();
      expect(screen.getByRole('alert')).toHaveTextContent(/Use lower-case letters, digits and _ \(at most 63/);
      expect(latest().jsonData).not.toHaveProperty('historyDatabaseSchema');
      await user.clear(schema);
      await user.type(schema, 'x'.repeat(64));
      expect(screen.getByRole('alert')).toHaveTextContent(/at most 63/);
      expect(latest().jsonData).not.toHaveProperty('historyDatabaseSchema');
      await user.clear(schema);
      await user.type(schema, ' estats_2 ');
      expect(screen.queryByRole('alert')).not.toBeInTheDocument();
      expect(latest().jsonData).toEqual({
        historyDatabase: 'postgresql://grafana@db/grafana?sslmode=require',
        historyDatabaseSchema: 'estats_2',
      });
    });

    it('keeps the database password in secureJsonData only', async () => {
      const { user, latest } = setup(settings({ jsonData: { historyDatabase: URL } }));
      await openAdditional(user);
      const password = byLabel('Database password');
      expect(password).toHaveAttribute('type', 'password');
      await user.type(password, 'db-pass-4');
      expect(latest().secureJsonData).toEqual({ historyDatabasePassword: 'db-pass-4' });
      expect(latest().jsonData).toEqual({ historyDatabase: URL });
      expect(JSON.stringify({ ...latest(), secureJsonData: undefined })).not.toContain('db-pass-4');
    });

    it('shows a configured database password and resets it', async () => {
      const { user, latest } = setup(
        settings({
          jsonData: { historyDatabase: URL },
          secureJsonFields: { clientSecret: true, historyDatabasePassword: true },
        })
      );
      await openAdditional(user);
      const password = byLabel('Database password');
      expect(password).toHaveValue('configured');
      expect(password).toBeDisabled();
      const resets = screen.getAllByRole('button', { name: 'Reset' });
      // Client secret's, then the database password's.
      expect(resets).toHaveLength(2);
      await user.click(resets[1]!);

      expect(latest().secureJsonFields).toEqual({ clientSecret: true, historyDatabasePassword: false });
      expect(latest().secureJsonData).toEqual({ historyDatabasePassword: '' });
      const input = byLabel('Database password');
      expect(input).toBeEnabled();
      expect(input).toHaveValue('');
      await user.type(input, 'new-db-pass');
      expect(latest().secureJsonData).toEqual({ historyDatabasePassword: 'new-db-pass' });
      expect(latest().secureJsonFields).toEqual({ clientSecret: true, historyDatabasePassword: false });
    });
  });
});
