import { css } from '@emotion/css';
import type { GrafanaTheme2, QueryEditorProps } from '@grafana/data';
import { InlineField, InlineFieldRow, Input, RadioButtonGroup, Stack, Text, useStyles2 } from '@grafana/ui';
import { type KeyboardEvent, useEffect, useState } from 'react';

import { THRESHOLD } from '../contract';
import type { DataSource } from '../datasource';
import {
  annotationQuery,
  defaultAnnotationQuery,
  incompleteReason,
  SIDE_OPTIONS,
  statusFilterError,
  TARGET_TYPE_OPTIONS,
  targetText,
  thresholdError,
  unknownVariables,
  withDefaults,
} from '../query';
import type { EStatsOptions, EStatsQuery, Side, TargetType } from '../types';
import { TargetsInput } from './TargetsInput';
import { dashboardVariables } from './useKnownTargets';

export type AnnotationEditorProps = QueryEditorProps<DataSource, EStatsQuery, EStatsOptions>;

const LABEL_WIDTH = 16;

/** "2", "2.5", "2,5": a threshold as typed; undefined when empty, NaN when not a number. */
function parseThreshold(text: string): number | undefined {
  const value = text.trim().replace(',', '.');
  if (value === '') {
    return undefined;
  }
  return /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
}

/**
 * The annotation query editor: which targets, which side, and optionally a threshold on the share
 * of a status filter. The events (failing polls, pauses, credential blocks, threshold crossings)
 * come from the plugin's history as a frame Grafana turns into annotations.
 */
export function AnnotationQueryEditor({ query, onChange, datasource }: AnnotationEditorProps) {
  const styles = useStyles2(getStyles);
  const base =
    query?.cpCode === undefined && query?.url === undefined ? defaultAnnotationQuery(datasource.jsonData) : {};
  const current = annotationQuery({ ...base, ...query, refId: query?.refId ?? 'Anno' });
  const q = withDefaults(current);
  const subject = targetText(q);
  const [thresholdDraft, setThresholdDraft] = useState(q.threshold === undefined ? '' : String(q.threshold));
  const [filterDraft, setFilterDraft] = useState(q.statusFilter);
  const variableNames = dashboardVariables().map((v) => v.name);
  const needsDefaults = Object.keys(base).length > 0;

  // A new annotation stores its default targets at once, so what the editor shows is what runs.
  useEffect(() => {
    if (needsDefaults) {
      onChange(current);
    }
    // Once, for the query the editor opened with.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, []);

  const change = (patch: Partial<EStatsQuery>) => {
    const next: EStatsQuery = annotationQuery({ ...current, ...patch });
    if (next.threshold === undefined) {
      delete next.threshold;
    }
    onChange(next);
  };

  const unknown = unknownVariables(subject, variableNames);
  const targetError =
    subject.trim() === ''
      ? incompleteReason(q)
      : unknown.length > 0
        ? `Unknown dashboard variable ${unknown.map((n) => `$${n}`).join(', ')}`
        : incompleteReason(q);
  const threshold = parseThreshold(thresholdDraft);
  const thresholdMessage = thresholdError(threshold);
  const filterMessage = statusFilterError(filterDraft);

  const commitThreshold = () => {
    if (thresholdMessage === undefined && threshold !== q.threshold) {
      change({ threshold });
    }
  };
  const commitFilter = () => {
    const value = filterDraft.trim();
    if (value !== q.statusFilter) {
      change({ statusFilter: value });
    }
  };

  return (
    <Stack direction="column" gap={0}>
      <div className={styles.description}>
        <Text variant="bodySmall" color="secondary">
          Marks failing polls (with rate-limit pauses and credential blocks) and, with a threshold, the times the share
          of the status filter stayed above it, from the plugin&apos;s history.
        </Text>
      </div>
      <InlineFieldRow>
        <InlineField label="Target" labelWidth={LABEL_WIDTH} tooltip="CP codes or URLs.">
          <RadioButtonGroup<TargetType>
            aria-label="Target"
            options={TARGET_TYPE_OPTIONS}
            value={q.targetType}
            onChange={(targetType) => change({ targetType })}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label={q.targetType === 'url' ? 'URLs' : 'CP codes'}
          labelWidth={LABEL_WIDTH}
          htmlFor="estats-annotation-targets"
          tooltip={
            q.targetType === 'url'
              ? 'Absolute http(s) URLs, one a line, or * for every watched URL. Variables allowed.'
              : 'CP codes separated by commas, or * for every watched CP code. Variables allowed.'
          }
          invalid={targetError !== undefined}
          error={targetError}
          grow={q.targetType === 'url'}
        >
          <TargetsInput
            id="estats-annotation-targets"
            type={q.targetType}
            value={subject}
            invalid={targetError !== undefined}
            onCommit={(value) => change(q.targetType === 'url' ? { url: value } : { cpCode: value })}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label="Side"
          labelWidth={LABEL_WIDTH}
          tooltip="The side whose share the threshold reads: edge (what clients received), origin, or both."
        >
          <RadioButtonGroup<Side>
            aria-label="Side"
            options={SIDE_OPTIONS}
            value={q.side}
            onChange={(side) => change({ side })}
          />
        </InlineField>
      </InlineFieldRow>
      <InlineFieldRow>
        <InlineField
          label="Status filter"
          labelWidth={LABEL_WIDTH}
          htmlFor="estats-annotation-status-filter"
          tooltip={`The codes and classes whose share the threshold reads, comma separated; ${THRESHOLD.defaultStatusFilter} when empty.`}
          invalid={filterMessage !== undefined}
          error={filterMessage}
        >
          <Input
            id="estats-annotation-status-filter"
            value={filterDraft}
            placeholder={THRESHOLD.defaultStatusFilter}
            width={24}
            onChange={(e) => setFilterDraft(e.currentTarget.value)}
            onBlur={commitFilter}
            onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
              if (e.key === 'Enter') {
                commitFilter();
              }
            }}
          />
        </InlineField>
        <InlineField
          label="Threshold (%)"
          labelWidth={LABEL_WIDTH}
          htmlFor="estats-annotation-threshold"
          tooltip={`Optional: mark where the share of the status filter is above this percentage (${THRESHOLD.minExclusive ? 'above' : 'from'} ${THRESHOLD.min}, at most ${THRESHOLD.max}). Empty: failing polls only.`}
          invalid={thresholdMessage !== undefined}
          error={thresholdMessage}
        >
          <Input
            id="estats-annotation-threshold"
            value={thresholdDraft}
            placeholder="none, e.g. 2"
            width={16}
            inputMode="decimal"
            onChange={(e) => setThresholdDraft(e.currentTarget.value)}
            onBlur={commitThreshold}
            onKeyDown={(e: KeyboardEvent<HTMLInputElement>) => {
              if (e.key === 'Enter') {
                commitThreshold();
              }
            }}
          />
        </InlineField>
      </InlineFieldRow>
    </Stack>
  );
}

const getStyles = (theme: GrafanaTheme2) => ({
  description: css({
    marginBottom: theme.spacing(1),
  }),
});
