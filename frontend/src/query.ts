import type { SelectableValue } from '@grafana/data';

import {
  DEFAULT_DELIVERY,
  DEFAULT_GROUP_BY,
  DEFAULT_QUERY_TYPE,
  DEFAULT_SIDE,
  DEFAULT_TARGET_TYPE,
  metricsOf,
} from './contract';
import type {
  DeliveryChoice,
  EStatsOptions,
  EStatsQuery,
  GroupBy,
  Metric,
  QueryType,
  Side,
  TargetType,
  VariableQuery,
  WatchTarget,
} from './types';

export const QUERY_TYPE_OPTIONS: Array<SelectableValue<QueryType>> = [
  {
    label: 'Distribution',
    value: 'distribution',
    description: 'Share and count of each status in the latest sample, per side (pie charts, bar gauges).',
  },
  {
    label: 'Time series',
    value: 'timeseries',
    description: 'The chosen metric over time from the polling history (graphs, alert rules).',
  },
  {
    label: 'Summary',
    value: 'summary',
    description: 'Hits, errors and failure percentage per side in the latest sample (stat panels).',
  },
  {
    label: 'Top IPs',
    value: 'topIps',
    description: 'Table of the edge IPs with the most errors and successes in the latest sample.',
  },
];

// Radio options carry no description: a RadioButton shows it as a tooltip that covers the next row.
export const TARGET_TYPE_OPTIONS: Array<SelectableValue<TargetType>> = [
  { label: 'CP code', value: 'cpCode' },
  { label: 'URL', value: 'url' },
];

export const DELIVERY_OPTIONS: Array<SelectableValue<DeliveryChoice>> = [
  { label: 'Default', value: '' },
  { label: 'Standard TLS', value: 'STANDARD_TLS' },
  { label: 'Enhanced TLS', value: 'ENHANCED_TLS' },
];

export const SIDE_OPTIONS: Array<SelectableValue<Side>> = [
  { label: 'Edge', value: 'edge' },
  { label: 'Origin', value: 'origin' },
  { label: 'Both', value: 'both' },
];

export const GROUP_BY_OPTIONS: Array<SelectableValue<GroupBy>> = [
  { label: 'Status code', value: 'code' },
  { label: 'Status class', value: 'class' },
  { label: 'Total', value: 'total' },
];

const METRIC_LABELS: Record<Metric, string> = {
  percentage: 'Percentage',
  hits: 'Hits',
  errors: 'Errors',
  failurePercentage: 'Failure %',
};

/**
 * The metrics a query can use, the default first-class: the backend's list for the grouping (a
 * time series plots it; a distribution and a summary give it to alert rules). A distribution
 * grouped by total has hits only; a summary is always per side, so it takes the total's metrics.
 * Top IPs has none.
 */
export function metricChoices(
  queryType: QueryType,
  groupBy: GroupBy
): { values: Metric[]; default: Metric } | undefined {
  switch (queryType) {
    case 'topIps':
      return undefined;
    case 'summary':
      return metricsOf('total');
    case 'distribution':
      return groupBy === 'total' ? { values: ['hits'], default: 'hits' } : metricsOf(groupBy);
    case 'timeseries':
      return metricsOf(groupBy);
  }
}

export function metricOptions(queryType: QueryType, groupBy: GroupBy): Array<SelectableValue<Metric>> {
  return (metricChoices(queryType, groupBy)?.values ?? []).map((value) => ({ label: METRIC_LABELS[value], value }));
}

/** Which controls a query type uses. */
export function controlsFor(queryType: QueryType): { groupBy: boolean; metric: boolean; statusFilter: boolean } {
  switch (queryType) {
    case 'distribution':
      return { groupBy: true, metric: true, statusFilter: true };
    case 'timeseries':
      return { groupBy: true, metric: true, statusFilter: true };
    case 'summary':
      return { groupBy: false, metric: true, statusFilter: false };
    case 'topIps':
      return { groupBy: false, metric: false, statusFilter: true };
  }
}

const TEMPLATE_VARIABLE = /\$\w+|\$\{[^}]+\}|\[\[[^\]]+\]\]/;

export function hasTemplateVariable(value: string): boolean {
  return TEMPLATE_VARIABLE.test(value);
}

/** Names of the variables a text refers to (`$name`, `${name}`, `${name:format}`, `[[name]]`). */
export function variableNames(value: string): string[] {
  const names: string[] = [];
  for (const match of value.matchAll(/\$(\w+)|\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]/g)) {
    const name = match[1] ?? match[2] ?? match[3];
    if (name !== undefined) {
      names.push(name);
    }
  }
  return names;
}

