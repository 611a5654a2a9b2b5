import {
  CoreApp,
  dateTime,
  FieldType,
  StreamingFrameAction,
  toDataFrame,
  type DataQueryRequest,
  type DataQueryResponse,
} from '@grafana/data';
import { HealthStatus, setTemplateSrv } from '@grafana/runtime';
import { lastValueFrom } from 'rxjs';

import { DataSource, formatHealthDetails, liveStreamOptions } from './datasource';
import { fakeTemplateSrv, instanceSettings, KNOWN_TARGETS } from './test/fixtures';
import type { EStatsQuery, VariableQuery } from './types';
import { EStatsVariableSupport } from './variables';

function datasource(jsonData = {}) {
  return new DataSource(instanceSettings(jsonData));
}

/** Answers the two resources like the backend does, and records the calls. */
function mockResources(ds: DataSource, statusCodes: Record<string, number[]> = {}) {
  return jest.spyOn(ds, 'getResource').mockImplementation(async (path: string, params?: unknown) => {
    if (path === 'targets') {
      return { targets: KNOWN_TARGETS, budget: { limit: 40, remaining: 38 } };
    }
    if (path === 'status-codes') {
      const key = (params as { target: string }).target;
      return { target: key, statusCodes: statusCodes[key] ?? [] };
    }
    throw new Error(`unexpected resource ${path}`);
  });
}

const base: EStatsQuery = { refId: 'A', queryType: 'distribution', targetType: 'cpCode', cpCode: '1209788' };

describe('applyTemplateVariables', () => {
  beforeEach(() => {
    setTemplateSrv(
      fakeTemplateSrv({
        cpcode: '1209788',
        cpcodes: ['1209788', '555'],
        // An "All" variable: Grafana hands the formatter every value.
        allcps: ['1209788', '1209789', '555'],
        // An "All" variable with a custom all value: Grafana hands the text as it is.
        starcps: '*',
        urls: ['https://a.example/x,y', 'https://b.example/'],
        host: 'www.example.com',
        codes: ['5xx', '404'],
        single: '503',
      })
    );
  });

  it('interpolates cpCode, url and statusFilter', () => {
    const ds = datasource();
    const out = ds.applyTemplateVariables(
      { ...base, cpCode: '$cpcode', url: 'https://${host}/path', statusFilter: '$single, 404' },
      {}
    );
    expect(out.cpCode).toBe('1209788');
    expect(out.url).toBe('https://www.example.com/path');
    expect(out.statusFilter).toBe('503,404');
  });

  it('joins the CP codes of a multi-value or All variable with commas, as the backend reads lists', () => {
    expect(datasource().applyTemplateVariables({ ...base, cpCode: '$cpcodes' }, {}).cpCode).toBe('1209788,555');
    expect(datasource().applyTemplateVariables({ ...base, cpCode: '${allcps}' }, {}).cpCode).toBe(
      '1209788,1209789,555'
    );
    expect(datasource().applyTemplateVariables({ ...base, cpCode: '42, $cpcodes' }, {}).cpCode).toBe('42, 1209788,555');
    expect(datasource().applyTemplateVariables({ ...base, cpCode: '$starcps' }, {}).cpCode).toBe('*');
  });

  it('joins the URLs of a multi-value variable with a space, since URLs may hold commas', () => {
    const out = datasource().applyTemplateVariables({ ...base, targetType: 'url', url: '$urls' }, {});
    expect(out.url).toBe('https://a.example/x,y https://b.example/');
  });

  it('turns JSON lists into the text forms, interpolating each item', () => {
    const ds = datasource();
    expect(ds.applyTemplateVariables({ ...base, cpCode: [1209788, '$cpcode'] }, {}).cpCode).toBe('1209788, 1209788');
    expect(
      ds.applyTemplateVariables({ ...base, targetType: 'url', url: ['https://${host}/', 'https://c.example/'] }, {}).url
    ).toBe('https://www.example.com/\nhttps://c.example/');
  });

  it('keeps * as it is', () => {
    const ds = datasource();
    expect(ds.applyTemplateVariables({ ...base, cpCode: ' * ' }, {}).cpCode).toBe('*');
    expect(ds.applyTemplateVariables({ ...base, targetType: 'url', url: '*' }, {}).url).toBe('*');
  });

  it('joins every value of a multi-value variable in the status filter', () => {
    const out = datasource().applyTemplateVariables({ ...base, statusFilter: '$codes,200' }, {});
    expect(out.statusFilter).toBe('5xx,404,200');
  });

  it('prefers scoped variables, as repeated panels set them', () => {
    const out = datasource().applyTemplateVariables(
      { ...base, cpCode: '$cpcodes' },
      { cpcodes: { text: '555', value: '555' } }
    );
    expect(out.cpCode).toBe('555');
  });

  it('turns a numeric cpCode into its text and leaves other fields alone', () => {
    const query: EStatsQuery = { ...base, cpCode: 42, side: 'edge', groupBy: 'class', metric: 'hits' };
    const out = datasource().applyTemplateVariables(query, {});
    expect(out).toEqual({ ...query, cpCode: '42' });
    expect(query.cpCode).toBe(42);
  });

  it('leaves unknown variables for the backend to report', () => {
    const out = datasource().applyTemplateVariables({ ...base, cpCode: '$nope' }, {});
    expect(out.cpCode).toBe('$nope');
  });
});

