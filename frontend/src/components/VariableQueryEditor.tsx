import type { QueryEditorProps, SelectableValue } from '@grafana/data';
import { Combobox, type ComboboxOption, InlineField, InlineFieldRow, RadioButtonGroup, Stack, Text } from '@grafana/ui';
import { useCallback, useEffect, useRef } from 'react';

import type { DataSource } from '../datasource';
import type { EStatsOptions, EStatsQuery, TargetType, VariableQuery } from '../types';
import { normalizeVariableQuery } from '../query';
import {
  dashboardVariables,
  describeTarget,
  isTargetVariable,
  targetChoices,
  useKnownTargets,
} from './useKnownTargets';

export type VariableEditorProps = QueryEditorProps<DataSource, EStatsQuery, EStatsOptions, VariableQuery>;

const KIND_OPTIONS: Array<SelectableValue<VariableQuery['kind']>> = [
  { label: 'Targets', value: 'targets' },
  { label: 'Status codes', value: 'statusCodes' },
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

  const targetOptions: Array<ComboboxOption<string>> = [
    ...known.targets.map((t) => ({ value: t.key, label: t.label || t.key, description: describeTarget(t) })),
    // Variables whose value is a CP code, URL or key, e.g. a "targets" variable of this data source.
    ...dashboardVariables()
      .filter((v) => isTargetVariable(v.value))
      .map((v) => ({ value: `$${v.name}`, label: `$${v.name}`, description: `Dashboard variable, now ${v.value}` })),
  ];
  // One stable loader reading the latest options: the Combobox calls it when opened and on each
  // keystroke, and a new function (or a remount) would drop the menu while targets load.
  const latest = useRef({ options: targetOptions });
  useEffect(() => {
    latest.current = { options: targetOptions };
  });
  const loadOptions = useCallback(
    async (input: string) => targetChoices(input, latest.current.options, 'Use this target'),
    []
  );

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField label="Values" labelWidth={LABEL_WIDTH} tooltip="What the variable lists.">
          <RadioButtonGroup<VariableQuery['kind']>
            aria-label="Values"
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
      {current.kind === 'targets' && (
        <InlineFieldRow>
          <InlineField
            label="Target type"
            labelWidth={LABEL_WIDTH}
            tooltip="List only CP codes or only URLs. Values are the CP code or URL, ready for the query editor's target field."
          >
            <RadioButtonGroup<TargetFilter>
              aria-label="Target type"
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
      )}
      {current.kind === 'targets' && (
        <Text variant="bodySmall" color="secondary">
          For one query over several targets, turn on Multi-value and Include All option below, with the custom all
          value * (every watched target): the query editor takes the values joined as a list.
        </Text>
      )}
      {current.kind === 'statusCodes' && (
        <InlineFieldRow>
          <InlineField
            label="Target"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-variable-target"
            // InlineField hands `loading` to its child, overriding the child's own.
            loading={known.loading}
            tooltip="A known target or a dashboard variable holding a CP code or URL; or type a CP code or URL and press Enter."
          >
            <Combobox<string>
              id="estats-variable-target"
              options={loadOptions}
              value={current.target ? { value: current.target, label: current.target } : null}
              onChange={(option) =>
                onChange({ refId: current.refId, kind: 'statusCodes', target: (option?.value ?? '').trim() })
              }
              isClearable
              placeholder="Choose or type a target"
              width="auto"
              minWidth={40}
              maxWidth={100}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {known.error && (
        <div role="status">
          <Text variant="bodySmall" color="warning">
            Known targets could not be loaded ({known.error}); type a value instead.
          </Text>
        </div>
      )}
    </Stack>
  );
}
