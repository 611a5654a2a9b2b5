import { css } from '@emotion/css';
import type { GrafanaTheme2, QueryEditorProps } from '@grafana/data';
import {
  Alert,
  Combobox,
  type ComboboxOption,
  InlineField,
  InlineFieldRow,
  InlineSwitch,
  Input,
  RadioButtonGroup,
  Stack,
  Text,
  useStyles2,
} from '@grafana/ui';
import { type KeyboardEvent, useCallback, useEffect, useRef, useState } from 'react';

import type { DataSource } from '../datasource';
import {
  ALL_WATCHED,
  controlsFor,
  DELIVERY_OPTIONS,
  GROUP_BY_OPTIONS,
  incompleteReason,
  metricOptions,
  namesSet,
  QUERY_TYPE_OPTIONS,
  SIDE_OPTIONS,
  statusFilterError,
  TARGET_TYPE_OPTIONS,
  targetItems,
  targetSubject,
  targetText,
  unknownVariables,
  withDefaults,
} from '../query';
import {
  type DeliveryChoice,
  type EStatsOptions,
  type EStatsQuery,
  type GroupBy,
  LIVE_QUERY_TYPES,
  type Metric,
  type QueryType,
  type Side,
  type TargetType,
} from '../types';
import { TargetsInput } from './TargetsInput';
import { dashboardVariables, describeTarget, fitsTargetType, targetChoices, useKnownTargets } from './useKnownTargets';

export type Props = QueryEditorProps<DataSource, EStatsQuery, EStatsOptions>;

const LABEL_WIDTH = 14;
// Radio options without descriptions: RadioButton shows a description as a tooltip over the next row.
const QUERY_TYPE_RADIO = QUERY_TYPE_OPTIONS.map(({ label, value }) => ({ label, value }));

