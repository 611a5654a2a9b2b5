import { setTemplateSrv } from '@grafana/runtime';
import { act, render, screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';

import { DataSource } from '../datasource';
import { fakeTemplateSrv, instanceSettings, KNOWN_TARGETS } from '../test/fixtures';
import { fakeLayout } from '../test/layout';
import type { EStatsQuery } from '../types';
import { QueryEditor } from './QueryEditor';

fakeLayout();

beforeEach(() => {
  setTemplateSrv(
    fakeTemplateSrv({
      cpcode: '1209788',
      target: ['555', '1209788'],
      status: '5xx',
      fleet: '*',
      page: 'https://a.example/',
    })
  );
});

function setup(initial: EStatsQuery, targets: typeof KNOWN_TARGETS | Error = KNOWN_TARGETS) {
  const datasource = new DataSource(instanceSettings());
  if (targets instanceof Error) {
    jest.spyOn(datasource, 'getResource').mockRejectedValue(targets);
  } else {
    jest.spyOn(datasource, 'getResource').mockResolvedValue({ targets });
  }
  const onRunQuery = jest.fn();
  const changes: EStatsQuery[] = [];
  function Harness() {
    const [query, setQuery] = useState(initial);
    return (
      <QueryEditor
        datasource={datasource}
        query={query}
        onChange={(next) => {
          changes.push(next);
          setQuery(next);
        }}
        onRunQuery={onRunQuery}
      />
    );
  }
  const user = userEvent.setup({ delay: null });
  render(<Harness />);
  const latest = () => changes[changes.length - 1] ?? initial;
  return { user, latest, changes, onRunQuery };
}

const complete: EStatsQuery = {
  refId: 'A',
  queryType: 'timeseries',
  targetType: 'cpCode',
  cpCode: '1209788',
  delivery: '',
  side: 'both',
  groupBy: 'code',
  metric: 'percentage',
  statusFilter: '',
};

function radio(group: string, option: string) {
  return within(screen.getByRole('radiogroup', { name: group })).getByRole('radio', { name: option });
}

describe('QueryEditor', () => {
  it('changes the query with each control and runs it', async () => {
    const { user, latest, onRunQuery } = setup(complete);
    await waitFor(() => expect(screen.getByRole('combobox', { name: 'CP code' })).toBeInTheDocument());

    await user.click(radio('Side', 'Edge'));
    expect(latest().side).toBe('edge');
    await user.click(radio('Delivery', 'Enhanced TLS'));
    expect(latest().delivery).toBe('ENHANCED_TLS');
    await user.click(radio('Group by', 'Status class'));
    expect(latest().groupBy).toBe('class');
    await user.click(radio('Metric', 'Hits'));
    expect(latest().metric).toBe('hits');
    await user.click(radio('Query type', 'Distribution'));
    expect(latest().queryType).toBe('distribution');

    expect(onRunQuery).toHaveBeenCalledTimes(5);
    expect(latest()).toEqual({
      ...complete,
      side: 'edge',
      delivery: 'ENHANCED_TLS',
      groupBy: 'class',
      metric: 'hits',
      queryType: 'distribution',
    });
  });

  it('labels every control', async () => {
    setup(complete);
    for (const group of ['Query type', 'Target', 'Delivery', 'Side', 'Group by', 'Metric']) {
      expect(screen.getByRole('radiogroup', { name: group })).toBeInTheDocument();
    }
    expect(screen.getByRole('combobox', { name: 'CP code' })).toBeInTheDocument();
    expect(screen.getByLabelText('Status filter')).toBeInTheDocument();
    await waitFor(() => expect(screen.getByRole('combobox', { name: 'CP code' })).toBeEnabled());
  });

  it('offers the metrics of the grouping, with the backend default, and replaces one that no longer fits', async () => {
    const { user, latest } = setup(complete);
    const metricCount = () => within(screen.getByRole('radiogroup', { name: 'Metric' })).getAllByRole('radio').length;

    expect(metricCount()).toBe(2);
    expect(radio('Metric', 'Percentage')).toBeChecked();

    await user.click(radio('Group by', 'Total'));
    expect(latest()).toMatchObject({ groupBy: 'total', metric: 'failurePercentage' });
    expect(metricCount()).toBe(3);
    expect(radio('Metric', 'Errors')).toBeInTheDocument();
    expect(radio('Metric', 'Hits')).toBeInTheDocument();
    expect(screen.queryByRole('radio', { name: 'Percentage' })).not.toBeInTheDocument();

    await user.click(radio('Metric', 'Errors'));
    expect(latest().metric).toBe('errors');
    await user.click(radio('Group by', 'Status code'));
    expect(latest()).toMatchObject({ groupBy: 'code', metric: 'percentage' });
  });

  it('shows the metric wherever it applies and resets it when it stops fitting', async () => {
    const { user, latest } = setup({ ...complete, groupBy: 'total', metric: 'failurePercentage' });
    // A distribution's total has hits only: the backend's alert path refuses failurePercentage there.
    await user.click(radio('Query type', 'Distribution'));
    expect(latest()).toMatchObject({ queryType: 'distribution', groupBy: 'total', metric: 'hits' });
    expect(radio('Metric', 'Hits')).toBeChecked();

    await user.click(radio('Group by', 'Status class'));
    expect(latest()).toMatchObject({ groupBy: 'class', metric: 'hits' });
    await user.click(radio('Metric', 'Percentage'));

    // A summary is per side: the metric an alert evaluates is one of the totals.
    await user.click(radio('Query type', 'Summary'));
    expect(latest()).toMatchObject({ queryType: 'summary', groupBy: 'total', metric: 'failurePercentage' });
    await user.click(radio('Metric', 'Hits'));
    // The README's "traffic collapsed" alert query.
    expect(latest()).toMatchObject({ queryType: 'summary', cpCode: '1209788', metric: 'hits' });

    await user.click(radio('Query type', 'Top IPs'));
    expect(screen.queryByRole('radiogroup', { name: 'Metric' })).not.toBeInTheDocument();
  });

  it('applies the status filter on blur or Enter, not on every keystroke', async () => {
    const { user, latest, changes, onRunQuery } = setup(complete);
    const input = screen.getByLabelText('Status filter');
    await user.type(input, '5xx,404');
    expect(changes).toHaveLength(0);
    expect(onRunQuery).not.toHaveBeenCalled();

    await user.tab();
    expect(changes).toHaveLength(1);
    expect(latest().statusFilter).toBe('5xx,404');
    expect(onRunQuery).toHaveBeenCalledTimes(1);

    await user.clear(input);
    await user.type(input, '503{Enter}');
    expect(latest().statusFilter).toBe('503');
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('does not run a query with a bad status filter and says why', async () => {
    const { user, latest, onRunQuery } = setup(complete);
    await user.type(screen.getByLabelText('Status filter'), '5xx,abc{Enter}');
    expect(screen.getByText('"abc" is not a status code (e.g. 404) or class (e.g. 5xx)')).toBeInTheDocument();
    expect(latest().statusFilter).toBe('5xx,abc');
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('hints at an incomplete query and does not run it', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A' });
    expect(screen.getByText('Query incomplete')).toBeInTheDocument();
    expect(
      screen.getByText('Enter CP codes (e.g. 1209788, 1209789, or * for every watched CP code) or pick a known target')
    ).toBeInTheDocument();

    await user.click(radio('Side', 'Origin'));
    expect(latest().side).toBe('origin');
    expect(onRunQuery).not.toHaveBeenCalled();

    await user.click(radio('Target', 'URL'));
    expect(latest().targetType).toBe('url');
    expect(
      screen.getByText(
        'Enter the URLs to diagnose, e.g. https://www.example.com/, one a line, or * for every watched URL'
      )
    ).toBeInTheDocument();
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('picks a known target from the dropdown, with its delivery', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    const option = await screen.findByRole('option', { name: /1209788.*ENHANCED_TLS/ });
    // URL targets are not offered for a CP code.
    expect(screen.queryByRole('option', { name: /example\.com/ })).not.toBeInTheDocument();
    await user.click(option);

    expect(latest()).toMatchObject({ targetType: 'cpCode', cpCode: '1209788', delivery: 'ENHANCED_TLS' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    expect(screen.queryByText('Query incomplete')).not.toBeInTheDocument();
  });

  it('takes a typed CP code or a dashboard variable', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.type(input, '424242');
    await screen.findByText('Use this CP code');
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('424242');
    expect(onRunQuery).toHaveBeenCalledTimes(1);

    await user.click(input);
    await user.click(await screen.findByRole('option', { name: /\$cpcode/ }));
    expect(latest().cpCode).toBe('$cpcode');
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('picks the matching variable for a typed prefix, and offers only variables that hold a CP code', async () => {
    const { user, latest } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    expect(await screen.findByRole('option', { name: /\$target/ })).toBeInTheDocument();
    expect(screen.queryByRole('option', { name: /\$status/ })).not.toBeInTheDocument();
    await user.type(input, '$tar');
    // The typed text comes last, so Enter takes the variable it starts.
    await waitFor(() =>
      expect(screen.getAllByRole('option').map((o) => o.textContent)).toEqual([
        '$targetDashboard variable, now 555',
        '$tarUse this CP code',
      ])
    );
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('$target');
  });

  it('flags an unknown variable and does not run the query', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.type(input, '$nope');
    await screen.findByText('Use this CP code');
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('$nope');
    expect(screen.getByText('Unknown dashboard variable $nope')).toBeInTheDocument();
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('says why known targets are missing', async () => {
    setup({ refId: 'A' }, Object.assign(new Error('x'), { data: { message: 'plugin unavailable' } }));
    expect(await screen.findByText(/Known targets could not be loaded \(plugin unavailable\)/)).toBeInTheDocument();
  });

  it('flags a typed CP code that is not digits and does not run it', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.type(input, '12ab');
    await screen.findByText('Use this CP code');
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('12ab');
    expect(onRunQuery).not.toHaveBeenCalled();
    // Said once, at the field: no second "Query incomplete" box repeating it.
    expect(screen.getAllByText('CP code "12ab" must contain digits only')).toHaveLength(1);
    expect(screen.queryByText('Query incomplete')).not.toBeInTheDocument();
  });

  it('turns live updates on and off for a time series', async () => {
    const { user, latest, onRunQuery } = setup(complete);
    const live = screen.getByRole('switch', { name: 'Live' });
    expect(live).not.toBeChecked();
    await user.click(live);
    expect(latest().live).toBe(true);
    expect(onRunQuery).toHaveBeenCalledTimes(1);
    expect(screen.getByRole('switch', { name: 'Live' })).toBeChecked();
    await user.click(screen.getByRole('switch', { name: 'Live' }));
    expect(latest().live).toBe(false);
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('explains live updates in a tooltip', async () => {
    setup(complete);
    const icon = screen
      .getAllByText('Live')
      .map((el) => el.querySelector('svg'))
      .find((el) => el !== null);
    expect(icon).toBeTruthy();
    act(() => (icon as SVGElement).focus());
    const tooltip = await screen.findByRole('tooltip', {}, { timeout: 3000 });
    expect(tooltip).toHaveTextContent(/Appends each new poll .* without refreshing the dashboard/);
  });

  it('offers live updates only where they stream, and drops them for top IPs', async () => {
    const { user, latest } = setup({ ...complete, live: true });
    expect(screen.getByRole('switch', { name: 'Live' })).toBeChecked();
    await user.click(radio('Query type', 'Distribution'));
    expect(latest()).toMatchObject({ queryType: 'distribution', live: true });
    await user.click(radio('Query type', 'Summary'));
    expect(latest()).toMatchObject({ queryType: 'summary', live: true });
    expect(screen.getByRole('switch', { name: 'Live' })).toBeChecked();
    await user.click(radio('Query type', 'Top IPs'));
    expect(latest().queryType).toBe('topIps');
    expect(latest().live).toBeUndefined();
    expect(screen.queryByRole('switch', { name: 'Live' })).not.toBeInTheDocument();
  });

  it('adds known URL targets to the list, one a line', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'url' });
    const add = screen.getByRole('combobox', { name: 'Add' });
    await user.click(add);
    await user.click(await screen.findByRole('option', { name: /https:\/\/www\.example\.com\// }));
    expect(latest()).toMatchObject({ targetType: 'url', url: 'https://www.example.com/' });
    expect(onRunQuery).toHaveBeenCalledTimes(1);

    await user.click(add);
    await user.type(add, 'https://b.example/p?q=1,2');
    await screen.findByText('Add this URL');
    await user.keyboard('{Enter}');
    expect(latest().url).toBe('https://www.example.com/\nhttps://b.example/p?q=1,2');
    expect(screen.getByLabelText('URLs')).toHaveValue('https://www.example.com/\nhttps://b.example/p?q=1,2');

    // * replaces the list: it already names every watched URL.
    await user.click(add);
    await user.click(await screen.findByRole('option', { name: /Every watched URL/ }));
    expect(latest().url).toBe('*');
  });

  it('takes several URLs typed one a line, applied when the field is left', async () => {
    const { user, latest, changes, onRunQuery } = setup({ refId: 'A', targetType: 'url' });
    const urls = screen.getByLabelText('URLs');
    await user.type(urls, 'https://a.example/{Enter}https://b.example/');
    expect(changes).toHaveLength(0);
    await user.tab();
    expect(latest().url).toBe('https://a.example/\nhttps://b.example/');
    expect(onRunQuery).toHaveBeenCalledTimes(1);

    await user.type(urls, ' www.c.example');
    await user.tab();
    expect(
      screen.getByText('"www.c.example" is not an absolute http(s) URL: start it with https://')
    ).toBeInTheDocument();
    expect(onRunQuery).toHaveBeenCalledTimes(1);
  });

  it('takes a CP code list or * and explains both', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    expect(screen.getByText(/1209788, 1209789 or \* for every watched CP code/)).toBeInTheDocument();
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.type(input, '1209788, 1209789');
    await screen.findByText('Use this CP code');
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('1209788, 1209789');
    expect(onRunQuery).toHaveBeenCalledTimes(1);

    await user.click(input);
    await user.click(await screen.findByRole('option', { name: /Every watched CP code/ }));
    expect(latest().cpCode).toBe('*');
    expect(onRunQuery).toHaveBeenCalledTimes(2);
  });

  it('flags a list mixing * with CP codes, or one over the bound, and does not run it', async () => {
    const { user, latest, onRunQuery } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.type(input, '*, 1209788');
    await screen.findByText('Use this CP code');
    await user.keyboard('{Enter}');
    expect(latest().cpCode).toBe('*, 1209788');
    expect(
      screen.getByText('* stands for every watched CP code: remove the other CP codes, or the *')
    ).toBeInTheDocument();
    expect(onRunQuery).not.toHaveBeenCalled();
  });

  it('drops live updates when the query names a set: a live channel streams one target', async () => {
    const { user, latest } = setup({ ...complete, live: true });
    expect(screen.getByRole('switch', { name: 'Live' })).toBeChecked();
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    await user.click(await screen.findByRole('option', { name: /Every watched CP code/ }));
    expect(latest().cpCode).toBe('*');
    expect(latest()).not.toHaveProperty('live');
    expect(screen.queryByRole('switch', { name: 'Live' })).not.toBeInTheDocument();
  });

  it('offers a variable whose value is * (an All with the custom all value *) for both target types', async () => {
    const { user, latest } = setup({ refId: 'A', targetType: 'cpCode' });
    const input = screen.getByRole('combobox', { name: 'CP code' });
    await user.click(input);
    expect(await screen.findByRole('option', { name: /\$fleet/ })).toBeInTheDocument();
    expect(screen.queryByRole('option', { name: /\$page/ })).not.toBeInTheDocument();
    await user.click(screen.getByRole('option', { name: /\$fleet/ }));
    expect(latest().cpCode).toBe('$fleet');
  });

  it('does not offer the annotations events as a panel query type', () => {
    setup(complete);
    const types = within(screen.getByRole('radiogroup', { name: 'Query type' }))
      .getAllByRole('radio')
      .map((r) => r.getAttribute('value') ?? r.closest('label')?.textContent);
    expect(types).toHaveLength(4);
    expect(screen.queryByRole('radio', { name: 'Events' })).not.toBeInTheDocument();
  });
});
