import {
  HISTORY_DATABASE,
  LOOPBACK_HOST_NAMES,
  POLL_INTERVAL,
  RATE_LIMIT,
  REQUEST_TIMEOUT,
  RETENTION,
} from './contract';
import { isAbsoluteHttpUrl, isDigits } from './query';
import type { EStatsOptions, WatchTarget } from './types';

/** Messages for the settings that the backend would reject, keyed by jsonData field. */
export type SettingsErrors = Partial<
  Record<'host' | 'pollIntervalSeconds' | 'requestTimeoutSeconds' | 'rateLimitPerMinute' | 'retentionHours', string>
>;

const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/**
 * The backend's loopback rule: `localhost` and its subdomains, 127.0.0.0/8 and ::1. Only these
 * may be reached over plain http (a local simulator), and they may be polled faster.
 */
export function isLoopbackName(name: string): boolean {
  const host = name.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (LOOPBACK_HOST_NAMES.some((loopback) => host === loopback || host.endsWith(`.${loopback}`))) {
    return true;
  }
  if (host === '::1' || host === '0:0:0:0:0:0:0:1') {
    return true;
  }
  const octets = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  return octets !== null && octets.slice(1).every((o) => Number(o) <= 255) && octets[1] === '127';
}

interface ParsedHost {
  scheme?: 'http' | 'https';
  name: string;
}

/** Splits `[scheme://]name[:port][/]` the way the backend reads `host`; undefined when it cannot. */
function parseHost(value: string): ParsedHost | { error: string } {
  const schemeMatch = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value);
  const scheme = schemeMatch?.[1]?.toLowerCase();
  if (scheme !== undefined && scheme !== 'http' && scheme !== 'https') {
    return { error: `Use https:// or no scheme; "${scheme}://" is not supported` };
  }
  const rest = schemeMatch ? value.slice(schemeMatch[0].length) : value;
  if (/\s/.test(rest)) {
    return { error: 'The host contains a space' };
  }
  if (rest.includes('@')) {
    return { error: 'Enter the host without a user name or password' };
  }
  const slash = rest.indexOf('/');
  if (slash >= 0 && rest.slice(slash) !== '/') {
    return { error: 'Enter only the host name, without a path' };
  }
  const authority = slash >= 0 ? rest.slice(0, slash) : rest;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(authority);
  const plain = /^([^:]+)(?::(\d{1,5}))?$/.exec(authority);
  const name = bracketed?.[1] ?? plain?.[1];
  if (name === undefined || name === '') {
    return { error: 'Enter a host name, e.g. akab-xxxx.luna.akamaiapis.net' };
  }
  return { scheme: scheme as ParsedHost['scheme'], name };
}

/** True when `host` points at this machine (a local simulator). */
export function isLoopbackHost(host: string | undefined): boolean {
  const parsed = parseHost((host ?? '').trim());
  return 'name' in parsed && isLoopbackName(parsed.name);
}

/**
 * The backend's host rule: `host`, `host:port` or `https://host/` (the scheme is dropped);
 * `http://` only for loopback hosts. Empty is left to the health check, not flagged while the form
 * is new.
 */
export function validateHost(host: string | undefined): string | undefined {
  const value = (host ?? '').trim();
  if (value === '') {
    return undefined;
  }
  const parsed = parseHost(value);
  if ('error' in parsed) {
    return parsed.error;
  }
  const loopback = isLoopbackName(parsed.name);
  if (parsed.scheme === 'http' && !loopback) {
    return 'Use https:// (or no scheme): plain http would send signed requests unencrypted; it is only for a simulator on localhost or 127.0.0.1';
  }
  if (!loopback && !HOSTNAME.test(parsed.name)) {
    return 'Not a valid host name; expected e.g. akab-xxxx.luna.akamaiapis.net';
  }
  return undefined;
}

/** "1 second", "30 seconds": units that read right whatever the count. */
export function plural(count: number, unit: string): string {
  return `${count} ${count === 1 ? unit : `${unit}s`}`;
}

