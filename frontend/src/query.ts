import type { SelectableValue } from '@grafana/data';

import {
  DEFAULT_DELIVERY,
  DEFAULT_GROUP_BY,
  DEFAULT_QUERY_TYPE,
  DEFAULT_SIDE,
  DEFAULT_TARGET_TYPE,
  EVENTS_QUERY_TYPE,
  MAX_TARGETS,
  MAX_URL_CHARS,
  metricsOf,
  PANEL_QUERY_TYPES,
  THRESHOLD,
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

const QUERY_TYPE_TEXT: Record<QueryType, { label: string; description: string }> = {
  distribution: {
    label: 'Distribution',
    description: 'Share and count of each status in the latest sample, per side (pie charts, bar gauges).',
  },
  timeseries: {
    label: 'Time series',
    description: 'The chosen metric over time from the polling history (graphs, alert rules).',
  },
  summary: {
    label: 'Summary',
    description: 'Hits, errors and failure percentage per side in the latest sample (stat panels).',
  },
  topIps: {
    label: 'Top IPs',
    description: 'Table of the edge IPs with the most errors and successes in the latest sample.',
  },
  events: {
    label: 'Events',
    description: 'Failing polls, rate-limit pauses and threshold crossings as annotations.',
  },
};

/** The query types a panel offers: the backend's, without the annotations' `events`. */
export const QUERY_TYPE_OPTIONS: Array<SelectableValue<QueryType>> = PANEL_QUERY_TYPES.map((value) => ({
  value,
  ...QUERY_TYPE_TEXT[value],
}));

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
    case 'events':
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
    case 'events':
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

export type FilledQuery = Omit<EStatsQuery, 'cpCode' | 'url'> &
  Required<
    Pick<EStatsQuery, 'queryType' | 'targetType' | 'delivery' | 'side' | 'groupBy' | 'metric' | 'statusFilter'>
  > & {
    /** The CP code field as text: a JSON list reads as `a, b`. */
    cpCode: string;
    /** The URL field as text: a JSON list reads as one URL a line. */
    url: string;
  };

/** A query's CP codes as the editor shows them: a JSON list joined with commas. */
export function cpCodeText(value: EStatsQuery['cpCode']): string {
  if (Array.isArray(value)) {
    return value.map(String).join(', ');
  }
  return value === undefined || value === null ? '' : String(value);
}

/** A query's URLs as the editor shows them: a JSON list one URL a line. */
export function urlText(value: EStatsQuery['url']): string {
  if (Array.isArray(value)) {
    return value.map(String).join('\n');
  }
  return value ?? '';
}

/** The target field of a query as text: its CP codes or its URLs. */
export function targetText(query: EStatsQuery): string {
  return (query.targetType ?? DEFAULT_TARGET_TYPE) === 'url' ? urlText(query.url) : cpCodeText(query.cpCode);
}

/**
 * Whether a query names a set of targets (docs/design.md): `*`, a JSON list (even of one), a
 * list with a separator, or several URLs. A set answers with a `target` column or one frame per
 * target, and cannot stream live (one channel streams one target).
 */
export function namesSet(query: EStatsQuery): boolean {
  const type = query.targetType ?? DEFAULT_TARGET_TYPE;
  const value = type === 'url' ? query.url : query.cpCode;
  if (Array.isArray(value)) {
    return true;
  }
  const text = targetText(query).trim();
  return text === ALL_WATCHED || (type === 'url' ? /\s/ : /[\s,]/).test(text);
}

/** "*": every watched target of the query's kind (the backend reads the watch list). */
export const ALL_WATCHED = '*';

/**
 * The items of a target field: CP codes are separated by commas and/or whitespace, URLs (which
 * may contain commas, never raw whitespace) by whitespace, spaces or new lines.
 */
export function targetItems(type: TargetType, text: string): string[] {
  return text
    .split(type === 'url' ? /\s+/ : /[\s,]+/)
    .map((t) => t.trim())
    .filter((t) => t !== '');
}

/**
 * The backend's rule for a target field, for a text without unknown variables: one target, a
 * list, or `*` alone; every item valid; at most MAX_TARGETS distinct targets. A variable counts as
 * one target here (it may hold more; the backend counts again after interpolation).
 */
export function targetsError(type: TargetType, text: string): string | undefined {
  const items = targetItems(type, text);
  if (items.includes(ALL_WATCHED)) {
    if (items.length > 1) {
      return type === 'url'
        ? '* stands for every watched URL: remove the other URLs, or the *'
        : '* stands for every watched CP code: remove the other CP codes, or the *';
    }
    return undefined;
  }
  for (const item of items) {
    if (hasTemplateVariable(item)) {
      continue;
    }
    if (type === 'url') {
      if (!isAbsoluteHttpUrl(item)) {
        return `"${item}" is not an absolute http(s) URL: start it with https://`;
      }
      if (item.length > MAX_URL_CHARS) {
        return `A URL is ${item.length} characters long: at most ${MAX_URL_CHARS}`;
      }
    } else if (!isDigits(item)) {
      return items.length > 1
        ? `CP code "${item}" must contain digits only; separate CP codes with commas`
        : `CP code "${item}" must contain digits only`;
    }
  }
  const count = new Set(items).size;
  if (count > MAX_TARGETS) {
    const what = type === 'url' ? 'URLs' : 'CP codes';
    return `${count} ${what}: a query takes at most ${MAX_TARGETS}; split them over several queries${type === 'url' ? '' : ' or use * for every watched CP code'}`;
  }
  return undefined;
}

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
    cpCode: cpCodeText(query.cpCode),
    url: urlText(query.url),
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
  const type = query.targetType ?? DEFAULT_TARGET_TYPE;
  const text = targetText(query).trim();
  if (text === '') {
    return type === 'url'
      ? 'Enter the URLs to diagnose, e.g. https://www.example.com/, one a line, or * for every watched URL'
      : 'Enter CP codes (e.g. 1209788, 1209789, or * for every watched CP code) or pick a known target';
  }
  return targetsError(type, text);
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

/**
 * An annotation query as sent: always `events`, with what the events read (targets, delivery,
 * side, status filter, threshold) and nothing of a panel's grouping or metric.
 */
export function annotationQuery(query: EStatsQuery): EStatsQuery {
  const { groupBy: _groupBy, metric: _metric, live: _live, ...rest } = query;
  return { ...rest, refId: query.refId || 'Anno', queryType: EVENTS_QUERY_TYPE };
}

/**
 * A new annotation: the events of every watched CP code (or URL, when only URLs are watched) on
 * both sides, so failing polls show at once; a threshold is the user's to add.
 */
export function defaultAnnotationQuery(options: EStatsOptions): Partial<EStatsQuery> {
  const watch = options.watch ?? [];
  const onlyUrls = watch.length > 0 && watch.every((w) => w.url !== undefined && w.url !== '');
  return onlyUrls
    ? { queryType: EVENTS_QUERY_TYPE, targetType: 'url', url: ALL_WATCHED, side: DEFAULT_SIDE }
    : { queryType: EVENTS_QUERY_TYPE, targetType: 'cpCode', cpCode: ALL_WATCHED, side: DEFAULT_SIDE };
}

/** The problem with an annotation's threshold (percent), if any; none is fine (no threshold events). */
export function thresholdError(value: number | undefined): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  const belowMin = THRESHOLD.minExclusive ? value <= THRESHOLD.min : value < THRESHOLD.min;
  if (!Number.isFinite(value) || belowMin || value > THRESHOLD.max) {
    return `The threshold is a percentage ${THRESHOLD.minExclusive ? 'above' : 'from'} ${THRESHOLD.min} and at most ${THRESHOLD.max}, e.g. 2`;
  }
  return undefined;
}

/** Older or hand-written variable queries may lack `kind`; they list targets. */
export function normalizeVariableQuery(query: Partial<VariableQuery> | undefined): VariableQuery {
  const refId = query?.refId ?? 'variable';
  if (query?.kind === 'statusCodes') {
    return { refId, kind: 'statusCodes', target: query.target ?? '' };
  }
  return query?.targetType ? { refId, kind: 'targets', targetType: query.targetType } : { refId, kind: 'targets' };
}
