import { css } from '@emotion/css';
import type { GrafanaTheme2, QueryEditorProps } from '@grafana/data';
import { getTemplateSrv } from '@grafana/runtime';
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
import { type KeyboardEvent, useMemo, useState } from 'react';

import type { DataSource } from '../datasource';
import {
  controlsFor,
  DELIVERY_OPTIONS,
  GROUP_BY_OPTIONS,
  incompleteReason,
  metricFor,
  metricOptions,
  QUERY_TYPE_OPTIONS,
  SIDE_OPTIONS,
  statusFilterError,
  TARGET_TYPE_OPTIONS,
  targetSubject,
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
import { describeTarget, useKnownTargets } from './useKnownTargets';

export type Props = QueryEditorProps<DataSource, EStatsQuery, EStatsOptions>;

const LABEL_WIDTH = 14;

/** Dashboard variables offered in the target dropdown, so `$cpcode` needs no typing. */
function templateVariableNames(): string[] {
  try {
    return getTemplateSrv()
      .getVariables()
      .map((v) => `$${v.name}`);
  } catch {
    // No template service outside a dashboard (e.g. in alerting previews on old versions).
    return [];
  }
}

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

  /** Applies a complete change and runs the query only when it can run. */
  const change = (next: EStatsQuery) => {
    onChange(next);
    if (incompleteReason(next) === undefined && statusFilterError(next.statusFilter ?? '') === undefined) {
      onRunQuery();
    }
  };

  const targetOptions = useMemo((): Array<ComboboxOption<string>> => {
    const fromBackend = known.targets
      .filter((t) => (t.target.url ? 'url' : 'cpCode') === q.targetType)
      .map((t) => ({ value: t.key, label: t.label || targetSubject(t.target), description: describeTarget(t) }));
    const variables = templateVariableNames().map((name) => ({
      value: name,
      label: name,
      description: 'Dashboard variable',
    }));
    return [...fromBackend, ...variables];
  }, [known.targets, q.targetType]);

  const subject = q.targetType === 'url' ? q.url : String(q.cpCode);
  const reason = incompleteReason(q);
  const filterError = statusFilterError(statusFilterDraft);
  const queryTypeDescription = QUERY_TYPE_OPTIONS.find((o) => o.value === q.queryType)?.description;

  const onTargetChange = (option: ComboboxOption<string> | null) => {
    const value = (option?.value ?? '').trim();
    const picked = known.targets.find((t) => t.key === value);
    if (picked) {
      const isUrl = Boolean(picked.target.url);
      change({
        ...query,
        targetType: isUrl ? 'url' : 'cpCode',
        ...(isUrl ? { url: picked.target.url } : { cpCode: String(picked.target.cpCode ?? '') }),
        delivery: picked.target.delivery ?? q.delivery,
      });
      return;
    }
    change(q.targetType === 'url' ? { ...query, url: value } : { ...query, cpCode: value });
  };

  const commitStatusFilter = () => {
    const value = statusFilterDraft.trim();
    if (value !== q.statusFilter) {
      change({ ...query, statusFilter: value });
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
            options={QUERY_TYPE_OPTIONS}
            value={q.queryType}
            onChange={(queryType) =>
              change({ ...query, queryType, live: LIVE_QUERY_TYPES.includes(queryType) ? query.live : undefined })
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
            options={TARGET_TYPE_OPTIONS}
            value={q.targetType}
            onChange={(targetType) => change({ ...query, targetType })}
          />
        </InlineField>
        <InlineField
          label={q.targetType === 'url' ? 'URL' : 'CP code'}
          labelWidth={LABEL_WIDTH}
          grow
          htmlFor="estats-query-target"
          tooltip={
            q.targetType === 'url'
              ? 'An absolute http(s) URL. Pick a known target, or type a URL or a dashboard variable such as $url and press Enter.'
              : 'Digits only. Pick a known target, or type a CP code or a dashboard variable such as $cpcode and press Enter.'
          }
          invalid={subject !== '' && reason !== undefined}
          error={subject !== '' ? reason : undefined}
        >
          <Combobox<string>
            id="estats-query-target"
            options={targetOptions}
            value={subject === '' ? null : { value: subject, label: subject }}
            onChange={onTargetChange}
            createCustomValue
            isClearable
            loading={known.loading}
            placeholder={
              known.error
                ? 'Known targets unavailable: type a value'
                : q.targetType === 'url'
                  ? 'https://www.example.com/'
                  : '1209788'
            }
            width={40}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label="Delivery"
          labelWidth={LABEL_WIDTH}
          tooltip="Delivery network of the target. Default uses the one set in the data source."
        >
          <RadioButtonGroup<DeliveryChoice>
            options={DELIVERY_OPTIONS}
            value={q.delivery}
            onChange={(delivery) => change({ ...query, delivery })}
          />
        </InlineField>
        <InlineField
          label="Side"
          labelWidth={LABEL_WIDTH}
          tooltip="Edge: what clients received. Origin: what your origin answered the edge. Both: one series each."
        >
          <RadioButtonGroup<Side>
            options={SIDE_OPTIONS}
            value={q.side}
            onChange={(side) => change({ ...query, side })}
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
                options={GROUP_BY_OPTIONS}
                value={q.groupBy}
                onChange={(groupBy) => change({ ...query, groupBy, metric: metricFor(groupBy, q.metric) })}
              />
            </InlineField>
          )}
          {controls.metric && (
            <InlineField
              label="Metric"
              labelWidth={LABEL_WIDTH}
              tooltip="The value plotted. Codes and classes: percentage or hits. Totals: hits, errors or failure percentage."
            >
              <RadioButtonGroup<Metric>
                options={metricOptions(q.groupBy)}
                value={q.metric}
                onChange={(metric) => change({ ...query, metric })}
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
            tooltip="Optional: only these codes and classes, comma separated, e.g. 5xx,404. Variables allowed. Applied when you leave the field or press Enter."
            invalid={filterError !== undefined}
            error={filterError}
          >
            <Input
              id="estats-query-status-filter"
              value={statusFilterDraft}
              placeholder="all statuses, or e.g. 5xx,404"
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
      {LIVE_QUERY_TYPES.includes(q.queryType) && (
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
              onChange={(e) => change({ ...query, live: e.currentTarget.checked })}
            />
          </InlineField>
        </InlineFieldRow>
      )}
      {reason !== undefined && (
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
  hint: css({
    marginTop: theme.spacing(1),
    marginBottom: 0,
  }),
});
