import {
  duplicateWatchTargets,
  isLoopbackHost,
  minPollInterval,
  validateHost,
  validateSettings,
  validateWatchTarget,
} from './validation';

describe('validateHost', () => {
  it.each([
    ['akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net', undefined],
    ['', undefined],
    ['http://127.0.0.1:8089', undefined],
    ['https://akab-x.luna.akamaiapis.net', expect.stringContaining('without a scheme')],
    ['http://example.com', expect.stringContaining('without a scheme')],
    ['akab-x.luna.akamaiapis.net/edge-diagnostics', 'Enter only the host name, without a path'],
    ['akab_x luna', '"akab_x luna" is not a valid host name'],
  ])('%s', (host, expected) => {
    expect(validateHost(host)).toEqual(expected);
  });

  it('knows the loopback form', () => {
    expect(isLoopbackHost('http://127.0.0.1:9000/')).toBe(true);
    expect(isLoopbackHost('http://10.0.0.1:9000')).toBe(false);
    expect(isLoopbackHost(undefined)).toBe(false);
  });
});

describe('validateSettings', () => {
  it('accepts defaults and good values', () => {
    expect(validateSettings({})).toEqual({});
    expect(
      validateSettings({
        host: 'akab-x.luna.akamaiapis.net',
        pollIntervalSeconds: 30,
        requestTimeoutSeconds: 300,
        rateLimitPerMinute: 40,
        retentionHours: 8760,
      })
    ).toEqual({});
  });

  it('reports intervals below the minimum and values out of range', () => {
    expect(
      validateSettings({ pollIntervalSeconds: 10, requestTimeoutSeconds: 0, rateLimitPerMinute: 41, retentionHours: 0 })
    ).toEqual({
      pollIntervalSeconds: 'Poll interval must be at least 30 seconds',
      requestTimeoutSeconds: 'Request timeout must be at least 1 seconds',
      rateLimitPerMinute: 'Rate limit must be at most 40 requests per minute',
      retentionHours: 'Retention must be at least 1 hours',
    });
    expect(validateSettings({ retentionHours: 8761 }).retentionHours).toBe('Retention must be at most 8760 hours');
    expect(validateSettings({ pollIntervalSeconds: 45.5 }).pollIntervalSeconds).toBe(
      'Poll interval must be a whole number of seconds'
    );
  });

  it('allows fast polling against simulators only', () => {
    expect(minPollInterval({})).toBe(30);
    expect(minPollInterval({ simulate: true })).toBe(1);
    expect(minPollInterval({ host: 'http://127.0.0.1:8089' })).toBe(1);
    expect(validateSettings({ simulate: true, pollIntervalSeconds: 1 })).toEqual({});
    expect(validateSettings({ simulate: true, pollIntervalSeconds: 0 }).pollIntervalSeconds).toBe(
      'Poll interval must be at least 1 seconds'
    );
  });
});

describe('watch list validation', () => {
  it('checks each entry', () => {
    expect(validateWatchTarget({ cpCode: 1209788 })).toBeUndefined();
    expect(validateWatchTarget({ cpCode: '1209788', delivery: 'STANDARD_TLS' })).toBeUndefined();
    expect(validateWatchTarget({ cpCode: '12x' })).toBe('CP code "12x" must contain digits only, e.g. 1209788');
    expect(validateWatchTarget({ cpCode: '' })).toBe('Enter a CP code, or remove this row');
    expect(validateWatchTarget({ url: '' })).toBe('Enter a URL, or remove this row');
    expect(validateWatchTarget({ url: 'www.example.com' })).toBe(
      '"www.example.com" is not an absolute http(s) URL: start it with https://'
    );
    expect(validateWatchTarget({ url: 'https://www.example.com/a' })).toBeUndefined();
  });

  it('finds duplicates per CP code or URL and delivery', () => {
    const duplicates = duplicateWatchTargets([
      { cpCode: 1 },
      { cpCode: '1' },
      { cpCode: 1, delivery: 'STANDARD_TLS' },
      { url: 'https://a/' },
      { url: 'https://a/' },
    ]);
    expect([...duplicates.entries()]).toEqual([
      [1, 'Same target as row 1'],
      [4, 'Same target as row 4'],
    ]);
  });
});
