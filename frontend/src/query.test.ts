import { THRESHOLD, thresholdBound } from './contract';
import {
  annotationQuery,
  controlsFor,
  defaultAnnotationQuery,
  incompleteReason,
  namesSet,
  QUERY_TYPE_OPTIONS,
  targetItems,
  targetsError,
  thresholdError,
  metricChoices,
  metricOptions,
  normalizeVariableQuery,
  statusFilterError,
  withDefaults,
  unknownVariables,
  variableNames,
} from './query';
import contract from './generated/contract.json';
import type { EStatsQuery } from './types';

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
    expect(incompleteReason({ refId: 'A' })).toBe(
      'Enter CP codes (e.g. 1209788, 1209789, or * for every watched CP code) or pick a known target'
    );
    expect(incompleteReason({ refId: 'A', cpCode: 'abc' })).toBe('CP code "abc" must contain digits only');
    expect(incompleteReason({ refId: 'A', targetType: 'url' })).toBe(
      'Enter the URLs to diagnose, e.g. https://www.example.com/, one a line, or * for every watched URL'
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

describe('many targets', () => {
  const max = contract.query.maxTargets;
  const codes = (n: number) => Array.from({ length: n }, (_, i) => String(1000000 + i));

  it('reads CP codes separated by commas and/or whitespace, and URLs by whitespace only', () => {
    expect(targetItems('cpCode', ' 1209788,1209789  555\n42 ,')).toEqual(['1209788', '1209789', '555', '42']);
    expect(targetItems('url', 'https://a.example/x,y\n\n  https://b.example/ ')).toEqual([
      'https://a.example/x,y',
      'https://b.example/',
    ]);
  });

  it('takes one target, a list, * alone and variables', () => {
    expect(targetsError('cpCode', '1209788')).toBeUndefined();
    expect(targetsError('cpCode', '1209788, 1209789')).toBeUndefined();
    expect(targetsError('cpCode', '*')).toBeUndefined();
    expect(targetsError('cpCode', '$cpcodes, 42')).toBeUndefined();
    expect(targetsError('url', '*')).toBeUndefined();
    expect(targetsError('url', 'https://a.example/ https://b.example/?q=1,2')).toBeUndefined();
  });

  it('refuses * with other targets, and bad items, naming them', () => {
    expect(targetsError('cpCode', '*, 1209788')).toBe(
      '* stands for every watched CP code: remove the other CP codes, or the *'
    );
    expect(targetsError('url', '* https://a.example/')).toBe(
      '* stands for every watched URL: remove the other URLs, or the *'
    );
    expect(targetsError('cpCode', '1209788; 1209789')).toBe(
      'CP code "1209788;" must contain digits only; separate CP codes with commas'
    );
    expect(targetsError('url', 'https://a.example/ b.example')).toBe(
      '"b.example" is not an absolute http(s) URL: start it with https://'
    );
    expect(targetsError('url', `https://a.example/${'x'.repeat(contract.query.maxUrlChars)}`)).toMatch(
      new RegExp(`at most ${contract.query.maxUrlChars}$`)
    );
  });

  it('bounds a query to the contract maxTargets distinct targets', () => {
    expect(targetsError('cpCode', codes(max).join(','))).toBeUndefined();
    // Duplicates are dropped by the backend, so they do not count.
    expect(targetsError('cpCode', [...codes(max), ...codes(3)].join(','))).toBeUndefined();
    expect(targetsError('cpCode', codes(max + 1).join(','))).toBe(
      `${max + 1} CP codes: a query takes at most ${max}; split them over several queries or use * for every watched CP code`
    );
    const urls = codes(max + 1).map((c) => `https://a.example/${c}`);
    expect(targetsError('url', urls.join('\n'))).toBe(
      `${max + 1} URLs: a query takes at most ${max}; split them over several queries`
    );
  });

  it('tells a set from one target, as the backend does', () => {
    const set = (query: Omit<EStatsQuery, 'refId'>) => namesSet({ refId: 'A', ...query });
    expect(set({ cpCode: '1209788' })).toBe(false);
    expect(set({ cpCode: 1209788 })).toBe(false);
    expect(set({ cpCode: ' 1209788 ' })).toBe(false);
    expect(set({ cpCode: '*' })).toBe(true);
    expect(set({ cpCode: '1209788,' })).toBe(true);
    expect(set({ cpCode: '1209788 1209789' })).toBe(true);
    expect(set({ cpCode: [1209788] })).toBe(true);
    expect(set({ targetType: 'url', url: 'https://a.example/x,y' })).toBe(false);
    expect(set({ targetType: 'url', url: 'https://a.example/\nhttps://b.example/' })).toBe(true);
    expect(set({ targetType: 'url', url: '*' })).toBe(true);
  });

  it('shows JSON lists as text in the editors', () => {
    expect(withDefaults({ refId: 'A', cpCode: [1209788, '1209789'] }).cpCode).toBe('1209788, 1209789');
    expect(withDefaults({ refId: 'A', targetType: 'url', url: ['https://a.example/', 'https://b.example/'] }).url).toBe(
      'https://a.example/\nhttps://b.example/'
    );
    expect(incompleteReason({ refId: 'A', cpCode: [1209788, 'x'] })).toBe(
      'CP code "x" must contain digits only; separate CP codes with commas'
    );
  });
});

describe('query types', () => {
  it('offers every query type of the contract to panels but the annotations events', () => {
    const expected = contract.query.queryType.values.filter((t: string) => t !== 'events');
    expect(QUERY_TYPE_OPTIONS.map((o) => o.value)).toEqual(expected);
    expect(QUERY_TYPE_OPTIONS.every((o) => o.label && o.description)).toBe(true);
  });
});

describe('annotations', () => {
  it('always sends events, without a panel grouping or metric', () => {
    expect(
      annotationQuery({ refId: '', queryType: 'timeseries', cpCode: '*', groupBy: 'class', metric: 'hits', live: true })
    ).toEqual({ refId: 'Anno', queryType: 'events', cpCode: '*' });
  });

  it('starts on every watched CP code, or every watched URL when only URLs are watched', () => {
    expect(defaultAnnotationQuery({})).toMatchObject({ queryType: 'events', targetType: 'cpCode', cpCode: '*' });
    expect(defaultAnnotationQuery({ watch: [{ cpCode: 1 }, { url: 'https://a.example/' }] })).toMatchObject({
      cpCode: '*',
    });
    expect(defaultAnnotationQuery({ watch: [{ url: 'https://a.example/' }] })).toMatchObject({
      targetType: 'url',
      url: '*',
    });
  });

  it('bounds the threshold as the contract does: above 0, at most 100', () => {
    expect(thresholdError(undefined)).toBeUndefined();
    expect(thresholdError(2)).toBeUndefined();
    expect(thresholdError(100)).toBeUndefined();
    expect(thresholdError(0.01)).toBeUndefined();
    for (const bad of [0, -1, 100.5, Number.NaN]) {
      expect(thresholdError(bad)).toBe('The threshold is a percentage above 0 and at most 100, e.g. 2');
    }
  });

  it('reads the threshold bound from the contract when it has one', () => {
    expect(thresholdBound({ threshold: { min: 1, minExclusive: false, max: 50, defaultStatusFilter: '4xx' } })).toEqual(
      { min: 1, minExclusive: false, max: 50, defaultStatusFilter: '4xx' }
    );
    expect(thresholdBound({ threshold: { min: 0, max: 50 } })).toEqual({
      min: 0,
      minExclusive: true,
      max: 50,
      defaultStatusFilter: '5xx',
    });
    // Until the backend's contract.json has query.threshold: the design's 0 < x <= 100.
    expect(thresholdBound({})).toEqual({ min: 0, minExclusive: true, max: 100, defaultStatusFilter: '5xx' });
    expect(THRESHOLD).toEqual(thresholdBound(contract.query));
  });
});
