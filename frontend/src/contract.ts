/**
 * The backend's bounds, defaults and query names, read from `generated/contract.json` (written by
 * the backend from its own rules and checked by its tests), so the editors cannot drift from it.
 */
import contract from './generated/contract.json';
import type { DeliveryChoice, GroupBy, Metric, QueryType, Side, TargetType } from './types';

interface Bound {
  default: number;
  min: number;
  max: number;
}

export const SETTINGS = contract.settings;

export const POLL_INTERVAL: Bound & { minLoopback: number; defaultSimulator: number } =
  contract.settings.pollIntervalSeconds;
export const REQUEST_TIMEOUT: Bound = contract.settings.requestTimeoutSeconds;
export const RATE_LIMIT: Bound & { maxLoopback: number } = contract.settings.rateLimitPerMinute;
export const RETENTION: Bound = contract.settings.retentionHours;
export const LOOPBACK_HOST_NAMES: readonly string[] = contract.settings.loopbackHostNames;

/** The rules of `historyDatabase` (the shared PostgreSQL history) and its schema and password. */
export const HISTORY_DATABASE: {
  schemes: readonly string[];
  sslModes: readonly string[];
  sslModeParam: string;
  /** A CA's PEM file (absolute path), only with `sslRootCertMode`. */
  sslRootCertParam: string;
  sslRootCertMode: string;
  defaultPort: number;
  /** Typed as the key of EStatsSecureJsonData; validation.test.ts fails if the backend renames it. */
  passwordField: 'historyDatabasePassword';
  defaultSchema: string;
  maxSchemaChars: number;
  schemaPattern: string;
} = {
  ...contract.settings.historyDatabase,
  passwordField: contract.settings.historyDatabase.passwordField as 'historyDatabasePassword',
};

const q = contract.query;

export const QUERY_TYPES = q.queryType.values as QueryType[];
/** The query type of annotation queries, never offered as a panel's query type. */
export const EVENTS_QUERY_TYPE: QueryType = 'events';
/** What a panel query may be: every query type of the backend but the annotations' one. */
export const PANEL_QUERY_TYPES: QueryType[] = QUERY_TYPES.filter((t) => t !== EVENTS_QUERY_TYPE);
export const DEFAULT_QUERY_TYPE = q.queryType.default as QueryType;
export const TARGET_TYPES = q.targetType.values as TargetType[];
export const DEFAULT_TARGET_TYPE = q.targetType.default as TargetType;
export const DELIVERIES = q.delivery.values as DeliveryChoice[];
export const DEFAULT_DELIVERY = q.delivery.default as DeliveryChoice;
export const SIDES = q.side.values as Side[];
export const DEFAULT_SIDE = q.side.default as Side;
export const GROUP_BYS = q.groupBy.values as GroupBy[];
export const DEFAULT_GROUP_BY = q.groupBy.default as GroupBy;

/** The metrics the backend accepts for a grouping, and the one it takes when none is given. */
export function metricsOf(groupBy: GroupBy): { values: Metric[]; default: Metric } {
  const entry = q.metric[groupBy];
  return { values: entry.values as Metric[], default: entry.default as Metric };
}

/** Most targets one query may name (a list, `*`, several URLs); beyond, the backend answers 400. */
export const MAX_TARGETS: number = q.maxTargets;
/** Longest URL the backend takes. */
export const MAX_URL_CHARS: number = q.maxUrlChars;

/** Bounds of an annotation query's `threshold` (percent), and the filter it reads by default. */
export interface ThresholdBound {
  min: number;
  /** Whether `min` itself is refused (the contract: 0 < x <= 100). */
  minExclusive: boolean;
  max: number;
  defaultStatusFilter: string;
}

const DESIGN_THRESHOLD: ThresholdBound = { min: 0, minExclusive: true, max: 100, defaultStatusFilter: '5xx' };

/**
 * The `threshold` bound of `contract.json` (`query.threshold`, written by the backend with the
 * events query type); until a contract has it, the design's own bound (docs/design.md,
 * "Annotations": 0 < x <= 100, filter 5xx) applies.
 */
export function thresholdBound(query: unknown): ThresholdBound {
  const t = (query as { threshold?: Partial<ThresholdBound> } | undefined)?.threshold;
  if (!t || typeof t.min !== 'number' || typeof t.max !== 'number') {
    return DESIGN_THRESHOLD;
  }
  return {
    min: t.min,
    max: t.max,
    minExclusive: typeof t.minExclusive === 'boolean' ? t.minExclusive : DESIGN_THRESHOLD.minExclusive,
    defaultStatusFilter:
      typeof t.defaultStatusFilter === 'string' ? t.defaultStatusFilter : DESIGN_THRESHOLD.defaultStatusFilter,
  };
}

export const THRESHOLD: ThresholdBound = thresholdBound(q);
