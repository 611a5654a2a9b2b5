import { isAbsoluteHttpUrl, isDigits } from './query';
import { LIMITS, type EStatsOptions, type WatchTarget } from './types';

/** Messages for the settings that the backend would reject, keyed by jsonData field. */
export type SettingsErrors = Partial<
  Record<
    'host' | 'pollIntervalSeconds' | 'requestTimeoutSeconds' | 'rateLimitPerMinute' | 'retentionHours' | 'delivery',
    string
  >
>;

const LOOPBACK_HTTP = /^http:\/\/127\.0\.0\.1(?::(\d{1,5}))?\/?$/i;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/i;

/** True for the loopback simulator form of `host`, which alone may carry a scheme. */
export function isLoopbackHost(host: string | undefined): boolean {
  return LOOPBACK_HTTP.test((host ?? '').trim());
}

/** Format problems only: an empty host is reported by the health check, not while the form is new. */
export function validateHost(host: string | undefined): string | undefined {
  const value = (host ?? '').trim();
  if (value === '') {
    return undefined;
  }
  if (isLoopbackHost(value)) {
    return undefined;
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value)) {
    return 'Enter the host without a scheme (https is implied), e.g. akab-xxxx.luna.akamaiapis.net; only http://127.0.0.1:PORT may carry one, for local simulators';
  }
  if (value.includes('/')) {
    return 'Enter only the host name, without a path';
  }
  if (!HOSTNAME.test(value)) {
    return `"${value}" is not a valid host name`;
  }
  return undefined;
}

/** Checks an optional whole number against a range; absent values take the backend default. */
export function validateInteger(
  value: number | undefined,
  label: string,
  min: number,
  max: number | undefined,
  unit: string
): string | undefined {
  if (value === undefined) {
    return undefined;
  }
  if (!Number.isFinite(value) || !Number.isInteger(value)) {
    return `${label} must be a whole number of ${unit}`;
  }
  if (value < min) {
    return `${label} must be at least ${min} ${unit}`;
  }
  if (max !== undefined && value > max) {
    return `${label} must be at most ${max} ${unit}`;
  }
  return undefined;
}

/** Polling may be fast only against a simulator: Akamai allows 40 calls a minute per account. */
export function minPollInterval(options: EStatsOptions): number {
  return options.simulate || isLoopbackHost(options.host)
    ? LIMITS.pollIntervalMinSecondsLocal
    : LIMITS.pollIntervalMinSeconds;
}

export function validateSettings(options: EStatsOptions): SettingsErrors {
  const errors: SettingsErrors = {};
  const set = (key: keyof SettingsErrors, message: string | undefined) => {
    if (message) {
      errors[key] = message;
    }
  };
  set('host', validateHost(options.host));
  set(
    'pollIntervalSeconds',
    validateInteger(options.pollIntervalSeconds, 'Poll interval', minPollInterval(options), undefined, 'seconds')
  );
  set(
    'requestTimeoutSeconds',
    validateInteger(
      options.requestTimeoutSeconds,
      'Request timeout',
      LIMITS.requestTimeoutMinSeconds,
      LIMITS.requestTimeoutMaxSeconds,
      'seconds'
    )
  );
  set(
    'rateLimitPerMinute',
    validateInteger(
      options.rateLimitPerMinute,
      'Rate limit',
      LIMITS.rateLimitMin,
      LIMITS.rateLimitMax,
      'requests per minute'
    )
  );
  set(
    'retentionHours',
    validateInteger(options.retentionHours, 'Retention', LIMITS.retentionMinHours, LIMITS.retentionMaxHours, 'hours')
  );
  return errors;
}

/** The problem with one watch list entry, if any. */
export function validateWatchTarget(target: WatchTarget): string | undefined {
  const hasUrl = target.url !== undefined;
  if (hasUrl) {
    const url = (target.url ?? '').trim();
    if (url === '') {
      return 'Enter a URL, or remove this row';
    }
    return isAbsoluteHttpUrl(url) ? undefined : `"${url}" is not an absolute http(s) URL: start it with https://`;
  }
  const cpCode = target.cpCode === undefined ? '' : String(target.cpCode).trim();
  if (cpCode === '') {
    return 'Enter a CP code, or remove this row';
  }
  return isDigits(cpCode) ? undefined : `CP code "${cpCode}" must contain digits only, e.g. 1209788`;
}

/** Messages for duplicate entries: the backend polls each target once, so a second row is a mistake. */
export function duplicateWatchTargets(watch: WatchTarget[]): Map<number, string> {
  const seen = new Map<string, number>();
  const duplicates = new Map<number, string>();
  watch.forEach((target, index) => {
    const subject = target.url !== undefined ? `url:${target.url.trim()}` : `cp:${String(target.cpCode ?? '').trim()}`;
    const key = `${subject}/${target.delivery ?? 'ANY'}`;
    const first = seen.get(key);
    if (first !== undefined) {
      duplicates.set(index, `Same target as row ${first + 1}`);
    } else {
      seen.set(key, index);
    }
  });
  return duplicates;
}
