import type { DataSourceJsonData } from '@grafana/data';
import type { DataQuery } from '@grafana/schema';

/** The query model shared with the backend (see docs/design.md, "Query model"). */
export type QueryType = 'distribution' | 'timeseries' | 'summary' | 'topIps' | 'events';
export type TargetType = 'cpCode' | 'url';
export type Delivery = 'STANDARD_TLS' | 'ENHANCED_TLS';
/** "" stands for the data source's default delivery network. */
export type DeliveryChoice = '' | Delivery;
export type Side = 'edge' | 'origin' | 'both';
export type GroupBy = 'code' | 'class' | 'total';
export type Metric = 'percentage' | 'hits' | 'errors' | 'failurePercentage';

export interface EStatsQuery extends DataQuery {
  queryType?: QueryType;
  targetType?: TargetType;
  /**
   * One CP code (digits, as string or number), a list (`"1209788, 1209789"` or a JSON list) or
   * `"*"` (every watched CP code); a template variable such as `$cpcode` before interpolation.
   */
  cpCode?: string | number | Array<string | number>;
  /** One URL, `"*"` (every watched URL), or several separated by whitespace or given as a list. */
  url?: string | string[];
  delivery?: DeliveryChoice;
  side?: Side;
  groupBy?: GroupBy;
  metric?: Metric;
  /** Comma-separated codes and classes, e.g. `5xx,404`. */
  statusFilter?: string;
  /**
   * Push each new poll to the panel through Grafana Live instead of waiting for a refresh
   * (timeseries, distribution and summary only).
   */
  live?: boolean;
  /** Annotations (`queryType: "events"`): mark where the filter's share crosses this percentage. */
  threshold?: number;
}

/** Query types whose results can stream through Grafana Live. */
export const LIVE_QUERY_TYPES: readonly QueryType[] = ['timeseries', 'distribution', 'summary'];

/** One entry of `jsonData.watch`: exactly one of cpCode or url. */
export interface WatchTarget {
  cpCode?: number | string;
  url?: string;
  delivery?: Delivery;
}

/** `jsonData`: visible to Grafana users, so no secret ever goes here. */
export interface EStatsOptions extends DataSourceJsonData {
  host?: string;
  accountSwitchKey?: string;
  edgercPath?: string;
  edgercSection?: string;
  delivery?: DeliveryChoice;
  pollIntervalSeconds?: number;
  requestTimeoutSeconds?: number;
  rateLimitPerMinute?: number;
  watch?: WatchTarget[];
  retentionHours?: number;
  historyPath?: string;
  /** `postgres://user@host:port/dbname?sslmode=...` of the history shared by Grafana replicas; never with a password. */
  historyDatabase?: string;
  /** PostgreSQL schema of the shared history; the backend default when absent. */
  historyDatabaseSchema?: string;
  simulate?: boolean;
}

/** `secureJsonData`: encrypted by Grafana and never sent back to the browser. */
export interface EStatsSecureJsonData {
  clientToken?: string;
  clientSecret?: string;
  accessToken?: string;
  /** Password of the `historyDatabase` user. */
  historyDatabasePassword?: string;
}

export type SecretKey = keyof EStatsSecureJsonData;
export const SECRET_KEYS: readonly SecretKey[] = [
  'clientToken',
  'clientSecret',
  'accessToken',
  'historyDatabasePassword',
];

/** The `.edgerc` section read when `edgercSection` is absent. */
export const DEFAULT_EDGERC_SECTION = 'default';

/** Answer of the `/targets` resource. */
export interface KnownTarget {
  key: string;
  target: WatchTarget;
  label: string;
  watched?: boolean;
  lastSuccess?: string | null;
  lastError?: string | null;
  nextPoll?: string | null;
  samples?: number;
}

export interface TargetsResponse {
  targets: KnownTarget[];
  budget?: Record<string, unknown>;
}

/** Answer of the `/status-codes?target=<key>` resource. */
export interface StatusCodesResponse {
  target: string;
  statusCodes: number[];
}

/**
 * The query of a dashboard variable, answered in the browser from the resources above:
 * `targets` lists known targets (values: CP codes or URLs), `statusCodes` lists the codes seen for
 * `target` (a target key, a CP code, a URL or a template variable holding one).
 */
export interface VariableQuery extends DataQuery {
  kind: 'targets' | 'statusCodes';
  targetType?: TargetType;
  target?: string;
}
