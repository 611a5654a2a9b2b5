/**
 * Parses a pasted `.edgerc` section in the browser so that the credentials go straight into the
 * secure fields. Real files contain typos such as `Client_token`; case and `-`/`_` slips are read
 * with a warning, near misses are errors that name the key meant, and nothing is filled in unless
 * host and all three secrets were found.
 *
 * Messages never quote a pasted value or an unknown key: a secret wrapped onto its own line reads as
 * an unknown key (base64 ends in `=`), and a message must not put it on screen. They name lines and
 * the known keys only.
 */
import { isLoopbackHost } from './validation';

export interface EdgercCredentials {
  host: string;
  clientToken: string;
  clientSecret: string;
  accessToken: string;
}

export interface EdgercParseResult {
  /** Set only when errors is empty. */
  credentials?: EdgercCredentials;
  /** The section that was read ("" for lines pasted without a `[section]` header). */
  section?: string;
  sections: string[];
  warnings: string[];
  errors: string[];
}

type RequiredKey = 'host' | 'client_token' | 'client_secret' | 'access_token';
const REQUIRED_KEYS: readonly RequiredKey[] = ['host', 'client_token', 'client_secret', 'access_token'];
/** Keys of the file format that this form does not need but that are valid. */
const OPTIONAL_KEYS = ['max_body', 'max-body'];
const KNOWN_KEYS = [...REQUIRED_KEYS, ...OPTIONAL_KEYS];

interface Entry {
  key: string;
  value: string;
  line: number;
}

/** Edit distance, to suggest the key a typo meant. */
function levenshtein(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost));
    }
    previous = current;
  }
  return previous[b.length] ?? Math.max(a.length, b.length);
}

function closestKnownKey(key: string): string | undefined {
  const normalized = key.toLowerCase().replace(/-/g, '_');
  let best: { key: string; distance: number } | undefined;
  for (const known of KNOWN_KEYS) {
    const distance = levenshtein(normalized, known.replace(/-/g, '_'));
    if (!best || distance < best.distance) {
      best = { key: known, distance };
    }
  }
  return best && best.distance <= 3 ? best.key : undefined;
}

function splitSections(text: string): { order: string[]; sections: Map<string, Entry[]>; errors: string[] } {
  const sections = new Map<string, Entry[]>();
  const order: string[] = [];
  const errors: string[] = [];
  let current: string | undefined;
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#') || trimmed.startsWith(';')) {
      return;
    }
    const header = /^\[([^\]]*)\]$/.exec(trimmed);
    if (header) {
      current = (header[1] ?? '').trim();
      if (!sections.has(current)) {
        sections.set(current, []);
        order.push(current);
      }
      return;
    }
    const delimiter = trimmed.search(/[=:]/);
    if (delimiter <= 0) {
      errors.push(`Line ${line}: expected "key = value" or a [section] header; is a value wrapped onto its own line?`);
      return;
    }
    if (current === undefined) {
      current = '';
      sections.set(current, []);
      order.push(current);
    }
    sections.get(current)?.push({
      key: trimmed.slice(0, delimiter).trim(),
      value: trimmed.slice(delimiter + 1).trim(),
      line,
    });
  });
  return { order, sections, errors };
}

function sectionName(name: string): string {
  return name === '' ? 'the pasted lines' : `[${name}]`;
}

export function parseEdgerc(text: string, wantedSection = 'default'): EdgercParseResult {
  const { order, sections, errors } = splitSections(text);
  const warnings: string[] = [];
  const result: EdgercParseResult = { sections: order.filter((s) => s !== ''), warnings, errors };

  if (order.length === 0) {
    errors.push('Nothing to read: paste a section of your .edgerc file, e.g. [default] followed by its four keys');
    return result;
  }

  let section: string;
  const wanted = wantedSection.trim() || 'default';
  if (sections.has(wanted)) {
    section = wanted;
  } else if (order.length === 1 && order[0] !== undefined) {
    // A single pasted section is the one meant, whatever its name.
    section = order[0];
  } else {
    errors.push(
      `Section [${wanted}] not found; the pasted text has ${order.map(sectionName).join(', ')}. Set "Section" to one of them.`
    );
    return result;
  }
  result.section = section;

  const found = new Map<RequiredKey, Entry>();
  for (const entry of sections.get(section) ?? []) {
    const lower = entry.key.toLowerCase();
    let key: string | undefined;
    if (KNOWN_KEYS.includes(entry.key)) {
      key = entry.key;
    } else if (KNOWN_KEYS.includes(lower) || KNOWN_KEYS.includes(lower.replace(/-/g, '_'))) {
      key = KNOWN_KEYS.includes(lower) ? lower : lower.replace(/-/g, '_');
      // Safe to quote: the key equals a known key but for case and dashes, so it is no pasted value.
      warnings.push(`Line ${entry.line}: "${entry.key}" read as "${key}"; fix the spelling in your .edgerc file too`);
    } else {
      const suggestion = closestKnownKey(entry.key);
      if (entry.value === '') {
        // Base64 secrets end in `=`: a secret wrapped onto its own line reads as "key =" with no value.
        errors.push(
          `Line ${entry.line}: no value here; is a value wrapped onto its own line? Join it to the line above`
        );
      } else if (suggestion) {
        errors.push(`Line ${entry.line}: unknown key; did you mean "${suggestion}"?`);
      } else {
        warnings.push(
          `Line ${entry.line}: not one of ${KNOWN_KEYS.join(', ')}, ignored (a value wrapped onto its own line?)`
        );
      }
      continue;
    }
    if (!(REQUIRED_KEYS as readonly string[]).includes(key)) {
      continue;
    }
    const required = key as RequiredKey;
    const previous = found.get(required);
    if (previous) {
      errors.push(`Line ${entry.line}: "${required}" is set twice (first on line ${previous.line}); keep one`);
      continue;
    }
    let value = entry.value;
    const quoted = /^(["'])(.*)\1$/.exec(value);
    if (quoted) {
      value = quoted[2] ?? '';
      warnings.push(`Line ${entry.line}: quotes around the value of "${required}" removed`);
    }
    found.set(required, { ...entry, key: required, value });
  }

  for (const key of REQUIRED_KEYS) {
    const entry = found.get(key);
    if (!entry) {
      errors.push(`"${key}" is missing from ${sectionName(section)}`);
    } else if (entry.value === '') {
      errors.push(`Line ${entry.line}: "${key}" is empty`);
    }
  }

  let host = found.get('host')?.value ?? '';
  if (/^https?:\/\//i.test(host) && !isLoopbackHost(host)) {
    host = host.replace(/^https?:\/\//i, '');
    warnings.push('The scheme was removed from "host": it is always https');
  }
  if (host.endsWith('/')) {
    host = host.replace(/\/+$/, '');
  }

  if (errors.length === 0) {
    result.credentials = {
      host,
      clientToken: found.get('client_token')?.value ?? '',
      clientSecret: found.get('client_secret')?.value ?? '',
      accessToken: found.get('access_token')?.value ?? '',
    };
  }
  return result;
}
