import {
  controlsFor,
  incompleteReason,
  metricChoices,
  metricOptions,
  normalizeVariableQuery,
  statusFilterError,
  withDefaults,
  unknownVariables,
  variableNames,
} from './query';
import contract from './generated/contract.json';

describe('metric options', () => {
  const values = (queryType: Parameters<typeof metricOptions>[0], groupBy: Parameters<typeof metricOptions>[1]) =>
    metricOptions(queryType, groupBy).map((o) => o.value);

  it('follow the grouping in time series, as the backend lists them', () => {
    expect(values('timeseries', 'code')).toEqual(['percentage', 'hits']);
    expect(values('timeseries', 'class')).toEqual(['percentage', 'hits']);
    expect(values('timeseries', 'total')).toEqual(['hits', 'errors', 'failurePercentage']);
  });

  it('fit distribution, summary and top IPs', () => {
    expect(values('distribution', 'code')).toEqual(['percentage', 'hits']);
    // A distribution's total has hits only (the backend refuses other metrics for alerts).
    expect(values('distribution', 'total')).toEqual(['hits']);
    expect(values('summary', 'code')).toEqual(['hits', 'errors', 'failurePercentage']);
    expect(values('topIps', 'code')).toEqual([]);
  });

  it("come with one default, the backend's", () => {
    expect(metricChoices('timeseries', 'total')?.default).toBe(contract.query.metric.total.default);
    expect(metricChoices('timeseries', 'code')?.default).toBe(contract.query.metric.code.default);
    expect(metricChoices('summary', 'code')?.default).toBe('failurePercentage');
  });
});

describe('withDefaults', () => {
  it('fills the DESIGN defaults', () => {
    expect(withDefaults({ refId: 'A' })).toEqual({
      refId: 'A',
      queryType: 'distribution',
      targetType: 'cpCode',
      cpCode: '',
      url: '',
      delivery: '',
      side: 'both',
      groupBy: 'code',
      metric: 'percentage',
      statusFilter: '',
    });
  });

  it('resets a metric that stops fitting to the default, and keeps one that fits', () => {
    const total = { refId: 'A', queryType: 'timeseries', groupBy: 'total', metric: 'failurePercentage' } as const;
    expect(withDefaults(total).metric).toBe('failurePercentage');
    expect(withDefaults({ refId: 'A', queryType: 'timeseries', groupBy: 'total' }).metric).toBe('failurePercentage');
    expect(withDefaults({ ...total, queryType: 'distribution' }).metric).toBe('hits');
    expect(withDefaults({ refId: 'A', queryType: 'summary', metric: 'percentage' })).toMatchObject({
      groupBy: 'total',
      metric: 'failurePercentage',
    });
    expect(withDefaults({ refId: 'A', queryType: 'summary', metric: 'hits' }).metric).toBe('hits');
    expect(withDefaults({ refId: 'A', groupBy: 'class', metric: 'hits' }).metric).toBe('hits');
  });
});

describe('incompleteReason', () => {
  it('names what is missing', () => {
    expect(incompleteReason({ refId: 'A' })).toBe('Enter a CP code (digits, e.g. 1209788) or pick a known target');
    expect(incompleteReason({ refId: 'A', cpCode: 'abc' })).toBe('CP code "abc" must contain digits only');
    expect(incompleteReason({ refId: 'A', targetType: 'url' })).toBe(
      'Enter the URL to diagnose, e.g. https://www.example.com/'
    );
    expect(incompleteReason({ refId: 'A', targetType: 'url', url: 'ftp://x/' })).toBe(
      '"ftp://x/" is not an absolute http(s) URL: start it with https://'
    );
    expect(incompleteReason({ refId: 'A', cpCode: 1 })).toBeUndefined();
  });
});

describe('statusFilterError', () => {
  it('accepts codes, classes and variables', () => {
    expect(statusFilterError('')).toBeUndefined();
    expect(statusFilterError('5xx, 404 2XX,$codes')).toBeUndefined();
  });

  it('names the first bad token', () => {
    expect(statusFilterError('5xx,40,abc')).toBe('"40" is not a status code (e.g. 404) or class (e.g. 5xx)');
    expect(statusFilterError('6xx')).toBe('"6xx" is not a status code (e.g. 404) or class (e.g. 5xx)');
  });
});

describe('controlsFor', () => {
  it('shows the metric wherever it applies and no grouping for summary and top IPs', () => {
    expect(controlsFor('timeseries')).toEqual({ groupBy: true, metric: true, statusFilter: true });
    expect(controlsFor('distribution')).toEqual({ groupBy: true, metric: true, statusFilter: true });
    expect(controlsFor('summary')).toEqual({ groupBy: false, metric: true, statusFilter: false });
    expect(controlsFor('topIps')).toEqual({ groupBy: false, metric: false, statusFilter: true });
  });
});

describe('normalizeVariableQuery', () => {
  it('keeps known kinds and defaults to targets', () => {
    expect(normalizeVariableQuery(undefined)).toEqual({ refId: 'variable', kind: 'targets' });
    expect(normalizeVariableQuery({ refId: 'v', kind: 'statusCodes' })).toEqual({
      refId: 'v',
      kind: 'statusCodes',
      target: '',
    });
    expect(normalizeVariableQuery({ refId: 'v', kind: 'targets', targetType: 'url' })).toEqual({
      refId: 'v',
      kind: 'targets',
      targetType: 'url',
    });
  });
});

describe('template variables in a target', () => {
  it('names the variables in every syntax', () => {
    expect(variableNames('$a ${b} ${c:csv} [[d]] x')).toEqual(['a', 'b', 'c', 'd']);
  });

  it('flags the ones the dashboard lacks, not Grafana built-ins', () => {
    expect(unknownVariables('$target', ['target'])).toEqual([]);
    expect(unknownVariables('$tar', ['target'])).toEqual(['tar']);
    expect(unknownVariables('${__from}', [])).toEqual([]);
  });
});
