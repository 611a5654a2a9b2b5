import {
  type CoreApp,
  type DataSourceInstanceSettings,
  FieldType,
  type MetricFindValue,
  type ScopedVars,
  StreamingFrameAction,
  type StreamingFrameOptions,
  type TestDataSourceResponse,
} from '@grafana/data';
import {
  DataSourceWithBackend,
  getTemplateSrv,
  HealthStatus,
  type HealthCheckResultDetails,
  type StreamOptionsProvider,
} from '@grafana/runtime';

import { AnnotationQueryEditor } from './components/AnnotationQueryEditor';
import {
  annotationQuery,
  cpCodeText,
  defaultAnnotationQuery,
  defaultQuery,
  incompleteReason,
  targetSubject,
  urlText,
} from './query';
import type {
  EStatsOptions,
  EStatsQuery,
  KnownTarget,
  StatusCodesResponse,
  TargetsResponse,
  VariableQuery,
} from './types';
import { EStatsVariableSupport } from './variables';

/** A single-valued field keeps the first value of a multi-value variable; repeat panels for more. */
function firstValue(value: unknown): string {
  if (Array.isArray(value)) {
    return value.length > 0 ? String(value[0]) : '';
  }
  return value === undefined || value === null ? '' : String(value);
}

/**
 * A multi-value or "All" variable in a target field: every value, in the contract's list form
 * (CP codes joined with ",", URLs with a space). A custom "All" value such as `*` arrives as text.
 */
function joined(separator: string): (value: unknown) => string {
  return (value: unknown) => {
    if (Array.isArray(value)) {
      return value.map(String).join(separator);
    }
    return value === undefined || value === null ? '' : String(value);
  };
}

/** A list field such as the status filter takes every selected value, comma separated. */
function commaList(value: unknown): string {
  if (Array.isArray(value)) {
    return value.map(String).join(',');
  }
  return value === undefined || value === null ? '' : String(value);
}