describe('filterQuery', () => {
  const ds = datasource();
  it.each<{ name: string; query: EStatsQuery; expected: boolean }>([
    { name: 'a CP code', query: base, expected: true },
    { name: 'a numeric CP code', query: { ...base, cpCode: 1209788 }, expected: true },
    { name: 'a CP code variable', query: { ...base, cpCode: '$cpcode' }, expected: true },
    { name: 'no CP code', query: { ...base, cpCode: '' }, expected: false },
    { name: 'a missing CP code', query: { refId: 'A' }, expected: false },
    { name: 'a non-numeric CP code', query: { ...base, cpCode: '12ab' }, expected: false },
    { name: 'a URL', query: { ...base, targetType: 'url', url: 'https://www.example.com/' }, expected: true },
    { name: 'a URL variable', query: { ...base, targetType: 'url', url: '${url}' }, expected: true },
    { name: 'a URL without scheme', query: { ...base, targetType: 'url', url: 'www.example.com' }, expected: false },
    { name: 'an empty URL', query: { ...base, targetType: 'url', url: ' ' }, expected: false },
    { name: 'a CP code list', query: { ...base, cpCode: '1209788, 1209789 555' }, expected: true },
    { name: 'a JSON list of CP codes', query: { ...base, cpCode: [1209788, '1209789'] }, expected: true },
    { name: 'every watched CP code', query: { ...base, cpCode: '*' }, expected: true },
    { name: '* with other CP codes', query: { ...base, cpCode: '*, 1209788' }, expected: false },
    { name: 'a list with a bad CP code', query: { ...base, cpCode: '1209788, 12ab' }, expected: false },
    {
      name: 'URLs one a line',
      query: { ...base, targetType: 'url', url: 'https://a.example/x,y\n  https://b.example/' },
      expected: true,
    },
    { name: 'every watched URL', query: { ...base, targetType: 'url', url: '*' }, expected: true },
    {
      name: 'URLs with a bad one',
      query: { ...base, targetType: 'url', url: 'https://a.example/ b.example' },
      expected: false,
    },
  ])('$name → $expected', ({ query, expected }) => {
    expect(ds.filterQuery(query)).toBe(expected);
  });
});

describe('getDefaultQuery', () => {
  it('uses the first watched target', () => {
    const ds = datasource({
      watch: [{ cpCode: '' }, { cpCode: 1209788, delivery: 'ENHANCED_TLS' }, { url: 'https://a.example/' }],
    });
    expect(ds.getDefaultQuery(CoreApp.Dashboard)).toEqual({
      queryType: 'distribution',
      targetType: 'cpCode',
      cpCode: 1209788,
      delivery: 'ENHANCED_TLS',
      side: 'both',
      groupBy: 'code',
      metric: 'percentage',
      statusFilter: '',
    });
  });

  it('uses a watched URL', () => {
    const ds = datasource({ watch: [{ url: 'https://a.example/' }] });
    expect(ds.getDefaultQuery(CoreApp.Explore)).toMatchObject({
      targetType: 'url',
      url: 'https://a.example/',
      delivery: '',
    });
  });

  it('leaves the CP code empty without a watch list', () => {
    const query = datasource().getDefaultQuery(CoreApp.Dashboard);
    expect(query).toMatchObject({ queryType: 'distribution', targetType: 'cpCode', cpCode: '' });
    expect(datasource().filterQuery({ refId: 'A', ...query })).toBe(false);
  });
});

