import { setTemplateSrv } from '@grafana/runtime';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { useState } from 'react';

import { DataSource } from '../datasource';
import { fakeTemplateSrv, instanceSettings, KNOWN_TARGETS } from '../test/fixtures';
import { fakeLayout } from '../test/layout';
import type { VariableQuery } from '../types';
import { VariableQueryEditor } from './VariableQueryEditor';

fakeLayout();

beforeEach(() => {
  setTemplateSrv(fakeTemplateSrv({ cpcode: '1209788', range: '1h' }));
});

function setup(initial: VariableQuery) {
  const datasource = new DataSource(instanceSettings());
  jest.spyOn(datasource, 'getResource').mockResolvedValue({ targets: KNOWN_TARGETS });
  const changes: VariableQuery[] = [];
  function Harness() {
    const [query, setQuery] = useState(initial);
    return (
      <VariableQueryEditor
        datasource={datasource}
        query={query}
        onChange={(next) => {
          changes.push(next);
          setQuery(next);
        }}
        onRunQuery={() => {}}
      />
    );
  }
  const user = userEvent.setup({ delay: null });
  render(<Harness />);
  return { user, latest: () => changes[changes.length - 1] ?? initial };
}

function radio(group: string, option: string) {
  return within(screen.getByRole('radiogroup', { name: group })).getByRole('radio', { name: option });
}

describe('VariableQueryEditor', () => {
  it('lists targets, optionally of one type', async () => {
    const { user, latest } = setup({ refId: 'v', kind: 'targets' });
    expect(radio('Values', 'Targets')).toBeChecked();
    expect(radio('Target type', 'All')).toBeChecked();
    await user.click(radio('Target type', 'URLs'));
    expect(latest()).toEqual({ refId: 'v', kind: 'targets', targetType: 'url' });
    await user.click(radio('Target type', 'All'));
    expect(latest()).toEqual({ refId: 'v', kind: 'targets' });
  });

  it('says how one query covers several targets: multi-value, and All as *', async () => {
    const { user } = setup({ refId: 'v', kind: 'targets' });
    expect(screen.getByText(/Multi-value and Include All option .* custom all value \*/)).toBeInTheDocument();
    await user.click(radio('Values', 'Status codes'));
    expect(screen.queryByText(/Multi-value and Include All/)).not.toBeInTheDocument();
  });

  it('lists the status codes of a picked target', async () => {
    const { user, latest } = setup({ refId: 'v', kind: 'targets' });
    await user.click(radio('Values', 'Status codes'));
    expect(latest()).toEqual({ refId: 'v', kind: 'statusCodes', target: '' });

    const input = screen.getByRole('combobox', { name: 'Target' });
    await user.click(input);
    await user.click(await screen.findByRole('option', { name: /cpCode 555/ }));
    expect(latest()).toEqual({ refId: 'v', kind: 'statusCodes', target: 'cp:555/ANY' });
  });

  it('offers dashboard variables that hold a target, and takes a typed CP code', async () => {
    const { user, latest } = setup({ refId: 'v', kind: 'statusCodes', target: '' });
    const input = screen.getByRole('combobox', { name: 'Target' });
    await user.click(input);
    await user.click(await screen.findByRole('option', { name: /\$cpcode/ }));
    expect(latest()).toEqual({ refId: 'v', kind: 'statusCodes', target: '$cpcode' });
    expect(screen.queryByRole('option', { name: /\$range/ })).not.toBeInTheDocument();
  });

  it('takes a typed CP code as the target', async () => {
    const { user, latest } = setup({ refId: 'v', kind: 'statusCodes', target: '' });
    const input = screen.getByRole('combobox', { name: 'Target' });
    await user.click(input);
    await user.type(input, '424242');
    await screen.findByText('Use this target');
    await user.keyboard('{Enter}');
    expect(latest()).toEqual({ refId: 'v', kind: 'statusCodes', target: '424242' });
  });

  it('is what the data source offers for query variables', () => {
    const datasource = new DataSource(instanceSettings());
    const variables = datasource.variables as { editor: unknown } | undefined;
    expect(variables?.editor).toBe(VariableQueryEditor);
  });
});
