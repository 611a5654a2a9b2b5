import type { SelectableValue } from '@grafana/data';

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

export const TARGET_TYPE_OPTIONS: Array<SelectableValue<TargetType>> = [
  { label: 'CP code', value: 'cpCode', description: 'A content provider code: digits, e.g. 1209788' },
  { label: 'URL', value: 'url', description: 'An absolute http(s) URL served by Akamai' },
];

export const DELIVERY_OPTIONS: Array<SelectableValue<DeliveryChoice>> = [
  { label: 'Default', value: '', description: 'The delivery network set in the data source' },
  { label: 'Standard TLS', value: 'STANDARD_TLS', description: 'Standard TLS delivery network' },
  { label: 'Enhanced TLS', value: 'ENHANCED_TLS', description: 'Enhanced TLS delivery network' },
];

export const SIDE_OPTIONS: Array<SelectableValue<Side>> = [
  { label: 'Edge', value: 'edge', description: 'Responses the edge servers sent to clients' },
  { label: 'Origin', value: 'origin', description: 'Responses the origin sent to the edge servers' },
  { label: 'Both', value: 'both', description: 'Edge and origin, labelled by side' },
];

export const GROUP_BY_OPTIONS: Array<SelectableValue<GroupBy>> = [
  { label: 'Status code', value: 'code', description: 'One series per status code, e.g. 200, 404, 503' },
  { label: 'Status class', value: 'class', description: 'One series per class: 1xx, 2xx, 3xx, 4xx, 5xx' },
  { label: 'Total', value: 'total', description: 'One series per side: all hits, errors, failure percentage' },
];

const METRICS_BY_GROUP: Record<GroupBy, Array<SelectableValue<Metric>>> = {
  code: [
    { label: 'Percentage', value: 'percentage', description: 'Share of all hits on that side, 0-100' },
    { label: 'Hits', value: 'hits', description: 'Number of hits in the sample' },
  ],
  class: [
    { label: 'Percentage', value: 'percentage', description: 'Share of all hits on that side, 0-100' },
    { label: 'Hits', value: 'hits', description: 'Number of hits in the sample' },
  ],
  total: [
    { label: 'Hits', value: 'hits', description: 'All hits in the sample' },
    { label: 'Errors', value: 'errors', description: 'Hits that were errors' },
    { label: 'Failure %', value: 'failurePercentage', description: 'Errors as a share of all hits, 0-100' },
  ],
};

/** The metrics that make sense for a grouping; the first one is the default. */
export function metricOptions(groupBy: GroupBy): Array<SelectableValue<Metric>> {
  return METRICS_BY_GROUP[groupBy];
}

/** Keeps the metric when the grouping supports it, else falls back to the grouping's default. */
export function metricFor(groupBy: GroupBy, metric: Metric | undefined): Metric {
  const options = metricOptions(groupBy);
  if (metric && options.some((o) => o.value === metric)) {
    return metric;
  }
  return options[0]?.value ?? 'hits';
}

/** Which controls a query type uses; hidden ones keep their value but the backend ignores them. */
export function controlsFor(queryType: QueryType): { groupBy: boolean; metric: boolean; statusFilter: boolean } {
  switch (queryType) {
    case 'distribution':
      return { groupBy: true, metric: false, statusFilter: true };
    case 'timeseries':
      return { groupBy: true, metric: true, statusFilter: true };
    case 'summary':
      return { groupBy: false, metric: false, statusFilter: false };
    case 'topIps':
      return { groupBy: false, metric: false, statusFilter: true };
  }
}

const TEMPLATE_VARIABLE = /\$\w+|\$\{[^}]+\}|\[\[[^\]]+\]\]/;

export function hasTemplateVariable(value: string): boolean {
  return TEMPLATE_VARIABLE.test(value);
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

/** The query with every key the backend reads filled in. */
export function withDefaults(query: EStatsQuery): FilledQuery {
  const groupBy = query.groupBy ?? 'code';
  return {
    ...query,
    queryType: query.queryType ?? 'distribution',
    targetType: query.targetType ?? 'cpCode',
    cpCode: query.cpCode ?? '',
    url: query.url ?? '',
    delivery: query.delivery ?? '',
    side: query.side ?? 'both',
    groupBy,
    metric: metricFor(groupBy, query.metric),
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
  const base: Partial<EStatsQuery> = {
    queryType: 'distribution',
    targetType: 'cpCode',
    cpCode: '',
    delivery: '',
    side: 'both',
    groupBy: 'code',
    metric: 'percentage',
    statusFilter: '',
  };
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
