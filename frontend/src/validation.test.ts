import contract from './generated/contract.json';
import type { EStatsSecureJsonData } from './types';
import {
  duplicateWatchTargets,
  isLoopbackHost,
  numericSettings,
  validateHistoryDatabase,
  validateHistorySchema,
  validateHost,
  validateSettings,
  validateWatchTarget,
} from './validation';

describe('validateHost', () => {
  it.each([
    ['akab-h05tnam3wl42son7nktnlnnx-kbob3i3v.luna.akamaiapis.net', undefined],
    ['', undefined],
    // The backend accepts https:// and a port, and drops the scheme.
    ['https://akab-x.luna.akamaiapis.net', undefined],
    ['https://akab-x.luna.akamaiapis.net/', undefined],
    ['akab-x.luna.akamaiapis.net:8443', undefined],
    ['http://127.0.0.1:8089', undefined],
    ['http://127.5.0.1', undefined],
    ['http://localhost:8080', undefined],
    ['http://sim.localhost:8080/', undefined],
    ['http://[::1]:9000', undefined],
    ['http://example.com', expect.stringContaining('Use https://')],
    ['http://10.0.0.1:8080', expect.stringContaining('Use https://')],
    ['ftp://akab-x.luna.akamaiapis.net', expect.stringContaining('not supported')],
    ['akab-x.luna.akamaiapis.net/edge-diagnostics', 'Enter only the host name, without a path'],
    ['user@akab-x.luna.akamaiapis.net', 'Enter the host without a user name or password'],
    ['akab_x luna', 'The host contains a space'],
    ['akab_x.luna', expect.stringContaining('Not a valid host name')],
  ])('%s', (host, expected) => {
    expect(validateHost(host)).toEqual(expected);
  });

  it('follows the backend loopback rule', () => {
    for (const host of ['http://127.0.0.1:9000/', 'localhost:1', 'http://a.localhost', '[::1]', '127.255.0.9']) {
      expect(isLoopbackHost(host)).toBe(true);
    }
    for (const host of ['http://10.0.0.1:9000', 'localhost.example.com', '128.0.0.1', undefined]) {
      expect(isLoopbackHost(host)).toBe(false);
    }
  });
});

describe('validateSettings', () => {
  const { pollIntervalSeconds: poll, rateLimitPerMinute: rate, retentionHours: retention } = contract.settings;

  it('accepts defaults and the bounds of contract.json', () => {
    expect(validateSettings({})).toEqual({});
    expect(
      validateSettings({
        host: 'akab-x.luna.akamaiapis.net',
        pollIntervalSeconds: poll.max,
        requestTimeoutSeconds: contract.settings.requestTimeoutSeconds.max,
        rateLimitPerMinute: rate.max,
        retentionHours: retention.max,
      })
    ).toEqual({});
  });

  it('reports values out of range, with units that read right', () => {
    expect(
      validateSettings({ pollIntervalSeconds: 10, requestTimeoutSeconds: 0, rateLimitPerMinute: 41, retentionHours: 0 })
    ).toEqual({
      pollIntervalSeconds: 'Poll interval must be at least 30 seconds',
      requestTimeoutSeconds: 'Request timeout must be at least 1 second',
      rateLimitPerMinute: 'Rate limit must be at most 40 requests per minute',
      retentionHours: 'Retention must be at least 1 hour',
    });
    expect(validateSettings({ pollIntervalSeconds: 5000 }).pollIntervalSeconds).toBe(
      'Poll interval must be at most 3600 seconds'
    );
    expect(validateSettings({ retentionHours: 8761 }).retentionHours).toBe('Retention must be at most 8760 hours');
    expect(validateSettings({ pollIntervalSeconds: 2.5 }).pollIntervalSeconds).toBe(
      'Poll interval must be a whole number of seconds'
    );
  });

  it('allows fast polling and a higher rate against simulators only', () => {
    const bounds = (options: Parameters<typeof numericSettings>[0]) =>
      Object.fromEntries(numericSettings(options).map((s) => [s.key, [s.min, s.max]]));
    expect(bounds({}).pollIntervalSeconds).toEqual([poll.min, poll.max]);
    expect(bounds({ simulate: true }).pollIntervalSeconds).toEqual([poll.minLoopback, poll.max]);
    expect(bounds({ host: 'http://localhost:8089' }).rateLimitPerMinute).toEqual([rate.min, rate.maxLoopback]);
    expect(validateSettings({ simulate: true, pollIntervalSeconds: 1, rateLimitPerMinute: 6000 })).toEqual({});
    expect(validateSettings({ simulate: true, pollIntervalSeconds: 0 }).pollIntervalSeconds).toBe(
      'Poll interval must be at least 1 second'
    );
  });
});

