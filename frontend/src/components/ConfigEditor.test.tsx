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

describe('ConfigEditor', () => {
  it('labels every field', () => {
    setup();
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
      'Section',
      'Poll interval (s)',
      'Request timeout (s)',
      'Rate limit (per minute)',
      'Retention (h)',
      'History file',
    ]) {
      expect(screen.getByLabelText(label)).toBeInTheDocument();
    }
    expect(screen.getByRole('radiogroup', { name: 'Default delivery network' })).toBeInTheDocument();
  });

  it('keeps secrets in secureJsonData only', async () => {
    const { user, latest } = setup();
    await user.type(screen.getByLabelText('Client token'), 'token-1');
    await user.type(screen.getByLabelText('Client secret'), 'secret-2');
    await user.type(screen.getByLabelText('Access token'), 'access-3');
    await user.type(screen.getByLabelText('Host'), 'akab-x.luna.akamaiapis.net');

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
    const secret = screen.getByLabelText('Client secret');
    expect(secret).toHaveValue('configured');
    expect(secret).toBeDisabled();

    const resets = screen.getAllByRole('button', { name: 'Reset' });
    expect(resets).toHaveLength(3);
    await user.click(resets[1]!);

    expect(latest().secureJsonFields).toEqual({ clientToken: true, clientSecret: false, accessToken: true });
    expect(latest().secureJsonData).toEqual({ clientSecret: '' });
    const input = screen.getByLabelText('Client secret');
    expect(input).toBeEnabled();
    expect(input).toHaveValue('');
    await user.type(input, 'new-secret');
    expect(latest().secureJsonData).toEqual({ clientSecret: 'new-secret' });
  });

  it('fills host and secrets from a pasted .edgerc section and reports typos', async () => {
    const { user, latest } = setup(
      settings({ secureJsonFields: { clientToken: true, clientSecret: true, accessToken: true } })
    );
    const box = screen.getByLabelText('Paste .edgerc section');
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
    // The pasted secrets do not stay in the form.
    expect(screen.getByLabelText('Paste .edgerc section')).toHaveValue('');
    expect(screen.getByLabelText('Host')).toHaveValue('akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net');
  });

  it('fills in nothing and lists the problems when a key is misspelt', async () => {
    const { user, changes } = setup();
    await user.click(screen.getByLabelText('Paste .edgerc section'));
    await user.paste(EDGERC.replace('access_token', 'acess_token'));
    await user.click(screen.getByRole('button', { name: 'Fill in host and secrets' }));

    expect(changes).toHaveLength(0);
    const problems = screen.getByRole('list', { name: '.edgerc problems' });
    expect(within(problems).getByText('Line 4: unknown key "acess_token": did you mean "access_token"?')).toBeVisible();
    expect(within(problems).getByText('"access_token" is missing from [default]')).toBeVisible();
  });

  it('edits the watch list', async () => {
    const { user, latest } = setup(settings({ jsonData: { watch: [{ cpCode: 1209788, delivery: 'STANDARD_TLS' }] } }));

    await user.click(screen.getByRole('button', { name: 'Add CP code' }));
    await user.type(screen.getByLabelText('Watched target 2 CP code'), '555');
    await user.click(screen.getByRole('button', { name: 'Add URL' }));
    await user.type(screen.getByLabelText('Watched target 3 URL'), 'https://www.example.com/');
    const row3 = screen.getByRole('group', { name: 'Watched target 3' });
    const delivery = within(row3).getByRole('radiogroup', { name: 'Delivery' });
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

    const row1 = screen.getByRole('group', { name: 'Watched target 1' });
    const first = within(row1).getByRole('radiogroup', { name: 'Type' });
    await user.click(within(first).getByRole('radio', { name: 'URL' }));
    expect(latest().jsonData.watch?.[0]).toEqual({ url: '' });
    expect(screen.getByText('Enter a URL, or remove this row')).toBeInTheDocument();

    await user.click(screen.getByRole('button', { name: 'Remove watched target 1' }));
    await user.click(screen.getByRole('button', { name: 'Remove watched target 1' }));
    expect(latest().jsonData.watch).toBeUndefined();
  });

  it('flags non-numeric CP codes and duplicates in the watch list', async () => {
    const { user } = setup(settings({ jsonData: { watch: [{ cpCode: 555 }] } }));
    await user.click(screen.getByRole('button', { name: 'Add CP code' }));
    await user.type(screen.getByLabelText('Watched target 2 CP code'), '55x');
    expect(screen.getByText('CP code "55x" must contain digits only, e.g. 1209788')).toBeInTheDocument();
    await user.clear(screen.getByLabelText('Watched target 2 CP code'));
    await user.type(screen.getByLabelText('Watched target 2 CP code'), '555');
    expect(screen.getByText('Same target as row 1')).toBeInTheDocument();
  });

  it('shows validation messages for bad values', async () => {
    const { user, latest } = setup();
    await user.type(screen.getByLabelText('Host'), 'https://akab-x.luna.akamaiapis.net');
    expect(screen.getByText(/Enter the host without a scheme/)).toBeInTheDocument();

    await user.type(screen.getByLabelText('Poll interval (s)'), '10');
    expect(latest().jsonData.pollIntervalSeconds).toBe(10);
    expect(screen.getByText('Poll interval must be at least 30 seconds')).toBeInTheDocument();

    await user.type(screen.getByLabelText('Rate limit (per minute)'), '100');
    expect(screen.getByText('Rate limit must be at most 40 requests per minute')).toBeInTheDocument();

    await user.type(screen.getByLabelText('Retention (h)'), '9000');
    expect(screen.getByText('Retention must be at most 8760 hours')).toBeInTheDocument();

    await user.type(screen.getByLabelText('Request timeout (s)'), '301');
    expect(screen.getByText('Request timeout must be at most 300 seconds')).toBeInTheDocument();

    await user.clear(screen.getByLabelText('Poll interval (s)'));
    expect(latest().jsonData).not.toHaveProperty('pollIntervalSeconds');
    expect(screen.queryByText(/Poll interval must/)).not.toBeInTheDocument();
  });

  it('lets the simulator poll fast and explains it', async () => {
    const { user, latest } = setup(settings({ jsonData: { pollIntervalSeconds: 5 } }));
    expect(screen.getByText('Poll interval must be at least 30 seconds')).toBeInTheDocument();
    expect(screen.getByText(/generates realistic eStats samples inside the plugin/)).toBeInTheDocument();

    await user.click(screen.getByLabelText('Simulator'));
    expect(latest().jsonData.simulate).toBe(true);
    expect(screen.queryByText(/Poll interval must/)).not.toBeInTheDocument();

    await user.click(screen.getByLabelText('Simulator'));
    expect(latest().jsonData).not.toHaveProperty('simulate');
  });

  it('sets the default delivery network, account switch key and .edgerc file', async () => {
    const { user, latest } = setup();
    const group = screen.getByRole('radiogroup', { name: 'Default delivery network' });
    await user.click(within(group).getByRole('radio', { name: 'Enhanced TLS' }));
    expect(latest().jsonData.delivery).toBe('ENHANCED_TLS');
    await user.click(within(group).getByRole('radio', { name: 'None' }));
    expect(latest().jsonData).not.toHaveProperty('delivery');

    await user.type(screen.getByLabelText('Account switch key'), '1-5C0YLB:1-8BYUX');
    await user.type(screen.getByLabelText('.edgerc path'), '/etc/grafana/.edgerc');
    await user.type(screen.getByLabelText('Section'), 'estats');
    await user.type(screen.getByLabelText('History file'), '/var/lib/grafana/estats.db');
    expect(latest().jsonData).toEqual({
      accountSwitchKey: '1-5C0YLB:1-8BYUX',
      edgercPath: '/etc/grafana/.edgerc',
      edgercSection: 'estats',
      historyPath: '/var/lib/grafana/estats.db',
    });
  });
});
