import { type DataSourceInstanceSettings, type DataSourcePluginMeta, PluginType, type ScopedVars } from '@grafana/data';
import type { TemplateSrv } from '@grafana/runtime';

import type { EStatsOptions, KnownTarget } from '../types';

export function instanceSettings(jsonData: EStatsOptions = {}): DataSourceInstanceSettings<EStatsOptions> {
  const meta = {
    id: 'akamai-estats-datasource',
    name: 'Akamai eStats',
    type: PluginType.datasource,
    module: 'public/plugins/akamai-estats-datasource/module.js',
    baseUrl: 'public/plugins/akamai-estats-datasource',
    info: {
      author: { name: 'test' },
      description: '',
      links: [],
      logos: { small: '', large: '' },
      screenshots: [],
      updated: '',
      version: '0.1.0',
    },
  } satisfies DataSourcePluginMeta<EStatsOptions>;
  return {
    uid: 'estats-uid',
    type: 'akamai-estats-datasource',
    name: 'Akamai eStats',
    meta,
    readOnly: false,
    jsonData,
    access: 'proxy',
  };
}

export const KNOWN_TARGETS: KnownTarget[] = [
  {
    key: 'cp:1209788/STANDARD_TLS',
    target: { cpCode: 1209788, delivery: 'STANDARD_TLS' },
    label: 'cpCode 1209788 (STANDARD_TLS)',
    watched: true,
    lastSuccess: '2026-11-25T10:00:00Z',
    lastError: null,
    nextPoll: '2026-11-25T10:02:00Z',
    samples: 12,
  },
  {
    key: 'cp:1209788/ENHANCED_TLS',
    target: { cpCode: 1209788, delivery: 'ENHANCED_TLS' },
    label: 'cpCode 1209788 (ENHANCED_TLS)',
    watched: false,
    samples: 1,
  },
  {
    key: 'cp:555/ANY',
    target: { cpCode: 555 },
    label: 'cpCode 555',
    watched: false,
    lastError: 'rate limited',
    samples: 0,
  },
  {
    key: 'url:https://www.example.com//ANY',
    target: { url: 'https://www.example.com/' },
    label: 'https://www.example.com/',
    watched: true,
    samples: 3,
  },
];

type VariableValue = string | string[];

/**
 * A small TemplateSrv with Grafana's rules that matter here: `$name`, `${name}` and `[[name]]`,
 * scoped variables first, a format function receiving arrays for multi-value variables, and
 * unknown variables left as they are.
 */
export function fakeTemplateSrv(variables: Record<string, VariableValue>): TemplateSrv {
  const pattern = /\$(\w+)|\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)\]\]/g;
  return {
    getVariables: () =>
      Object.keys(variables).map((name) => ({ name, type: 'custom', multi: Array.isArray(variables[name]) }) as never),
    replace: (target?: string, scopedVars?: ScopedVars, format?: string | Function) =>
      (target ?? '').replace(pattern, (match, a?: string, b?: string, explicitFormat?: string, c?: string) => {
        const name = a ?? b ?? c ?? '';
        const scoped = scopedVars?.[name];
        const value: VariableValue | undefined = scoped ? (scoped.value as VariableValue) : variables[name];
        if (value === undefined) {
          return match;
        }
        if (explicitFormat === 'csv') {
          return Array.isArray(value) ? value.join(',') : value;
        }
        if (typeof format === 'function') {
          return format(value);
        }
        return Array.isArray(value) ? `{${value.join(',')}}` : value;
      }),
    containsTemplate: (target?: string) => new RegExp(pattern.source).test(target ?? ''),
    updateTimeRange: () => {},
  };
}