describe('variable support', () => {
  beforeEach(() => {
    setTemplateSrv(fakeTemplateSrv({ cp: '1209788', cps: ['555', '1209788'] }));
  });

  async function run(ds: DataSource, query: VariableQuery): Promise<DataQueryResponse> {
    expect(ds.variables).toBeInstanceOf(EStatsVariableSupport);
    const support = ds.variables as EStatsVariableSupport;
    const request = { targets: [query], scopedVars: {} } as unknown as DataQueryRequest<VariableQuery>;
    return lastValueFrom(support.query(request));
  }

  it('lists known targets once per CP code or URL', async () => {
    const ds = datasource();
    mockResources(ds);
    const response = await run(ds, { refId: 'v', kind: 'targets' });
    expect(response.data).toEqual([
      { text: '1209788', value: '1209788' },
      { text: '555', value: '555' },
      { text: 'https://www.example.com/', value: 'https://www.example.com/' },
    ]);
  });

  it('lists only URLs when asked', async () => {
    const ds = datasource();
    mockResources(ds);
    const response = await run(ds, { refId: 'v', kind: 'targets', targetType: 'url' });
    expect(response.data).toEqual([{ text: 'https://www.example.com/', value: 'https://www.example.com/' }]);
  });

  it('lists the status codes of a target key', async () => {
    const ds = datasource();
    const spy = mockResources(ds, { 'cp:555/ANY': [503, 200, 404] });
    const response = await run(ds, { refId: 'v', kind: 'statusCodes', target: 'cp:555/ANY' });
    expect(response.data).toEqual([
      { text: '200', value: '200' },
      { text: '404', value: '404' },
      { text: '503', value: '503' },
    ]);
    expect(spy).toHaveBeenCalledWith('status-codes', { target: 'cp:555/ANY' });
  });

  it('merges the status codes of every key of a CP code given through a variable', async () => {
    const ds = datasource();
    const spy = mockResources(ds, {
      'cp:1209788/STANDARD_TLS': [200, 404],
      'cp:1209788/ENHANCED_TLS': [200, 503],
    });
    const response = await run(ds, { refId: 'v', kind: 'statusCodes', target: '$cp' });
    expect(response.data).toEqual([
      { text: '200', value: '200' },
      { text: '404', value: '404' },
      { text: '503', value: '503' },
    ]);
    expect(spy).toHaveBeenCalledWith('status-codes', { target: 'cp:1209788/STANDARD_TLS' });
    expect(spy).toHaveBeenCalledWith('status-codes', { target: 'cp:1209788/ENHANCED_TLS' });
  });

  it('lists nothing for an empty or unknown target', async () => {
    const ds = datasource();
    mockResources(ds);
    expect((await run(ds, { refId: 'v', kind: 'statusCodes', target: '' })).data).toEqual([]);
    expect((await run(ds, { refId: 'v', kind: 'statusCodes', target: '999' })).data).toEqual([]);
  });

  it('treats a query without kind as a targets query', async () => {
    const ds = datasource();
    mockResources(ds);
    const response = await run(ds, { refId: 'v' } as VariableQuery);
    expect(response.data).toHaveLength(3);
  });

  it('tolerates a /targets answer without a list', async () => {
    const ds = datasource();
    jest.spyOn(ds, 'getResource').mockResolvedValue({});
    expect(await ds.getTargets()).toEqual([]);
  });
});