/** Variables a text refers to that the dashboard does not define; Grafana's own `__` ones are known. */
export function unknownVariables(value: string, known: readonly string[]): string[] {
  return variableNames(value).filter((name) => !name.startsWith('__') && !known.includes(name));
}

export function isDigits(value: string): boolean {
  return /^\d+$/.test(value.trim());
}

export function isAbsoluteHttpUrl(value: string): boolean {
  try {
    const url = new URL(value.trim());
    return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
  } catch {
    return false;
  }
}

export type FilledQuery = EStatsQuery &
  Required<
    Pick<
      EStatsQuery,
      'queryType' | 'targetType' | 'cpCode' | 'url' | 'delivery' | 'side' | 'groupBy' | 'metric' | 'statusFilter'
    >
  >;

/**
 * The query with every key the backend reads filled in, and grouping and metric made to fit the
 * query type: a metric that stops fitting is reset to the backend's default, never kept hidden.
 */
export function withDefaults(query: EStatsQuery): FilledQuery {
  const queryType = query.queryType ?? DEFAULT_QUERY_TYPE;
  const groupBy = queryType === 'summary' ? 'total' : (query.groupBy ?? DEFAULT_GROUP_BY);
  const choices = metricChoices(queryType, groupBy) ?? metricsOf(groupBy);
  const metric = query.metric && choices.values.includes(query.metric) ? query.metric : choices.default;
  return {
    ...query,
    queryType,
    targetType: query.targetType ?? DEFAULT_TARGET_TYPE,
    cpCode: query.cpCode ?? '',
    url: query.url ?? '',
    delivery: query.delivery ?? DEFAULT_DELIVERY,
    side: query.side ?? DEFAULT_SIDE,
    groupBy,
    metric,
    statusFilter: query.statusFilter ?? '',
  };
}

/**
 * Why a query cannot run yet, or undefined when it can. Template variables count as filled in: they
 * are checked again by the backend after interpolation.
 */
export function incompleteReason(query: EStatsQuery): string | undefined {
  if ((query.targetType ?? 'cpCode') === 'url') {
    const url = (query.url ?? '').trim();
    if (url === '') {
      return 'Enter the URL to diagnose, e.g. https://www.example.com/';
    }
    if (!hasTemplateVariable(url) && !isAbsoluteHttpUrl(url)) {
      return `"${url}" is not an absolute http(s) URL: start it with https://`;
    }
    return undefined;
  }
  const cpCode = String(query.cpCode ?? '').trim();
  if (cpCode === '') {
    return 'Enter a CP code (digits, e.g. 1209788) or pick a known target';
  }
  if (!hasTemplateVariable(cpCode) && !isDigits(cpCode)) {
    return `CP code "${cpCode}" must contain digits only`;
  }
  return undefined;
}

const STATUS_TOKEN = /^(?:[1-5]\d\d|[1-5]xx)$/i;

/** Splits a status filter such as "5xx, 404" into tokens. */
export function statusFilterTokens(filter: string): string[] {
  return filter
    .split(/[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/** A message naming the first token that is neither a status code, a class nor a variable. */
export function statusFilterError(filter: string): string | undefined {
  const bad = statusFilterTokens(filter).filter((t) => !STATUS_TOKEN.test(t) && !hasTemplateVariable(t));
  if (bad.length === 0) {
    return undefined;
  }
  return `"${bad[0]}" is not a status code (e.g. 404) or class (e.g. 5xx)`;
}

/** The text a target shows in a field: its CP code or URL. */
export function targetSubject(target: WatchTarget): string {
  if (target.url !== undefined && target.url !== '') {
    return target.url;
  }
  return target.cpCode === undefined ? '' : String(target.cpCode);
}

/** The default query of a new panel: the first watched target when there is one. */
export function defaultQuery(options: EStatsOptions): Partial<EStatsQuery> {
  const first = options.watch?.find((w) => targetSubject(w) !== '');
  const { refId: _refId, url: _url, ...base } = withDefaults({ refId: '' });
  if (!first) {
    return base;
  }
  const delivery: DeliveryChoice = first.delivery ?? '';
  if (first.url) {
    return { ...base, targetType: 'url', url: first.url, delivery };
  }
  return { ...base, cpCode: first.cpCode ?? '', delivery };
}

/** Older or hand-written variable queries may lack `kind`; they list targets. */
export function normalizeVariableQuery(query: Partial<VariableQuery> | undefined): VariableQuery {
  const refId = query?.refId ?? 'variable';
  if (query?.kind === 'statusCodes') {
    return { refId, kind: 'statusCodes', target: query.target ?? '' };
  }
  return query?.targetType ? { refId, kind: 'targets', targetType: query.targetType } : { refId, kind: 'targets' };
}