/** Checks a whole number against a range; undefined takes the backend default and is fine. */
export function validateInteger(
  value: number | undefined,
  label: string,
  min: number,
  max: number,
  unit: string,
  per = ''
): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!Number.isFinite(value) || !Number.isInteger(value)) {
    return `${label} must be a whole number of ${unit}s${per}`;
  }
  if (value < min) {
    return `${label} must be at least ${plural(min, unit)}${per}`;
  }
  if (value > max) {
    return `${label} must be at most ${plural(max, unit)}${per}`;
  }
  return undefined;
}

/** Simulators (built in or on loopback) answer instantly and have no Akamai rate limit. */
export function isLocal(options: EStatsOptions): boolean {
  return options.simulate === true || isLoopbackHost(options.host);
}

export interface NumericSetting {
  key: 'pollIntervalSeconds' | 'requestTimeoutSeconds' | 'rateLimitPerMinute' | 'retentionHours';
  label: string;
  unit: string;
  /** Read after the unit, e.g. " per minute". */
  per: string;
  min: number;
  max: number;
  default: number;
}

/** The numeric settings with the bounds the backend applies to these options. */
export function numericSettings(options: EStatsOptions): NumericSetting[] {
  const local = isLocal(options);
  return [
    {
      key: 'pollIntervalSeconds',
      label: 'Poll interval',
      unit: 'second',
      per: '',
      min: local ? POLL_INTERVAL.minLoopback : POLL_INTERVAL.min,
      max: POLL_INTERVAL.max,
      default: options.simulate ? POLL_INTERVAL.defaultSimulator : POLL_INTERVAL.default,
    },
    {
      key: 'requestTimeoutSeconds',
      label: 'Request timeout',
      unit: 'second',
      per: '',
      min: REQUEST_TIMEOUT.min,
      max: REQUEST_TIMEOUT.max,
      default: REQUEST_TIMEOUT.default,
    },
    {
      key: 'rateLimitPerMinute',
      label: 'Rate limit',
      unit: 'request',
      per: ' per minute',
      min: RATE_LIMIT.min,
      max: local ? RATE_LIMIT.maxLoopback : RATE_LIMIT.max,
      default: RATE_LIMIT.default,
    },
    {
      key: 'retentionHours',
      label: 'Retention',
      unit: 'hour',
      per: '',
      min: RETENTION.min,
      max: RETENTION.max,
      default: RETENTION.default,
    },
  ];
}

export function validateSettings(options: EStatsOptions): SettingsErrors {
  const errors: SettingsErrors = {};
  const host = validateHost(options.host);
  if (host) {
    errors.host = host;
  }
  for (const setting of numericSettings(options)) {
    const message = validateInteger(
      options[setting.key],
      setting.label,
      setting.min,
      setting.max,
      setting.unit,
      setting.per
    );
    if (message) {
      errors[setting.key] = message;
    }
  }
  return errors;
}

/** The problem with one watch list entry, if any; values are named only by their field. */
export function validateWatchTarget(target: WatchTarget): string | undefined {
  if (target.url !== undefined) {
    const url = target.url.trim();
    if (url === '') {
      return 'Enter a URL, or remove this row';
    }
    return isAbsoluteHttpUrl(url) ? undefined : 'Not an absolute URL: start it with https://';
  }
  const cpCode = target.cpCode === undefined ? '' : String(target.cpCode).trim();
  if (cpCode === '') {
    return 'Enter a CP code, or remove this row';
  }
  return isDigits(cpCode) ? undefined : 'A CP code has digits only';
}

/** The key the backend polls a watch entry under: a second row with the same key is a mistake. */
export function watchKey(target: WatchTarget): string {
  const subject = target.url !== undefined ? `url:${target.url.trim()}` : `cp:${String(target.cpCode ?? '').trim()}`;
  return `${subject}/${target.delivery ?? 'ANY'}`;
}