describe('watch list validation', () => {
  it('checks each entry without quoting it', () => {
    expect(validateWatchTarget({ cpCode: 1209788 })).toBeUndefined();
    expect(validateWatchTarget({ cpCode: '1209788', delivery: 'STANDARD_TLS' })).toBeUndefined();
    expect(validateWatchTarget({ cpCode: '12x' })).toBe('A CP code has digits only');
    expect(validateWatchTarget({ cpCode: '' })).toBe('Enter a CP code, or remove this row');
    expect(validateWatchTarget({ url: '' })).toBe('Enter a URL, or remove this row');
    expect(validateWatchTarget({ url: 'www.example.com' })).toBe('Not an absolute URL: start it with https://');
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

describe('validateHistoryDatabase', () => {
  const db = contract.settings.historyDatabase;

  it('uses the password key of the secure settings type', () => {
    const key: keyof EStatsSecureJsonData = 'historyDatabasePassword';
    expect(db.passwordField).toBe(key);
  });

  it.each([
    [''],
    ['postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full'],
    ['postgresql://grafana@db.example.com/grafana'],
    ['  postgres://estats@127.0.0.1/test?sslmode=disable  '],
    ['postgres://estats@[::1]:5433/test'],
    ...db.sslModes.map((mode) => [`postgres://g@db/gf?sslmode=${mode}`]),
    [`postgres://g@db/gf?sslmode=${db.sslRootCertMode}&${db.sslRootCertParam}=/etc/grafana/pg%20ca.pem`],
  ])('accepts %j', (url) => {
    expect(validateHistoryDatabase(url)).toBeUndefined();
  });

  it.each([
    ['mysql://g@db/gf', /^Start the URL with postgres:\/\/ or postgresql:\/\//],
    ['db.example.com/gf', /^Start the URL with/],
    ['postgres://g:hunter2@db/gf', /Remove the password from the URL .* "Database password" below/],
    // Passwords no URL parser takes: still recognised as passwords, not as a bad port.
    ['postgres://g:a/b@c@db.example.com:5432/gf', /^Remove the password from the URL/],
    ['postgres://g:p?q#r@db/gf', /^Remove the password from the URL/],
    ['postgres://g@db/gf?sslmode=prefer', /^sslmode must be one of disable, require, verify-full$/],
    [
      'postgres://g@db/gf?password=x',
      /^Only the sslmode .* and sslrootcert .* parameters are supported; remove "password"$/,
    ],
    ['postgres://g@db/gf?sslmode=verify-full&sslrootcert=ca.pem', /^sslrootcert must be the absolute path/],
    ['postgres://g@db/gf?sslmode=require&sslrootcert=/ca.pem', /add sslmode=verify-full$/],
    ['postgres://g@db/gf?sslrootcert=/ca.pem', /add sslmode=verify-full$/],
    ['postgres://g@db', /^Name one database after the host/],
    ['postgres://db.example.com/gf', /^Name the database user before the host/],
  ])('refuses %j', (url, message) => {
    expect(validateHistoryDatabase(url)).toMatch(message);
  });

  it('never quotes the password it refuses', () => {
    expect(validateHistoryDatabase('postgres://g:hunter2@db/gf?sslmode=bogus')).not.toContain('hunter2');
  });
});

describe('validateHistorySchema', () => {
  const db = contract.settings.historyDatabase;

  it.each(['', db.defaultSchema, '_x1', 'a'.repeat(db.maxSchemaChars)])('accepts %j', (schema) => {
    expect(validateHistorySchema(schema)).toBeUndefined();
  });

  it.each(['Akamai', '1st', 'a-b', 'a b', 'a'.repeat(db.maxSchemaChars + 1)])('refuses %j', (schema) => {
    expect(validateHistorySchema(schema)).toMatch(/^Use lower-case letters, digits and _ \(at most 63/);
  });
});
