import {
  controlsFor,
  incompleteReason,
  metricFor,
  metricOptions,
  normalizeVariableQuery,
  statusFilterError,
  withDefaults,
} from './query';

describe('metric options', () => {
  it('follow the grouping', () => {
    expect(metricOptions('code').map((o) => o.value)).toEqual(['percentage', 'hits']);
    expect(metricOptions('class').map((o) => o.value)).toEqual(['percentage', 'hits']);
    expect(metricOptions('total').map((o) => o.value)).toEqual(['hits', 'errors', 'failurePercentage']);
  });

  it('keep a metric the grouping supports and replace one it does not', () => {
    expect(metricFor('class', 'hits')).toBe('hits');
    expect(metricFor('total', 'percentage')).toBe('hits');
    expect(metricFor('code', 'failurePercentage')).toBe('percentage');
    expect(metricFor('total', undefined)).toBe('hits');
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
    expect(withDefaults({ refId: 'A', groupBy: 'total', metric: 'percentage' }).metric).toBe('hits');
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
  it('shows the metric only for time series and no grouping for summary and top IPs', () => {
    expect(controlsFor('timeseries')).toEqual({ groupBy: true, metric: true, statusFilter: true });
    expect(controlsFor('distribution')).toEqual({ groupBy: true, metric: false, statusFilter: true });
    expect(controlsFor('summary')).toEqual({ groupBy: false, metric: false, statusFilter: false });
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