/** Messages for duplicate entries: the backend polls each target once. */
export function duplicateWatchTargets(watch: WatchTarget[]): Map<number, string> {
  const seen = new Map<string, number>();
  const duplicates = new Map<number, string>();
  watch.forEach((target, index) => {
    const key = watchKey(target);
    const first = seen.get(key);
    if (first !== undefined) {
      duplicates.set(index, `Same target as row ${first + 1}`);
    } else {
      seen.set(key, index);
    }
  });
  return duplicates;
}

const HISTORY_DATABASE_EXAMPLE = 'postgres://grafana@db.example.com:5432/grafana?sslmode=verify-full';

/**
 * The backend's `historyDatabase` rule: `postgres://user@host[:port]/dbname[?sslmode=...]`, never
 * with a password (jsonData is readable by every Grafana user). Empty keeps the embedded history.
 * Messages never quote the URL, which may hold the very password they refuse.
 */
export function validateHistoryDatabase(raw: string | undefined): string | undefined {
  const value = (raw ?? '').trim();
  if (value === '') {
    return undefined;
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined || !HISTORY_DATABASE.schemes.includes(scheme)) {
    return `Start the URL with ${HISTORY_DATABASE.schemes.map((s) => `${s}://`).join(' or ')}, e.g. ${HISTORY_DATABASE_EXAMPLE}`;
  }
  const passwordMessage =
    'Remove the password from the URL (every Grafana user can read it) and enter it in "Database password" below';
  // `user:` followed later by `@`: a password, even one with a / or @ that no URL parser takes.
  if (/^[^/?#@:]*:.*@/s.test(value.slice(scheme.length + 3))) {
    return passwordMessage;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `Not a URL: write it as ${HISTORY_DATABASE_EXAMPLE}`;
  }
  if (url.password !== '') {
    return passwordMessage;
  }
  if (url.hostname === '') {
    return `Name the database host, e.g. ${HISTORY_DATABASE_EXAMPLE}`;
  }
  if (url.username === '') {
    return `Name the database user before the host, e.g. ${HISTORY_DATABASE_EXAMPLE}`;
  }
  const database = url.pathname.replace(/^\//, '');
  if (database === '' || database.includes('/')) {
    return `Name one database after the host, e.g. ${HISTORY_DATABASE_EXAMPLE}`;
  }
  const modes = HISTORY_DATABASE.sslModes.join(', ');
  const { sslModeParam, sslRootCertParam, sslRootCertMode } = HISTORY_DATABASE;
  let rootCert = false;
  for (const [key, value] of url.searchParams) {
    if (key === sslModeParam) {
      if (!HISTORY_DATABASE.sslModes.includes(value)) {
        return `${sslModeParam} must be one of ${modes}`;
      }
    } else if (key === sslRootCertParam) {
      if (!value.startsWith('/')) {
        return `${sslRootCertParam} must be the absolute path of the CA's PEM file on the Grafana server, e.g. ${sslRootCertParam}=/etc/grafana/pg-ca.pem`;
      }
      rootCert = true;
    } else {
      return `Only the ${sslModeParam} (${modes}) and ${sslRootCertParam} (a CA's PEM file) parameters are supported; remove "${key}"`;
    }
  }
  if (rootCert && url.searchParams.get(sslModeParam) !== sslRootCertMode) {
    return `${sslRootCertParam} is only used to check the server's certificate: add ${sslModeParam}=${sslRootCertMode}`;
  }
  return undefined;
}

/** The backend's schema rule for `historyDatabaseSchema`; empty takes the default schema. */
export function validateHistorySchema(raw: string | undefined): string | undefined {
  const value = (raw ?? '').trim();
  if (value === '') {
    return undefined;
  }
  if (value.length > HISTORY_DATABASE.maxSchemaChars || !new RegExp(HISTORY_DATABASE.schemaPattern).test(value)) {
    return `Use lower-case letters, digits and _ (at most ${HISTORY_DATABASE.maxSchemaChars}, not starting with a digit), e.g. ${HISTORY_DATABASE.defaultSchema}`;
  }
  return undefined;
}