/** Turns the health check's details into the two texts Grafana's "Save & test" box shows. */
export function formatHealthDetails(details: HealthCheckResultDetails): TestDataSourceResponse['details'] {
  if (!details || typeof details !== 'object') {
    return undefined;
  }
  const message = typeof details.message === 'string' ? details.message : undefined;
  const lines: string[] = [];
  if (typeof details.verboseMessage === 'string') {
    lines.push(details.verboseMessage);
  }
  for (const [key, value] of Object.entries(details)) {
    if (key === 'message' || key === 'verboseMessage' || value === undefined || value === null) {
      continue;
    }
    lines.push(`${key}: ${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  const verboseMessage = lines.length > 0 ? lines.join('\n') : undefined;
  if (message === undefined && verboseMessage === undefined) {
    return undefined;
  }
  return { message, verboseMessage };
}

/**
 * How the panel buffers a live frame: a time series appends each pushed row (within the panel's
 * time range and data points); distribution and summary frames have no time field, and each push
 * replaces the previous one, since it is the whole latest sample.
 */
export const liveStreamOptions: StreamOptionsProvider<EStatsQuery> = (request, frame) => {
  const isSeries = frame.fields.some((field) => field.type === FieldType.time);
  const options: Partial<StreamingFrameOptions> = {
    maxLength: request.maxDataPoints ?? 500,
    action: isSeries ? StreamingFrameAction.Append : StreamingFrameAction.Replace,
  };
  if (isSeries && request.rangeRaw?.to === 'now') {
    options.maxDelta = request.range.to.valueOf() - request.range.from.valueOf();
  }
  return options;
};

export class DataSource extends DataSourceWithBackend<EStatsQuery, EStatsOptions> {
  readonly jsonData: EStatsOptions;

  constructor(instanceSettings: DataSourceInstanceSettings<EStatsOptions>) {
    super(instanceSettings);
    this.jsonData = instanceSettings.jsonData ?? {};
    this.variables = new EStatsVariableSupport(this);
    this.streamOptionsProvider = liveStreamOptions;
    // Grafana runs the annotation's query like a panel's and maps the frame's time, timeEnd,
    // title, text and tags fields to annotations itself.
    this.annotations = {
      QueryEditor: AnnotationQueryEditor,
      getDefaultQuery: () => defaultAnnotationQuery(this.jsonData),
      prepareQuery: (annotation) => {
        const target = annotation.target;
        const defaults =
          target?.cpCode === undefined && target?.url === undefined ? defaultAnnotationQuery(this.jsonData) : {};
        return annotationQuery({ refId: 'Anno', ...defaults, ...target });
      },
    };
  }

  getDefaultQuery(_app: CoreApp): Partial<EStatsQuery> {
    return defaultQuery(this.jsonData);
  }

  /** Incomplete queries are not sent: the backend would only answer with a 400 for them. */
  filterQuery(query: EStatsQuery): boolean {
    return incompleteReason(query) === undefined;
  }

  applyTemplateVariables(query: EStatsQuery, scopedVars: ScopedVars): EStatsQuery {
    const templateSrv = getTemplateSrv();
    const interpolated: EStatsQuery = { ...query };
    if (query.cpCode !== undefined && query.cpCode !== null) {
      interpolated.cpCode = templateSrv.replace(cpCodeText(query.cpCode), scopedVars, joined(',')).trim();
    }
    if (query.url !== undefined && query.url !== null) {
      interpolated.url = templateSrv.replace(urlText(query.url), scopedVars, joined(' ')).trim();
    }
    if (query.statusFilter !== undefined) {
      interpolated.statusFilter = templateSrv
        .replace(query.statusFilter, scopedVars, commaList)
        .split(/[\s,]+/)
        .filter((token) => token !== '')
        .join(',');
    }
    return interpolated;
  }

  /** Targets the backend knows (watched or queried), with their poller state. */
  async getTargets(): Promise<KnownTarget[]> {
    const response = await this.getResource<TargetsResponse>('targets');
    return Array.isArray(response?.targets) ? response.targets : [];
  }

  /** Status codes seen for one target key, in ascending order. */
  async getStatusCodes(key: string): Promise<number[]> {
    const response = await this.getResource<StatusCodesResponse>('status-codes', { target: key });
    const codes = Array.isArray(response?.statusCodes) ? response.statusCodes : [];
    return [...codes].sort((a, b) => a - b);
  }

  /**
   * Values of a dashboard variable. A `statusCodes` target may be a key, or a CP code or URL (as a
   * `targets` variable yields): then the codes of every known key of that subject are merged.
   */
  async variableValues(query: VariableQuery, scopedVars?: ScopedVars): Promise<MetricFindValue[]> {
    if (query.kind === 'statusCodes') {
      const target = getTemplateSrv()
        .replace(query.target ?? '', scopedVars, firstValue)
        .trim();
      if (target === '') {
        return [];
      }
      let keys: string[];
      if (target.startsWith('cp:') || target.startsWith('url:')) {
        keys = [target];
      } else {
        const known = await this.getTargets();
        keys = known.filter((t) => targetSubject(t.target) === target).map((t) => t.key);
      }
      const codes = new Set<number>();
      for (const key of keys) {
        for (const code of await this.getStatusCodes(key)) {
          codes.add(code);
        }
      }
      return [...codes].sort((a, b) => a - b).map((code) => ({ text: String(code), value: String(code) }));
    }

    const known = await this.getTargets();
    const values: MetricFindValue[] = [];
    const seen = new Set<string>();
    for (const target of known) {
      const subject = targetSubject(target.target);
      const type = target.target.url ? 'url' : 'cpCode';
      if (subject === '' || seen.has(subject) || (query.targetType && query.targetType !== type)) {
        continue;
      }
      seen.add(subject);
      values.push({ text: subject, value: subject });
    }
    return values;
  }

  /** Shows the backend's health message and its details (which probe failed and why). */
  async testDatasource(): Promise<TestDataSourceResponse> {
    const result = await this.callHealthCheck();
    if (!result || typeof result !== 'object' || typeof result.message !== 'string') {
      return {
        status: 'error',
        message: 'The plugin backend did not answer the health check; see the Grafana server log',
      };
    }
    const status =
      result.status === HealthStatus.OK ? 'success' : result.status === HealthStatus.Unknown ? 'warning' : 'error';
    return { status, message: result.message, details: formatHealthDetails(result.details) };
  }
}