export function QueryEditor({ query, onChange, onRunQuery, datasource }: Props) {
  const styles = useStyles2(getStyles);
  const q = withDefaults(query);
  const known = useKnownTargets(datasource);
  const controls = controlsFor(q.queryType);
  const [statusFilterDraft, setStatusFilterDraft] = useState(q.statusFilter);
  const [committedStatusFilter, setCommittedStatusFilter] = useState(q.statusFilter);

  // A query changed from outside (e.g. the query inspector or undo) replaces the draft.
  if (q.statusFilter !== committedStatusFilter) {
    setCommittedStatusFilter(q.statusFilter);
    setStatusFilterDraft(q.statusFilter);
  }

  const variables = dashboardVariables();
  const variableNames = variables.map((v) => v.name);

  /** Applies a change with grouping and metric fitted to it; runs the query only when it can run. */
  const change = (patch: Partial<EStatsQuery>) => {
    const next = { ...query, ...patch };
    // A live channel streams one target: the backend refuses live with a set.
    if (namesSet(next)) {
      delete next.live;
    }
    const fitted = withDefaults(next);
    const result: EStatsQuery = { ...next, groupBy: fitted.groupBy, metric: fitted.metric };
    onChange(result);
    const subject = targetText(fitted);
    if (
      incompleteReason(result) === undefined &&
      statusFilterError(result.statusFilter ?? '') === undefined &&
      unknownVariables(subject, variableNames).length === 0
    ) {
      onRunQuery();
    }
  };

  const knownOptions: Array<ComboboxOption<string>> = [
    {
      value: ALL_WATCHED,
      label: ALL_WATCHED,
      description: q.targetType === 'url' ? 'Every watched URL' : 'Every watched CP code',
    },
    ...known.targets
      .filter((t) => (t.target.url ? 'url' : 'cpCode') === q.targetType)
      .map((t) => ({ value: t.key, label: targetSubject(t.target), description: describeTarget(t) })),
    ...variables
      .filter((v) => fitsTargetType(v.value, q.targetType))
      .map((v) => ({ value: `$${v.name}`, label: `$${v.name}`, description: `Dashboard variable, now ${v.value}` })),
  ];
  // One stable loader reading the latest options: the Combobox calls it when opened and on each
  // keystroke, and a new function (or a remount) would drop the menu while targets load.
  const useTyped = q.targetType === 'url' ? 'Add this URL' : 'Use this CP code';
  const latest = useRef({ options: knownOptions, useTyped });
  useEffect(() => {
    latest.current = { options: knownOptions, useTyped };
  });
  const loadOptions = useCallback(
    async (input: string) => targetChoices(input, latest.current.options, latest.current.useTyped),
    []
  );

  const subject = targetText(q);
  const unknown = unknownVariables(subject, variableNames);
  const reason = incompleteReason(q);
  const targetError =
    subject.trim() === ''
      ? undefined
      : unknown.length > 0
        ? `Unknown dashboard variable ${unknown.map((n) => `$${n}`).join(', ')}`
        : reason;
  const filterError = statusFilterError(statusFilterDraft);
  const queryTypeDescription = QUERY_TYPE_OPTIONS.find((o) => o.value === q.queryType)?.description;

  const onTargetChange = (option: ComboboxOption<string> | null) => {
    const value = (option?.value ?? '').trim();
    const picked = known.targets.find((t) => t.key === value);
    if (picked) {
      const isUrl = Boolean(picked.target.url);
      change({
        targetType: isUrl ? 'url' : 'cpCode',
        ...(isUrl ? { url: picked.target.url } : { cpCode: String(picked.target.cpCode ?? '') }),
        delivery: picked.target.delivery ?? q.delivery,
      });
      return;
    }
    change(q.targetType === 'url' ? { url: value } : { cpCode: value });
  };

  /** A URL picked or typed in the "Add" box joins the list; `*` (or a pick over `*`) replaces it. */
  const onAddUrl = (option: ComboboxOption<string> | null) => {
    const value = (option?.value ?? '').trim();
    if (value === '') {
      return;
    }
    const picked = known.targets.find((t) => t.key === value);
    const url = picked?.target.url ?? value;
    const items = targetItems('url', q.url).filter((u) => u !== ALL_WATCHED);
    if (url === ALL_WATCHED || items.length === 0) {
      change({ url, ...(picked ? { delivery: picked.target.delivery ?? q.delivery } : {}) });
      return;
    }
    if (!items.includes(url)) {
      change({ url: [...items, url].join('\n') });
    }
  };

  const commitStatusFilter = () => {
    const value = statusFilterDraft.trim();
    if (value !== q.statusFilter) {
      change({ statusFilter: value });
    }
  };

  return (
    <Stack direction="column" gap={0}>
      <InlineFieldRow>
        <InlineField
          label="Query type"
          labelWidth={LABEL_WIDTH}
          tooltip="What the query returns. Distribution, summary and top IPs show the latest sample; time series reads the polling history."
        >
          <RadioButtonGroup<QueryType>
            aria-label="Query type"
            options={QUERY_TYPE_RADIO}
            value={q.queryType}
            onChange={(queryType) =>
              change({ queryType, live: LIVE_QUERY_TYPES.includes(queryType) ? query.live : undefined })
            }
          />
        </InlineField>
      </InlineFieldRow>
      {queryTypeDescription && (
        <div className={styles.description}>
          <Text variant="bodySmall" color="secondary">
            {queryTypeDescription}
          </Text>
        </div>
      )}
      <InlineFieldRow>
        <InlineField
          label="Target"
          labelWidth={LABEL_WIDTH}
          tooltip="Diagnose a CP code (content provider code) or a single URL."
        >
          <RadioButtonGroup<TargetType>
            aria-label="Target"
            options={TARGET_TYPE_OPTIONS}
            value={q.targetType}
            onChange={(targetType) => change({ targetType })}
          />
        </InlineField>
        {q.targetType === 'cpCode' && (
          <InlineField
            label="CP code"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-query-target"
            tooltip="Digits only. Pick a known target, * (every watched CP code) or a dashboard variable, or type CP codes separated by commas and press Enter."
            invalid={targetError !== undefined}
            error={targetError}
            // InlineField hands `loading` (and `invalid`) to its child, overriding the child's own.
            loading={known.loading}
          >
            <Combobox<string>
              id="estats-query-target"
              options={loadOptions}
              value={subject === '' ? null : { value: subject, label: subject }}
              onChange={onTargetChange}
              isClearable
              placeholder="1209788, 1209789 or *"
              width="auto"
              minWidth={32}
              maxWidth={100}
            />
          </InlineField>
        )}
      </InlineFieldRow>
      {q.targetType === 'cpCode' && (
        <div className={styles.description}>
          <Text variant="bodySmall" color="secondary">
            1209788, 1209789 or * for every watched CP code; a multi-value variable gives all its values.
          </Text>
        </div>
      )}
      {q.targetType === 'url' && (
        <InlineFieldRow>
          <InlineField
            label="URLs"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-query-target"
            tooltip="Absolute http(s) URLs, one a line (or separated by spaces), or * for every watched URL. Applied when you leave the field or press Ctrl+Enter."
            invalid={targetError !== undefined}
            error={targetError}
            grow
          >
            <TargetsInput
              id="estats-query-target"
              type="url"
              value={q.url}
              invalid={targetError !== undefined}
              onCommit={(url) => change({ url })}
            />
          </InlineField>
          <InlineField
            label="Add"
            labelWidth={8}
            htmlFor="estats-query-add-url"
            tooltip="Adds a known URL, a dashboard variable or * to the list."
            loading={known.loading}
          >
            <Combobox<string>
              id="estats-query-add-url"
              options={loadOptions}
              value={null}
              onChange={onAddUrl}
              placeholder="Known URL or variable"
              width={32}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {known.error && (
        <div className={styles.notice} role="status">
          <Text variant="bodySmall" color="warning">
            Known targets could not be loaded ({known.error}); type a value instead.
          </Text>
        </div>
      )}
      <InlineFieldRow>
        <InlineField
          label="Delivery"
          labelWidth={LABEL_WIDTH}
          tooltip="Delivery network of the target. Default uses the one set in the data source."
        >
          <RadioButtonGroup<DeliveryChoice>
            aria-label="Delivery"
            options={DELIVERY_OPTIONS}
            value={q.delivery}
            onChange={(delivery) => change({ delivery })}
          />
        </InlineField>
        <InlineField
          label="Side"
          labelWidth={LABEL_WIDTH}
          tooltip="Edge: what clients received. Origin: what your origin answered the edge. Both: one series each."
        >
          <RadioButtonGroup<Side>
            aria-label="Side"
            options={SIDE_OPTIONS}
            value={q.side}
            onChange={(side) => change({ side })}
          />
        </InlineField>
      </InlineFieldRow>
      {(controls.groupBy || controls.metric) && (
        <InlineFieldRow>
          {controls.groupBy && (
            <InlineField
              label="Group by"
              labelWidth={LABEL_WIDTH}
              tooltip="Status code (200, 404, ...), status class (2xx, 4xx, ...) or one total per side."
            >
              <RadioButtonGroup<GroupBy>
                aria-label="Group by"
                options={GROUP_BY_OPTIONS}
                value={q.groupBy}
                onChange={(groupBy) => change({ groupBy })}
              />
            </InlineField>
          )}
          {controls.metric && (
            <InlineField
              label="Metric"
              labelWidth={LABEL_WIDTH}
              tooltip={
                q.queryType === 'timeseries'
                  ? 'The value plotted. Codes and classes: percentage or hits. Totals: hits, errors or failure percentage.'
                  : 'The value an alert rule on this query evaluates; panels show every value.'
              }
            >
              <RadioButtonGroup<Metric>
                aria-label="Metric"
                options={metricOptions(q.queryType, q.groupBy)}
                value={q.metric}
                onChange={(metric) => change({ metric })}
              />
            </InlineField>
          )}
        </InlineFieldRow>
      )}
      {controls.statusFilter && (
        <InlineFieldRow>
          <InlineField
            label="Status filter"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-query-status-filter"
            tooltip="Optional: only these codes and classes, comma separated, e.g. 5xx,404. Variables allowed. Applied when you leave the field or press Enter."
            invalid={filterError !== undefined}
            error={filterError}
          >
            <Input
              id="estats-query-status-filter"
              value={statusFilterDraft}
              placeholder="all statuses"
              width={40}
              onChange={(e) => setStatusFilterDraft(e.currentTarget.value)}
              onBlur={commitStatusFilter}
              onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
                if (e.key === 'Enter') {
                  commitStatusFilter();
                }
              }}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {LIVE_QUERY_TYPES.includes(q.queryType) && !namesSet(q) && (
        <InlineFieldRow>
          <InlineField
            label="Live"
            labelWidth={LABEL_WIDTH}
            htmlFor="estats-query-live"
            tooltip={
              q.queryType === 'timeseries'
                ? 'Appends each new poll to the graph as soon as the plugin takes it, without refreshing the dashboard (Grafana Live).'
                : 'Shows each new poll as soon as the plugin takes it, without refreshing the dashboard (Grafana Live).'
            }
          >
            <InlineSwitch
              id="estats-query-live"
              value={q.live === true}
              onChange={(e) => change({ live: e.currentTarget.checked })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {reason !== undefined && subject.trim() === '' && (
        <Alert severity="info" title="Query incomplete" className={styles.hint}>
          {reason}
        </Alert>
      )}
    </Stack>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  description: css({
    marginBottom: theme.spacing(1),
  }),
  notice: css({
    marginBottom: theme.spacing(0.5),
  }),
  hint: css({
    marginTop: theme.spacing(1),
    marginBottom: 0,
  }),
});