describe('testDatasource', () => {
  it('shows the health message and details on success', async () => {
    const ds = datasource();
    jest.spyOn(ds, 'callHealthCheck').mockResolvedValue({
      status: HealthStatus.OK,
      message: 'eStats reachable: 3 edge locations; 2 targets watched',
      details: { verboseMessage: 'edge-locations 200 in 120 ms', clockSkewSeconds: 1 },
    });
    await expect(ds.testDatasource()).resolves.toEqual({
      status: 'success',
      message: 'eStats reachable: 3 edge locations; 2 targets watched',
      details: { message: undefined, verboseMessage: 'edge-locations 200 in 120 ms\nclockSkewSeconds: 1' },
    });
  });

  it('shows the error and its details on failure', async () => {
    const ds = datasource();
    jest.spyOn(ds, 'callHealthCheck').mockResolvedValue({
      status: HealthStatus.Error,
      message: 'Akamai rejected the credentials (401)',
      details: { message: 'Check client token and access token', probe: { path: '/edge-locations', status: 401 } },
    });
    await expect(ds.testDatasource()).resolves.toEqual({
      status: 'error',
      message: 'Akamai rejected the credentials (401)',
      details: {
        message: 'Check client token and access token',
        verboseMessage: 'probe: {"path":"/edge-locations","status":401}',
      },
    });
  });

  it('reports a backend that did not answer', async () => {
    const ds = datasource();
    jest.spyOn(ds, 'callHealthCheck').mockResolvedValue(undefined as never);
    await expect(ds.testDatasource()).resolves.toMatchObject({ status: 'error' });
  });

  it('formats no details when there are none', () => {
    expect(formatHealthDetails(undefined)).toBeUndefined();
    expect(formatHealthDetails({})).toBeUndefined();
  });
});

describe('live stream buffering', () => {
  const request = (to: string) =>
    ({
      maxDataPoints: 300,
      range: { from: dateTime(1_700_000_000_000), to: dateTime(1_700_003_600_000), raw: { from: 'now-1h', to } },
      rangeRaw: { from: 'now-1h', to },
    }) as unknown as DataQueryRequest<EStatsQuery>;
  const series = toDataFrame({
    fields: [
      { name: 'time', type: FieldType.time, values: [1] },
      { name: 'percentage', type: FieldType.number, values: [1] },
    ],
  });
  const distribution = toDataFrame({
    fields: [
      { name: 'side', type: FieldType.string, values: ['edge'] },
      { name: 'hits', type: FieldType.number, values: [1] },
    ],
  });

  it('appends time series rows within the panel range', () => {
    expect(liveStreamOptions(request('now'), series)).toEqual({
      maxLength: 300,
      action: StreamingFrameAction.Append,
      maxDelta: 3_600_000,
    });
    expect(liveStreamOptions(request('now-5m'), series).maxDelta).toBeUndefined();
  });

  it('replaces a distribution or summary with each new sample', () => {
    expect(liveStreamOptions(request('now'), distribution).action).toBe(StreamingFrameAction.Replace);
  });

  it('is the provider of the data source', () => {
    expect(datasource().streamOptionsProvider).toBe(liveStreamOptions);
  });
});

describe('annotations', () => {
  it('run events queries, filling the default targets of a new annotation', () => {
    const ds = datasource({ watch: [{ cpCode: 1209788 }] });
    const support = ds.annotations;
    expect(support?.QueryEditor).toBeDefined();
    expect(support?.getDefaultQuery?.()).toMatchObject({ queryType: 'events', cpCode: '*' });
    expect(support?.prepareQuery?.({ name: 'Events', enable: true, iconColor: 'red' })).toEqual({
      refId: 'Anno',
      queryType: 'events',
      targetType: 'cpCode',
      cpCode: '*',
      side: 'both',
    });
    expect(
      support?.prepareQuery?.({
        name: 'Events',
        enable: true,
        iconColor: 'red',
        target: { refId: 'A', queryType: 'timeseries', cpCode: '1209788, 1209789', side: 'edge', threshold: 2 },
      })
    ).toEqual({ refId: 'A', queryType: 'events', cpCode: '1209788, 1209789', side: 'edge', threshold: 2 });
  });

  it('send the interpolated targets of an annotation', () => {
    setTemplateSrv(fakeTemplateSrv({ cpcodes: ['1209788', '555'] }));
    const query: EStatsQuery = { refId: 'Anno', queryType: 'events', cpCode: '$cpcodes', threshold: 2 };
    expect(datasource().applyTemplateVariables(query, {})).toEqual({ ...query, cpCode: '1209788,555' });
    expect(datasource().filterQuery(query)).toBe(true);
  });
});
