import { setTemplateSrv } from '@grafana/runtime';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';

import { DataSource } from '../datasource';
import { fakeTemplateSrv, instanceSettings } from '../test/fixtures';
import { fakeLayout } from '../test/layout';
import type { EStatsOptions, EStatsQuery } from '../types';
import { AnnotationQueryEditor } from './AnnotationQueryEditor';

fakeLayout();

beforeEach(() => {
  setTemplateSrv(fakeTemplateSrv({ cpcodes: ['1209788', '555'] }));
});

function setup(initial: EStatsQuery, jsonData: EStatsOptions = { watch: [{ cpCode: 1209788 }] }) {
  const datasource = new DataSource(instanceSettings(jsonData));
  jest.spyOn(datasource, 'getResource').mockResolvedValue({ targets: [] });
  const changes: EStatsQuery[] = [];
  function Harness() {
    const [query, setQuery] = useState(initial);
    return (
      <AnnotationQueryEditor
        datasource={datasource}
        query={query}
        onChange={(next) => {
          changes.push(next);
          setQuery(next);
        }}
        onRunQuery={jest.fn()}
      />
    );
  }
  const user = userEvent.setup({ delay: null });
  render(<Harness />);
  const latest = () => changes[changes.length - 1] ?? initial;
  return { user, latest, changes };
}

function radio(group: string, option: string) {
  return within(screen.getByRole('radiogroup', { name: group })).getByRole('radio', { name: option });
}

describe('AnnotationQueryEditor', () => {
  it('stores the default targets of a new annotation: every watched CP code', () => {
    const { latest, changes } = setup({ refId: 'Anno' });
    expect(changes).toHaveLength(1);
    expect(latest()).toEqual({ refId: 'Anno', queryType: 'events', targetType: 'cpCode', cpCode: '*', side: 'both' });
    expect(screen.getByLabelText('CP codes')).toHaveValue('*');
  });

  it('starts on every watched URL when only URLs are watched', () => {
    const { latest } = setup({ refId: 'Anno' }, { watch: [{ url: 'https://www.example.com/' }] });
    expect(latest()).toMatchObject({ targetType: 'url', url: '*' });
    expect(screen.getByLabelText('URLs')).toHaveValue('*');
  });

  it('edits targets, side, status filter and threshold, always as an events query', async () => {
    const { user, latest } = setup({ refId: 'Anno', queryType: 'events', cpCode: '*' });
    const targets = screen.getByLabelText('CP codes');
    await user.clear(targets);
    await user.type(targets, '1209788, $cpcodes{Enter}');
    expect(latest()).toMatchObject({ queryType: 'events', cpCode: '1209788, $cpcodes' });

    await user.click(radio('Side', 'Edge'));
    expect(latest().side).toBe('edge');

    await user.type(screen.getByLabelText('Status filter'), '5xx,404{Enter}');
    expect(latest().statusFilter).toBe('5xx,404');

    await user.type(screen.getByLabelText('Threshold (%)'), '2,5{Enter}');
    expect(latest()).toEqual({
      refId: 'Anno',
      queryType: 'events',
      cpCode: '1209788, $cpcodes',
      side: 'edge',
      statusFilter: '5xx,404',
      threshold: 2.5,
    });

    // Emptied: no threshold, failing polls only.
    await user.clear(screen.getByLabelText('Threshold (%)'));
    await user.tab();
    expect(latest()).not.toHaveProperty('threshold');
  });

  it('refuses a threshold outside the contract bound and keeps the last good one', async () => {
    const { user, latest } = setup({ refId: 'Anno', queryType: 'events', cpCode: '*', threshold: 2 });
    const threshold = screen.getByLabelText('Threshold (%)');
    expect(threshold).toHaveValue('2');
    for (const bad of ['0', '150', 'abc']) {
      await user.clear(threshold);
      await user.type(threshold, `${bad}{Enter}`);
      expect(screen.getByText('The threshold is a percentage above 0 and at most 100, e.g. 2')).toBeInTheDocument();
      expect(latest().threshold).toBe(2);
    }
  });

  it('takes URLs one a line and flags a bad one and an unknown variable', async () => {
    const { user, latest } = setup({ refId: 'Anno', queryType: 'events', cpCode: '*' });
    await user.click(radio('Target', 'URL'));
    expect(latest().targetType).toBe('url');
    const urls = screen.getByLabelText('URLs');
    await user.type(urls, 'https://a.example/{Enter}www.b.example');
    await user.tab();
    expect(latest().url).toBe('https://a.example/\nwww.b.example');
    expect(
      screen.getByText('"www.b.example" is not an absolute http(s) URL: start it with https://')
    ).toBeInTheDocument();

    await user.clear(urls);
    await user.type(urls, '$nope');
    await user.tab();
    expect(screen.getByText('Unknown dashboard variable $nope')).toBeInTheDocument();
  });

  it('does not offer a panel grouping, metric or live switch', () => {
    setup({ refId: 'Anno', queryType: 'events', cpCode: '*' });
    expect(screen.queryByRole('radiogroup', { name: 'Group by' })).not.toBeInTheDocument();
    expect(screen.queryByRole('radiogroup', { name: 'Metric' })).not.toBeInTheDocument();
    expect(screen.queryByRole('switch', { name: 'Live' })).not.toBeInTheDocument();
  });
});
