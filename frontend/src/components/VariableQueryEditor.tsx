import type { QueryEditorProps, SelectableValue } from '@grafana/data';
import { Combobox, type ComboboxOption, InlineField, InlineFieldRow, RadioButtonGroup, Stack } from '@grafana/ui';
import { useMemo } from 'react';

import type { DataSource } from '../datasource';
import type { EStatsOptions, EStatsQuery, TargetType, VariableQuery } from '../types';
import { normalizeVariableQuery } from '../query';
import { describeTarget, useKnownTargets } from './useKnownTargets';

export type VariableEditorProps = QueryEditorProps<DataSource, EStatsQuery, EStatsOptions, VariableQuery>;

const KIND_OPTIONS: Array<SelectableValue<VariableQuery['kind']>> = [
  { label: 'Targets', value: 'targets', description: 'CP codes and URLs the data source watches or has queried' },
  { label: 'Status codes', value: 'statusCodes', description: 'Status codes seen for one target' },
];

type TargetFilter = TargetType | 'all';
const TARGET_FILTER_OPTIONS: Array<SelectableValue<TargetFilter>> = [
  { label: 'All', value: 'all' },
  { label: 'CP codes', value: 'cpCode' },
  { label: 'URLs', value: 'url' },
];

const LABEL_WIDTH = 16;

export function VariableQueryEditor({ query, onChange, datasource }: VariableEditorProps) {
  const current = normalizeVariableQuery(query);
  const known = useKnownTargets(datasource);

  const targetOptions = useMemo(
    (): Array<ComboboxOption<string>> =>
      known.targets.map((t) => ({ value: t.key, label: t.label || t.key, description: describeTarget(t) })),
    [known.targets]
  );

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField label="Values" labelWidth={LABEL_WIDTH} tooltip="What the variable lists.">
          <RadioButtonGroup<VariableQuery['kind']>
            options={KIND_OPTIONS}
            value={current.kind}
            onChange={(kind) =>
              onChange(
                kind === 'statusCodes'
                  ? { refId: current.refId, kind, target: current.target ?? '' }
                  : { refId: current.refId, kind }
              )
            }
          />
        </InlineField>
      </InlineFieldRow>
      {current.kind === 'targets' ? (
        <InlineFieldRow>
          <InlineField
            label="Target type"
            labelWidth={LABEL_WIDTH}
            tooltip="List only CP codes or only URLs. Values are the CP code or URL, ready for the query editor's target field."
          >
            <RadioButtonGroup<TargetFilter>
              options={TARGET_FILTER_OPTIONS}
              value={current.targetType ?? 'all'}
              onChange={(filter) =>
                onChange(
                  filter === 'all'
                    ? { refId: current.refId, kind: 'targets' }
                    : { refId: current.refId, kind: 'targets', targetType: filter }
                )
              }
            />
          </InlineField>
        </InlineFieldRow>
      ) : (
        <InlineFieldRow>
          <InlineField
            label="Target"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-variable-target"
            tooltip="A known target, or a CP code, URL or variable such as $cpcode (type it and press Enter)."
          >
            <Combobox<string>
              id="estats-variable-target"
              options={targetOptions}
              value={current.target ? current.target : null}
              onChange={(option) =>
                onChange({ refId: current.refId, kind: 'statusCodes', target: (option?.value ?? '').trim() })
              }
              isClearable
              createCustomValue
              loading={known.loading}
              placeholder={known.error ? 'Known targets unavailable: type a value' : 'Choose a target'}
              width={48}
            />
          </InlineField>
        </InlineFieldRow>
      )}
    </Stack>
  );
}
